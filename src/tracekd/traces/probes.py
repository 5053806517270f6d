"""Probes: the traces forced into a trained model at inference time, one per test problem.

Each probe replaces the trace the model would write with one built from the problem (and, for
``own-flipped``, from the model's own free generation); the model then writes only the answer.
Built here: which category and which facts each probe's trace states, from which problem, and
the completion whose rendering (up to the answer) becomes the forced prefix. The prefix itself
is tokenized by :mod:`tracekd.model.chat`, exactly as training tokenizes a completion.

Probes (their names are path wildcards):

- ``gold``: the problem's correct trace (gold category, gold facts);
- ``wrong-category``: the gold facts under another category;
- ``wrong-facts``: the gold category with as many non-gold facts;
- ``swapped``: another test problem's correct trace;
- ``no-trace``: an empty trace, the answer forced at once (early answering);
- ``filler``: ``.`` tokens as many as the gold trace's tokens;
- ``own-flipped``: the model's own free trace with its category replaced by another.

Every draw is seeded per row (:func:`tracekd.seeding.row_rng` of the probes' seed, the probe's
name and the row id), so a row's probe does not depend on the others or on row order; the wrong
category and the non-gold facts are drawn by :func:`tracekd.traces.corrupt.corrupt_trace`, the
same primitive the ``incorrect`` setting's traces come from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tracekd.seeding import row_rng
from tracekd.traces.corrupt import corrupt_trace
from tracekd.traces.format import TraceFormat, render_answer

if TYPE_CHECKING:  # polars only to build the probes' table
    import polars as pl

#: every probe, in the order of the tables and figures
PROBES = ("gold", "wrong-category", "wrong-facts", "swapped", "no-trace", "filler", "own-flipped")

#: the probe whose trace is ``.`` tokens; its length is the gold trace's in the model's tokens
FILLER = "filler"

#: stands in a filler probe's completion where its trace goes, for the model stage to replace
#: by the ``.`` tokens (an object replacement character: no template strips it, no text has it)
FILLER_MARK = "\ufffc"

#: the probes whose misled share is measured (their facts are not the problem's gold facts)
MISLEADING = ("wrong-facts", "swapped")


@dataclass(frozen=True)
class ProbeTrace:
    """One probe's trace for one problem: what it states and where it came from.

    ``category``/``facts``/``relevant`` are what the forced trace states (``None`` where it
    states nothing: no-trace, filler); ``relevant`` indexes the problem's own context (-1 for a
    fact from elsewhere); ``source`` is the id of the problem the trace or facts are taken from
    (itself, a swapped donor; ``None`` for no-trace); ``detail`` says how it was drawn.
    ``trace`` is the trace text as the template renders it (for filler: the gold trace whose
    token length the filler takes).
    """

    probe: str
    category: str | None
    facts: list[str] | None
    relevant: list[int] | None
    source: str | None
    detail: str
    trace: str


def check_probes(probes: Sequence[str]) -> list[str]:
    """The probe names, checked: each known and listed once (``ValueError`` naming the rest)."""
    unknown = [p for p in probes if p not in PROBES]
    if unknown:
        raise ValueError(f"unknown probe(s) {unknown}; known: {list(PROBES)}")
    repeated = sorted({p for p in probes if list(probes).count(p) > 1})
    if repeated:
        raise ValueError(f"probe(s) {repeated} listed more than once")
    return list(probes)


def _rng_key(probe: str) -> str:
    return f"probe:{probe}"


def draw_probe(
    probe: str,
    row: Mapping[str, Any],
    *,
    fmt: TraceFormat,
    seed: int,
    categories: Sequence[str],
    donors: Sequence[Sequence[str]],
    others: Sequence[Mapping[str, Any]],
) -> ProbeTrace:
    """``probe``'s trace for one test problem.

    ``row`` holds the problem's gold columns (``id, category, context, relevant``) and, for
    ``own-flipped``, the free generation's ``pred_category`` and ``pred_facts``; ``categories``
    are the dataset's; ``donors`` the contexts non-gold facts may be borrowed from (as the
    ``incorrect`` setting does); ``others`` the test problems a ``swapped`` trace may come from
    (the problem itself is skipped).
    """
    rng = row_rng(seed, _rng_key(probe), row["id"])
    context, relevant = list(row["context"]), list(row["relevant"])
    gold_facts = [context[i] for i in relevant]
    render = fmt.trace.render
    if probe == "gold":
        return ProbeTrace(probe, row["category"], gold_facts, relevant, row["id"], "gold",
                          render(row["category"], gold_facts))  # fmt: skip
    if probe in ("wrong-category", "wrong-facts", "own-flipped"):
        own = row.get("pred_category") if probe == "own-flipped" else row["category"]
        bad = corrupt_trace(
            rng, category=own or "", categories=categories, context=context, relevant=relevant,
            donors=donors,
        )  # fmt: skip
        if probe == "wrong-category":
            return ProbeTrace(probe, bad.category, gold_facts, relevant, row["id"],
                              "gold_facts", render(bad.category, gold_facts))  # fmt: skip
        if probe == "wrong-facts":
            return ProbeTrace(probe, row["category"], bad.facts, bad.relevant, row["id"],
                              bad.source, render(row["category"], bad.facts))  # fmt: skip
        # own-flipped: the model's own facts (none when its trace did not parse)
        facts = list(row.get("pred_facts") or [])
        parsed = row.get("pred_category") is not None and row.get("pred_facts") is not None
        return ProbeTrace(probe, bad.category, facts, None, row["id"],
                          "own" if parsed else "own_unparsed", render(bad.category, facts))  # fmt: skip
    if probe == "swapped":
        pool = [o for o in others if o["id"] != row["id"]]
        if not pool:
            raise ValueError("the swapped probe needs at least two test problems")
        donor = pool[rng.randrange(len(pool))]
        d_context = list(donor["context"])
        facts = [d_context[i] for i in donor["relevant"]]
        return ProbeTrace(probe, donor["category"], facts, [-1] * len(facts), donor["id"],
                          "other_problem", render(donor["category"], facts))  # fmt: skip
    if probe == "no-trace":
        return ProbeTrace(probe, None, None, None, None, "empty", "")
    if probe == FILLER:
        return ProbeTrace(probe, None, None, None, row["id"], "filler",
                          render(row["category"], gold_facts))  # fmt: skip
    raise ValueError(f"unknown probe {probe!r}; known: {list(PROBES)}")


def forced_completion(fmt: TraceFormat, trace: str, answers: Sequence[str]) -> tuple[str, int]:
    """A completion with ``trace`` in its trace's place and the gold answer, and where the
    answer starts in it: rendered as :meth:`TraceFormat.render_completion` renders a trace
    target, so its rendering up to the answer is what training saw before the answer."""
    head, sep, rest = fmt.completion.partition("{trace}")
    middle, sep2, tail = rest.partition("{answer}")
    if not sep or not sep2:
        raise ValueError(f"a probe needs a completion with {{trace}} before {{answer}}: {fmt.completion!r}")
    before = head + trace + middle
    return before + render_answer(answers, fmt.answer) + tail, len(before)


def probe_schema() -> dict[str, pl.DataType]:
    """Column types of the probes' table (:func:`build_probes`)."""
    import polars as pl

    return {
        "id": pl.String,
        "probe": pl.String,
        "probe_category": pl.String,
        "probe_facts": pl.List(pl.String),
        "probe_relevant": pl.List(pl.Int64),
        "probe_source": pl.String,
        "probe_detail": pl.String,
        "probe_trace": pl.String,
        "forced_completion": pl.String,
        "answer_at": pl.Int64,
    }


