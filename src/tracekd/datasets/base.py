"""What every dataset plug-in shares: the decomposed schema, sampling, the coverage report,
and the shape of a plug-in (:class:`Dataset`).

Every loader yields the same columns (DESIGN.md): ``id``, ``split``, ``category``, ``context``,
``question``, ``answers``, ``relevant`` plus dataset extras; and a report of rows read, kept,
covered and flagged per category, and rows dropped by reason.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl

from tracekd.seeding import row_rng

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


#: the config key of a seeded train/test split, for datasets that come as one pool
SPLIT_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "default": {},
    "description": "a seeded train/test split of a dataset that comes as one pool",
    "properties": {
        "test_fraction": {
            "type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "default": 0.2,
            "description": "share of the problems held out for testing",
        },
        "seed": {"$ref": "#/$defs/seed", "default": 0, "description": "seed of the split"},
    },
}  # fmt: skip


def check_synthetic_size(options: Mapping[str, Any], key: str) -> None:
    """A plug-in's check: a synthetic source names its size (``source.<key>``)."""
    if options["source"].get("synthetic") and key not in options["source"]:
        raise ValueError(f"source.{key}: a synthetic source needs its size")


# ---------------------------------------------------------------- the plug-in


class AnswerScore(NamedTuple):
    """One final answer scored by a dataset's rule."""

    correct: bool  # the dataset's official verdict
    em: bool  # normalized exact match (or the rule's strict check beside its verdict)
    precision: float
    recall: float
    f1: float


#: a dataset's answer rule: (the final answer, the non-blank golds, the prediction row, the
#: dataset's config block) -> its score; it must read the final answer alone, never the trace
AnswerRule = Callable[[str | None, Sequence[str], Mapping[str, Any], Mapping[str, Any]], AnswerScore]

#: reads one decomposition: (raw folder, the dataset's config block, sampling)
Decompose = Callable[[Path, Mapping[str, Any], Sampling], tuple[pl.DataFrame, Report]]

#: writes the synthetic twin's raw files: (folder, the config's ``source`` block, the whole block)
WriteSynthetic = Callable[[Path, Mapping[str, Any], Mapping[str, Any]], None]

#: the answer values some facts state: (facts, the problem's row) -> the values an answer could
#: name from them (bAbI: the locations and objects; CoTemp: the entities its answer rule scans for)
FactValues = Callable[[Sequence[str], Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class Released:
    """How the paper released a dataset's predictions (sbhambr1/Trace_Check_QA), for
    re-scoring them (:mod:`tracekd.evaluate.reference`)."""

    #: the ``--dataset`` value of ``tracekd score`` and ``paper_release.releases[].dataset``
    name: str
    #: what a released path names when it holds this dataset's outputs (lower case)
    path_hint: str
    #: the trace sentence of the released runs (facts as a Python list literal)
    trace_template: str
    #: the score variants: ``paper`` (their evaluator, exactly) and this dataset's own rule
    variants: tuple[str, ...]
    #: one released JSON object -> the predictions-frame values of its gold side
    #: (``category, context, question, answers, relevant`` and the extras); ``(file, line)``
    #: names the row in errors; the path's category (CoTemp: its relation) is given
    read_row: Callable[[dict[str, Any], tuple[str, int], str | None], dict[str, Any]]
    #: one raw released output and its row -> (acc, f1, p, r) by the paper's evaluator
    paper_score: Callable[[str, Mapping[str, Any]], tuple[float, float, float, float]]
    #: the category a released path names (CoTemp: the relation file), or None
    category_from_path: Callable[[Path], str | None] = lambda path: None
    #: the paper's published numbers of the runs it reports: (model, setting) -> metric -> value
    tables: Mapping[tuple[str, str], Mapping[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Dataset:
    """One dataset plug-in: all the workflow knows of a dataset, in one object.

    ``loader`` is its name in config (``datasets.<name>.loader`` and ``answer_rule``);
    ``decompose`` reads its raw files into the shared :data:`SCHEMA` plus ``extras``;
    ``write_synthetic`` writes its embedded twin in the raw format (the demo); ``answer_rule``
    scores a final answer (``answer_columns``: the prediction columns it needs beyond the shared
    ones; ``score_keys``: extras carried into the scores when present); ``config_schema`` is the JSON schema of its own config keys (``properties`` of the
    dataset block, and ``source`` for its ``source`` block), composed into the workflow's
    schema; ``check_config`` adds the checks a schema cannot express (raise ``ValueError``);
    ``released``: how the paper released its outputs, if it did; ``fact_values``: the answer
    values a list of facts states (:data:`FactValues`), for deciding whether a wrong answer
    repeats a value of a forced trace (the probes' misled share); ``None`` where that is not
    decidable (free-text answers); ``categories``: its classification step's labels under a
    config block.
    """

    loader: str
    display_name: str
    decompose: Decompose
    answer_rule: AnswerRule
    extras: Mapping[str, pl.DataType] = field(default_factory=dict)
    answer_columns: tuple[str, ...] = ()
    score_keys: tuple[str, ...] = ()
    write_synthetic: WriteSynthetic | None = None
    config_schema: Mapping[str, Any] = field(default_factory=dict)
    check_config: Callable[[Mapping[str, Any]], None] | None = None
    released: Released | None = None
    fact_values: FactValues | None = None
    #: the categories (classification step) a configured dataset can have, from its config block;
    #: a corruption that needs another category is refused up front when there is only one
    categories: Callable[[Mapping[str, Any]], Sequence[str]] | None = None
