"""SFT examples per setting: the prompt, and the completion the setting trains on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tracekd.seeding import row_rng
from tracekd.traces.corrupt import (
    corrupt_trace,
    derangement,
    replace_facts,
    wrong_answer,
    wrong_category,
)
from tracekd.traces.format import TraceFormat, TraceTemplate

if TYPE_CHECKING:  # polars is needed only to build SFT tables, not to render or parse traces
    import polars as pl

#: what each setting trains on (DESIGN.md, "settings")
TARGETS = ("none", "answer", "trace")

#: the paper's settings, in the order of its tables (others follow in config order)
SETTING_ORDER = ("prompt", "vanilla", "correct", "incorrect")

#: the corruption schemes of a trace setting (config ``settings[].corruption``), and what each
#: changes: the paper's ``random`` (both steps), one step (``category``; ``facts`` with a
#: ``share`` of the gold facts), the whole trace (``swap``: another problem's; ``filler``: dots
#: of the same token length), or the answer (``answer``: another problem's, after the gold trace)
SCHEMES: dict[str, tuple[str, ...]] = {
    "random": ("category", "facts"),
    "category": ("category",),
    "facts": ("facts",),
    "swap": ("trace",),
    "answer": ("answer",),
    "filler": ("trace",),
}

#: the columns a scheme beyond the paper's adds to its traces table (the paper's two keep theirs)
CHANGE_COLUMNS = ("changed", "replaced", "donor_id", "target_answers", "replaced_trace")


@dataclass(frozen=True)
class Setting:
    """One fine-tuning setting: its name (a path wildcard) and what it trains on."""

    name: str
    target: str  # "none" (prompt baseline), "answer" (vanilla) or "trace"
    corruption: str | None = None  # None: the gold trace; else one of SCHEMES
    seed: int = 0
    share: float | None = None  # the ``facts`` scheme: the share of gold facts replaced

    def __post_init__(self) -> None:
        if self.corruption is not None and self.corruption not in SCHEMES:
            raise ValueError(
                f"setting {self.name!r}: unknown corruption scheme {self.corruption!r}; "
                f"expected one of {sorted(SCHEMES)}"
            )
        if (self.corruption == "facts") != (self.share is not None):
            raise ValueError(
                f"setting {self.name!r}: share goes with the facts scheme, and only with it"
            )

    @property
    def trains(self) -> bool:
        """Whether this setting fine-tunes the model (the prompt baseline does not)."""
        return self.target != "none"


def dose(entry: Mapping[str, Any]) -> float | None:
    """A setting's share of gold facts corrupted, in percent: 0 for the correct trace, the
    ``share`` of a facts scheme; None for any other setting (not on the dose-response)."""
    if entry.get("target") != "trace":
        return None
    if entry.get("corruption") is None:
        return 0.0
    if entry.get("corruption") == "facts":
        return 100.0 * float(entry["share"])
    return None


def render_completion(
    setting: Setting, template: TraceTemplate, answers: Sequence[str], category: str, facts: Sequence[str]
) -> str:
    """The SFT target in the default format (see :meth:`TraceFormat.render_completion`)."""
    return TraceFormat(template).render_completion(setting.target, answers, category, facts)


def build_traces(
    decomposed: pl.DataFrame,
    *,
    setting: Setting,
    fmt: TraceFormat,
    categories: Sequence[str] | None = None,
) -> pl.DataFrame:
    """SFT examples for one setting: id, split, prompt, completion and the trace fields.

    ``trace_category``/``trace_facts``/``trace_relevant`` are what the completion's trace says
    (gold for ``correct``, drawn for ``incorrect``, null when the target has no trace or the
    trace is filler); ``corruption`` records how a corrupted trace was drawn. A scheme beyond
    the paper's adds ``CHANGE_COLUMNS``: what it changed (``changed``), how many gold facts it
    replaced, the problem it took a trace or answer from (``donor_id``), the answer the
    completion writes (``target_answers``) and, for filler, the trace the training step
    replaces by dots of the same token length in the model's tokenizer (``replaced_trace``).
    Swapped traces and wrong answers come from problems of the same split, so no test answer
    reaches a training target.
    """
    import polars as pl

    rows = decomposed.select("id", "split", "category", "context", "question", "answers", "relevant")
    cats = list(categories) if categories is not None else sorted(set(rows["category"].to_list()))
    contexts = rows["context"].to_list()
    # donors in id order, not row order, so a row's incorrect trace does not depend on where it
    # sits in the frame (its own sentences are never drawn: they are gold or already picked)
    ids = rows["id"].to_list()
    donors = [contexts[j] for j in sorted(range(len(ids)), key=ids.__getitem__)]
    records = list(rows.iter_rows(named=True))
    partner = _swap_partners(records, setting) if setting.corruption == "swap" else {}
    answer_pools = _answer_pools(records) if setting.corruption == "answer" else {}
    extended = setting.corruption not in (None, "random")
    schema = trace_schema(extended=extended)
    out: dict[str, list] = {k: [] for k in schema}
    for row in records:
        context, relevant = list(row["context"]), list(row["relevant"])
        gold_facts = [context[j] for j in relevant]
        answers = list(row["answers"])
        change: dict[str, object] = dict.fromkeys(CHANGE_COLUMNS)
        scheme = setting.corruption if setting.target == "trace" else None
        t_cat, t_facts, t_rel = row["category"], gold_facts, relevant
        source: str | None = "gold"
        rng = row_rng(setting.seed, setting.name, row["id"])
        if scheme == "random":
            bad = corrupt_trace(
                rng,
                category=row["category"],
                categories=cats,
                context=context,
                relevant=relevant,
                donors=donors,
            )
            t_cat, t_facts, t_rel, source = bad.category, bad.facts, bad.relevant, bad.source
        elif scheme == "category":
            t_cat, source = wrong_category(rng, row["category"], cats), "other_category"
        elif scheme == "facts":
            t_facts, t_rel, change["replaced"], source = replace_facts(
                rng, share=float(setting.share or 1.0), context=context, relevant=relevant,
                donors=donors,
            )  # fmt: skip
        elif scheme == "swap":
            donor = partner[row["id"]]
            t_cat = donor["category"]
            t_facts = [donor["context"][j] for j in donor["relevant"]]
            position = {sentence: j for j, sentence in reversed(list(enumerate(context)))}
            t_rel = [position.get(fact, -1) for fact in t_facts]
            change["donor_id"], source = donor["id"], "other_problem"
        elif scheme == "answer":
            same, anywhere = answer_pools[(row["split"], row["category"])], answer_pools[row["split"]]
            answers, change["donor_id"], source = wrong_answer(
                rng,
                answers=answers,
                same_category=[(i, a) for i, a in same if i != row["id"]],
                anywhere=[(i, a) for i, a in anywhere if i != row["id"]],
            )
        elif scheme == "filler":
            change["replaced_trace"] = fmt.trace.render(t_cat, t_facts)
            t_cat, t_facts, t_rel, source = None, None, None, "filler"
        if setting.target != "trace":
            t_cat, t_facts, t_rel, source = None, None, None, None
        if scheme == "filler":
            # the gold trace for now: training puts the model's filler in its place
            completion = fmt.render_completion("trace", answers, row["category"], gold_facts)
        else:
            completion = fmt.render_completion(setting.target, answers, t_cat or "", t_facts or [])
        if extended:
            change["changed"] = list(SCHEMES[scheme]) if scheme else None
            change["target_answers"] = answers
        out["id"].append(row["id"])
        out["split"].append(row["split"])
        out["setting"].append(setting.name)
        out["prompt"].append(fmt.prompt(context, row["question"]))
        out["completion"].append(completion)
        out["trace_category"].append(t_cat)
        out["trace_facts"].append(t_facts)
        out["trace_relevant"].append(t_rel)
        out["corruption"].append(source)
        for key in CHANGE_COLUMNS if extended else ():
            out[key].append(change[key])
    return pl.DataFrame(out, schema=schema)


def _swap_partners(records: Sequence[dict], setting: Setting) -> dict[str, dict]:
    """Each problem's swap partner: a seeded derangement of the problems of its split.

    Drawn over the split's ids in sorted order (row order does not matter), from an RNG keyed
    by the setting's seed and the split, so every problem gets another problem's trace.
    """
    partners: dict[str, dict] = {}
    for split in sorted({r["split"] for r in records}):
        members = sorted((r for r in records if r["split"] == split), key=lambda r: r["id"])
        try:
            order = derangement(row_rng(setting.seed, setting.name, f"derangement/{split}"), len(members))
        except ValueError as err:
            raise ValueError(f"setting {setting.name!r}, split {split!r}: {err}") from None
        partners.update({m["id"]: members[j] for m, j in zip(members, order, strict=True)})
    return partners


def _answer_pools(records: Sequence[dict]) -> dict[object, list[tuple[str, list[str]]]]:
    """``(id, answers)`` of the problems of each split, and of each (split, category), in id order."""
    pools: dict[object, list[tuple[str, list[str]]]] = {}
    for r in sorted(records, key=lambda r: r["id"]):
        for key in (r["split"], (r["split"], r["category"])):
            pools.setdefault(key, []).append((r["id"], list(r["answers"])))
    return pools


def trace_schema(*, extended: bool = False) -> dict[str, pl.DataType]:
    """Column types of a traces table (``extended``: with a new scheme's ``CHANGE_COLUMNS``)."""
    import polars as pl

    schema = {
        "id": pl.String,
        "split": pl.String,
        "setting": pl.String,
        "prompt": pl.String,
        "completion": pl.String,
        "trace_category": pl.String,
        "trace_facts": pl.List(pl.String),
        "trace_relevant": pl.List(pl.Int64),
        "corruption": pl.String,
    }
    if extended:
        schema |= {
            "changed": pl.List(pl.String),
            "replaced": pl.Int64,
            "donor_id": pl.String,
            "target_answers": pl.List(pl.String),
            "replaced_trace": pl.String,
        }
    return schema