#: the probe columns a probe's predictions and scores carry beside a free run's
PROBE_COLUMNS = ("probe", "probe_category", "probe_facts", "probe_relevant", "probe_source",
                 "probe_detail")  # fmt: skip


def build_probes(
    free: pl.DataFrame,
    decomposed: pl.DataFrame,
    *,
    probes: Sequence[str],
    fmt: TraceFormat,
    seed: int,
    categories: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Every probe's trace for every problem of a run's free predictions (its test rows).

    ``free`` is the run's ``predictions.parquet`` (gold columns with ``pred_category`` and
    ``pred_facts``); ``decomposed`` gives the categories and the donor contexts (all splits, in
    id order, as :func:`tracekd.traces.build.build_traces` draws them). One row per (probe,
    problem), probes in the order given, problems in ``free``'s order; ``forced_completion``
    is the completion to render (the gold answer after the probe's trace; a filler's holds
    :data:`FILLER_MARK` in the trace's place) and ``answer_at`` where its answer starts.
    """
    import polars as pl

    probes = check_probes(probes)
    cats = list(categories) if categories is not None else sorted(set(decomposed["category"].to_list()))
    ids = decomposed["id"].to_list()
    contexts = decomposed["context"].to_list()
    donors = [contexts[j] for j in sorted(range(len(ids)), key=ids.__getitem__)]
    wanted = ["id", "category", "context", "relevant", "answers", "pred_category", "pred_facts"]
    missing = [c for c in wanted if c not in free.columns]
    if missing:
        raise ValueError(f"free predictions lack column(s) {missing}")
    rows = list(free.select(wanted).iter_rows(named=True))
    others = sorted(rows, key=lambda r: r["id"])  # a swapped donor does not depend on row order
    schema = probe_schema()
    out: dict[str, list] = {k: [] for k in schema}
    for probe in probes:
        for row in rows:
            drawn = draw_probe(probe, row, fmt=fmt, seed=seed, categories=cats, donors=donors,
                               others=others)  # fmt: skip
            trace = FILLER_MARK if probe == FILLER else drawn.trace
            completion, answer_at = forced_completion(fmt, trace, row["answers"])
            for key, value in (
                ("id", row["id"]), ("probe", probe), ("probe_category", drawn.category),
                ("probe_facts", drawn.facts), ("probe_relevant", drawn.relevant),
                ("probe_source", drawn.source), ("probe_detail", drawn.detail),
                ("probe_trace", drawn.trace), ("forced_completion", completion),
                ("answer_at", answer_at),
            ):  # fmt: skip
                out[key].append(value)
    return pl.DataFrame(out, schema=schema)
