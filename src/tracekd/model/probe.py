"""Probe inference: generation on the test split with each probe's trace forced (the answer only).

The probes' traces come from :func:`tracekd.traces.probes.build_probes`; each is rendered and
tokenized by :func:`tracekd.model.chat.forced_prompt` (the training tokens of the completion up
to its answer) and appended to the prompt's ids, so both engines, ``transformers`` and ``vllm``
(with its LoRA request), continue the same tokens. Every probe of a run is generated in one
call: the model (or vLLM engine) is loaded once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from tracekd.model.chat import ChatFormat, forced_prompt
from tracekd.model.generate import load_tokenizer
from tracekd.model.predict import InferenceSpec, generate, parsed_predictions
from tracekd.traces import TraceFormat
from tracekd.traces.probes import FILLER, FILLER_MARK, PROBE_COLUMNS, build_probes


def probe_predictions(
    *,
    base: str,
    adapter_dir: str | Path | None,
    traces: pl.DataFrame,
    free: pl.DataFrame,
    decomposed: pl.DataFrame,
    fmt: ChatFormat,
    trace_format: TraceFormat,
    probes: Sequence[str],
    spec: InferenceSpec,
    seed: int,
    probe_seed: int,
    max_lora_rank: int = 16,
) -> dict[str, pl.DataFrame]:
    """Each probe's predictions on the run's test problems (those of its free ``predictions``).

    Returns probe -> a frame with the free run's predictions columns (``output`` is the whole
    assistant turn, forced trace then generated answer, parsed as a free output is;
    ``output_tokens`` counts the generated tokens) plus the probe's columns
    (:data:`tracekd.traces.probes.PROBE_COLUMNS`), ``forced_text`` and ``forced_tokens`` (the
    forced part of the turn) and ``probe_trace_tokens`` (the forced trace's length in tokens:
    for filler, the gold trace's), in the free predictions' row order.
    """
    tokenizer = load_tokenizer(base)
    table = build_probes(free, decomposed, probes=probes, fmt=trace_format, seed=probe_seed)
    users = dict(traces.select("id", "prompt").iter_rows())
    prompts, texts, forced_counts, trace_counts = [], [], [], []
    for row in table.iter_rows(named=True):
        n_trace = len(tokenizer(row["probe_trace"], add_special_tokens=False)["input_ids"])
        filler = (FILLER_MARK, n_trace) if row["probe"] == FILLER else None
        forced = forced_prompt(
            tokenizer, users[row["id"]], row["forced_completion"], fmt,
            answer_at=row["answer_at"], filler=filler,
        )  # fmt: skip
        prompts.append(forced.input_ids)
        texts.append(forced.text)
        forced_counts.append(forced.forced_tokens)
        trace_counts.append(n_trace if row["probe_trace"] else 0)
    generations = generate(
        base, adapter_dir, tokenizer, prompts, spec=spec, seed=seed, max_lora_rank=max_lora_rank
    )
    table = table.with_columns(
        forced_text=pl.Series(texts, dtype=pl.String),
        forced_tokens=pl.Series(forced_counts, dtype=pl.Int64),
        probe_trace_tokens=pl.Series(trace_counts, dtype=pl.Int64),
        generated=pl.Series([text for text, _ in generations], dtype=pl.String),
    )
    # the whole turn, as a free run's output reads: the forced trace, then what the model wrote
    turns = [(forced + text, n) for forced, (text, n) in zip(texts, generations, strict=True)]
    gold = free.select(decomposed.columns)
    test = free.select("id")
    extra = [*PROBE_COLUMNS, "forced_text", "forced_tokens", "probe_trace_tokens", "generated"]
    out: dict[str, pl.DataFrame] = {}
    n = free.height
    for k, probe in enumerate(dict.fromkeys(table["probe"].to_list())):
        part = table.slice(k * n, n)
        parsed = parsed_predictions(test, gold, turns[k * n : (k + 1) * n], trace_format.trace, tokenizer)
        out[probe] = pl.concat([parsed, part.select(extra)], how="horizontal")
    return out
