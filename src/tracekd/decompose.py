"""Decomposition: raw rows to one row per problem with its category and relevant facts.

Every loader yields the same columns (DESIGN.md): ``id``, ``split``, ``category``, ``context``,
``question``, ``answers``, ``relevant`` plus dataset extras; and a report of rows read, kept,
covered and flagged per category, and rows dropped by reason.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tracekd.traces import row_rng

SCHEMA: Mapping[str, pl.DataType] = {
    "id": pl.String,
    "split": pl.String,
    "category": pl.String,
    "context": pl.List(pl.String),
    "question": pl.String,
    "answers": pl.List(pl.String),
    "relevant": pl.List(pl.Int64),
}


@dataclass(frozen=True)
class Sampling:
    """Which decomposed rows to keep (config ``datasets.<name>.sample``)."""

    per_story: int | None = 1  # questions kept per story; None keeps all
    question: str = "random"  # which ones: random | first | last
    max: Mapping[str, int | None] = field(default_factory=dict)  # cap per split
    seed: int = 0
    flagged: str = "drop"  # drop | keep rows the rules could not resolve

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Sampling:
        """Build from the config block (schema-validated upstream)."""
        return cls(**{k: v for k, v in cfg.items() if k in cls.__dataclass_fields__})


@dataclass
class Report:
    """Per-category counts and drop reasons; serialises to the CLI's JSON shape."""

    dataset: str
    per_category: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    dropped: Counter = field(default_factory=Counter)
    flag_reasons: Counter = field(default_factory=Counter)  # (category, reason) -> rows flagged

    def to_dict(self) -> dict[str, Any]:
        """``{"dataset", "per_category": {cat: {rows, kept, covered, flagged}}, "dropped"}``.

        ``flag_reasons`` ({category: {reason: n}}) is added when any row was flagged.
        """
        keys = ("rows", "kept", "covered", "flagged")
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "per_category": {
                cat: {k: int(c[k]) for k in keys} for cat, c in sorted(self.per_category.items())
            },
            "dropped": {reason: int(n) for reason, n in sorted(self.dropped.items()) if n},
        }
        if self.flag_reasons:
            reasons: dict[str, dict[str, int]] = defaultdict(dict)
            for (cat, reason), n in sorted(self.flag_reasons.items()):
                reasons[cat][reason] = int(n)
            out["flag_reasons"] = dict(reasons)
        return out

    def to_markdown(self) -> str:
        """The report as a Markdown table (coverage in percent), for people."""
        data = self.to_dict()
        lines = [
            f"# Decomposition report: {self.dataset}",
            "",
            "| category | rows | kept | covered | coverage | flagged |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for cat, c in data["per_category"].items():
            share = f"{100 * c['covered'] / c['rows']:.1f}%" if c["rows"] else "n/a"
            lines.append(f"| {cat} | {c['rows']} | {c['kept']} | {c['covered']} | {share} | {c['flagged']} |")
        lines += ["", "Dropped: " + (", ".join(f"{k} {v}" for k, v in data["dropped"].items()) or "none")]
        for cat, reasons in data.get("flag_reasons", {}).items():
            lines.append(f"Flagged in {cat}: " + ", ".join(f"{k} {v}" for k, v in reasons.items()))
        return "\n".join(lines) + "\n"


def decompose_babi(raw_dir: str | Path, *, tasks: Sequence[str], sampling: Sampling) -> tuple[pl.DataFrame, Report]:
    """bAbI: category = task name, relevant = the supporting line ids mapped into the context.

    A question whose supporting ids do not all point to earlier story sentences is flagged
    (kept or dropped per ``sampling.flagged``); it is never silently repaired.
    """
    from tracekd.babi import BABI_TASKS, load_babi

    unknown = sorted(set(tasks) - set(BABI_TASKS))
    if unknown:
        raise ValueError(f"unknown bAbI task(s) {unknown}; known: {sorted(BABI_TASKS)}")
    repeated = sorted({t for t in tasks if list(tasks).count(t) > 1})
    if repeated:
        # each row would be read twice, with the same id, and counted twice in the report
        raise ValueError(f"tasks: {repeated} listed more than once")
    questions = load_babi(Path(raw_dir), tasks)
    report = Report("bAbI")
    rows = []
    for q in questions:
        category = BABI_TASKS[q.task]
        counts = report.per_category[category]
        counts["rows"] += 1
        flagged = bool(q.missing_support)
        counts["flagged"] += flagged
        counts["covered"] += not flagged
        if flagged:
            report.flag_reasons[(category, "missing_support")] += 1
        if flagged and sampling.flagged == "drop":
            report.dropped["missing_support"] += 1
            continue
        rows.append(
            {
                "id": f"{q.task}-{q.split}-{q.story:04d}-{q.line:03d}",
                "split": q.split,
                "category": category,
                "context": list(q.context),
                "question": q.question,
                "answers": list(q.answers),
                "relevant": list(q.relevant),
                "task": q.task,
                "story": q.story,
                "line": q.line,
                "flagged": flagged,
            }
        )
    kept = sample_rows(rows, sampling, group=lambda r: (r["split"], r["task"], r["story"]), report=report)
    for r in kept:
        report.per_category[r["category"]]["kept"] += 1
    extras = {"task": pl.String, "story": pl.Int64, "line": pl.Int64, "flagged": pl.Boolean}
    frame = pl.DataFrame(kept, schema={**SCHEMA, **extras}, orient="row")
    return frame, report


def sample_rows(
    rows: list[dict[str, Any]],
    sampling: Sampling,
    *,
    group: Callable[[dict[str, Any]], tuple],
    report: Report,
) -> list[dict[str, Any]]:
    """Keep ``per_story`` questions per story, then cap each split; seeded and order-stable."""
    by_story: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_story[group(r)].append(r)
    chosen: list[dict[str, Any]] = []
    for key, members in by_story.items():
        n = sampling.per_story
        if n is None or n >= len(members):
            chosen.extend(members)
            continue
        if sampling.question == "first":
            pick = members[:n]
        elif sampling.question == "last":
            pick = members[-n:]
        elif sampling.question == "random":
            rng = row_rng(sampling.seed, "story", "/".join(map(str, key)))
            pick = sorted(rng.sample(members, n), key=members.index)
        else:
            raise ValueError(f"unknown sampling.question {sampling.question!r}")
        report.dropped["not_sampled"] += len(members) - n
        chosen.extend(pick)
    kept: list[dict[str, Any]] = []
    for split in ("train", "test"):
        in_split = [r for r in chosen if r["split"] == split]
        cap = sampling.max.get(split)
        if cap is not None and cap < len(in_split):
            rng = row_rng(sampling.seed, "cap", split)
            picked = set(rng.sample(range(len(in_split)), cap))
            report.dropped["over_cap"] += len(in_split) - cap
            in_split = [r for i, r in enumerate(in_split) if i in picked]
        kept.extend(in_split)
    return kept


def _babi(raw: Path, options: Mapping[str, Any], sampling: Sampling) -> tuple[pl.DataFrame, Report]:
    return decompose_babi(raw, tasks=options["tasks"], sampling=sampling)


def _cotemp(raw: Path, options: Mapping[str, Any], sampling: Sampling) -> tuple[pl.DataFrame, Report]:
    from tracekd.cotemp import decompose_cotemp

    return decompose_cotemp(
        raw, sampling=sampling, split=options.get("split", {}), relations=options.get("relations")
    )


def _marco(raw: Path, options: Mapping[str, Any], sampling: Sampling) -> tuple[pl.DataFrame, Report]:
    from tracekd.marco import decompose_marco

    return decompose_marco(raw, sampling=sampling, split=options.get("split"))


#: dataset loader per config ``datasets.<name>.loader``: (raw_dir, options, sampling)
LOADERS: Mapping[str, Callable[[Path, Mapping[str, Any], Sampling], tuple[pl.DataFrame, Report]]] = {
    "babi": _babi,
    "cotemp": _cotemp,
    "marco": _marco,
}


def decompose(loader: str, raw_dir: str | Path, options: Mapping[str, Any]) -> tuple[pl.DataFrame, Report]:
    """Run the named loader; ``options`` is the dataset's config block."""
    if loader not in LOADERS:
        raise ValueError(f"unknown loader {loader!r}; known: {sorted(LOADERS)}")
    return LOADERS[loader](Path(raw_dir), options, Sampling.from_config(options.get("sample", {})))
