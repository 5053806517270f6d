"""SFT examples per setting: the prompt, and the completion the setting trains on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tracekd.seeding import row_rng
from tracekd.traces.corrupt import corrupt_trace
from tracekd.traces.format import TraceFormat, TraceTemplate

if TYPE_CHECKING:  # polars is needed only to build SFT tables, not to render or parse traces
    import polars as pl

#: what each setting trains on (DESIGN.md, "settings")
TARGETS = ("none", "answer", "trace")

#: the paper's settings, in the order of its tables (others follow in config order)
SETTING_ORDER = ("prompt", "vanilla", "correct", "incorrect")


@dataclass(frozen=True)
class Setting:
    """One fine-tuning setting: its name (a path wildcard) and what it trains on."""

    name: str
    target: str  # "none" (prompt baseline), "answer" (vanilla) or "trace"
    corruption: str | None = None  # None: the gold trace; "random": the paper's incorrect trace
    seed: int = 0

    @property
    def trains(self) -> bool:
        """Whether this setting fine-tunes the model (the prompt baseline does not)."""
        return self.target != "none"


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
    (gold for ``correct``, drawn for ``incorrect``, null when the target has no trace);
    ``corruption`` records how an incorrect trace was drawn.
    """
    import polars as pl

    rows = decomposed.select("id", "split", "category", "context", "question", "answers", "relevant")
    cats = list(categories) if categories is not None else sorted(set(rows["category"].to_list()))
    contexts = rows["context"].to_list()
    # donors in id order, not row order, so a row's incorrect trace does not depend on where it
    # sits in the frame (its own sentences are never drawn: they are gold or already picked)
    ids = rows["id"].to_list()
    donors = [contexts[j] for j in sorted(range(len(ids)), key=ids.__getitem__)]
    schema = trace_schema()
    out: dict[str, list] = {k: [] for k in schema}
    for row in rows.iter_rows(named=True):
        context, relevant = list(row["context"]), list(row["relevant"])
        if setting.target == "trace" and setting.corruption is not None:
            if setting.corruption != "random":
                raise ValueError(f"unknown corruption scheme {setting.corruption!r}")
            rng = row_rng(setting.seed, setting.name, row["id"])
            bad = corrupt_trace(
                rng,
                category=row["category"],
                categories=cats,
                context=context,
                relevant=relevant,
                donors=donors,
            )
            t_cat, t_facts, t_rel, source = bad.category, bad.facts, bad.relevant, bad.source
        elif setting.target == "trace":
            t_cat, t_rel, source = row["category"], relevant, "gold"
            t_facts = [context[j] for j in relevant]
        else:
            t_cat, t_facts, t_rel, source = None, None, None, None
        completion = fmt.render_completion(
            setting.target, row["answers"], t_cat or "", t_facts or []
        )
        out["id"].append(row["id"])
        out["split"].append(row["split"])
        out["setting"].append(setting.name)
        out["prompt"].append(fmt.prompt(context, row["question"]))
        out["completion"].append(completion)
        out["trace_category"].append(t_cat)
        out["trace_facts"].append(t_facts)
        out["trace_relevant"].append(t_rel)
        out["corruption"].append(source)
    return pl.DataFrame(out, schema=schema)


def trace_schema() -> dict[str, pl.DataType]:
    """Column types of a traces table."""
    import polars as pl

    return {
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
