"""The datasets of the study, as plug-ins: one registry from a loader name to its dataset.

A dataset is one :class:`~tracekd.datasets.base.Dataset` object (its decomposition, synthetic
twin, answer rule, config keys and released outputs), put together below from its modules (a
dataset's module and its ``synth_*`` twin; the twin builds on the module, so the module does
not import it); :func:`register` adds another (see the README's "Adding a dataset").
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl

from tracekd.datasets import (
    babi,
    cotemp,
    cotemp_answer,
    marco,
    synth_babi,
    synth_cotemp,
    synth_marco,
)
from tracekd.datasets.base import (
    SCHEMA,
    AnswerRule,
    AnswerScore,
    Dataset,
    Released,
    Report,
    Sampling,
    check_synthetic_size,
    sample_rows,
)

__all__ = [
    "SCHEMA",
    "AnswerRule",
    "AnswerScore",
    "Dataset",
    "Released",
    "Report",
    "Sampling",
    "decompose",
    "get_dataset",
    "register",
    "registered",
    "released_dataset",
    "sample_rows",
]

_REGISTRY: dict[str, Dataset] = {}


def register(dataset: Dataset, *, replace: bool = False) -> Dataset:
    """Add a dataset plug-in under its ``loader`` name (``replace`` to swap one registered)."""
    if dataset.loader in _REGISTRY and not replace:
        raise ValueError(f"a dataset named {dataset.loader!r} is registered already")
    _REGISTRY[dataset.loader] = dataset
    return dataset


def unregister(loader: str) -> None:
    """Remove a plug-in (tests that register a toy dataset clean up with it)."""
    _REGISTRY.pop(loader, None)


def registered() -> tuple[str, ...]:
    """The loader names of every registered dataset, in registration order."""
    return tuple(_REGISTRY)


def get_dataset(loader: str) -> Dataset:
    """The plug-in registered as ``loader``; ``ValueError`` naming the known ones otherwise."""
    try:
        return _REGISTRY[loader]
    except KeyError:
        raise ValueError(
            f"unknown loader {loader!r} (no dataset plug-in of that name); known: {sorted(_REGISTRY)}"
        ) from None


def released_dataset(name: str) -> Dataset:
    """The plug-in whose outputs the paper released under ``name`` (``tracekd score --dataset``)."""
    for dataset in _REGISTRY.values():
        if dataset.released is not None and dataset.released.name == name:
            return dataset
    known = sorted(d.released.name for d in _REGISTRY.values() if d.released is not None)
    raise ValueError(f"released outputs exist for {known}, not {name!r}")


def decompose(loader: str, raw_dir: str | Path, options: Mapping[str, Any]) -> tuple[pl.DataFrame, Report]:
    """Decompose a dataset's raw files with its plug-in; ``options`` is its config block."""
    dataset = get_dataset(loader)
    return dataset.decompose(Path(raw_dir), options, Sampling.from_config(options.get("sample", {})))


#: the study's datasets (DESIGN.md): bAbI tasks v1.2, CoTempQA, MS MARCO
BUILT_IN = (
    Dataset(
        loader="babi",
        display_name="Facebook bAbI QA",
        decompose=babi.decompose,
        answer_rule=babi.answer_rule,
        extras=babi.EXTRAS,
        score_keys=("task",),
        write_synthetic=synth_babi.write_synthetic,
        config_schema=babi.CONFIG_SCHEMA,
        check_config=babi.check_config,
        released=babi.RELEASED,
        fact_values=babi.fact_values,
        categories=lambda options: [babi.BABI_TASKS[t] for t in options.get("tasks", babi.PAPER_TASKS)],
    ),
    Dataset(
        loader="cotemp",
        display_name="CoTemp QA",
        decompose=cotemp.decompose,
        answer_rule=cotemp_answer.cotemp_rule,
        extras=cotemp.EXTRAS,
        answer_columns=("question", "triple_element"),
        write_synthetic=synth_cotemp.write_synthetic,
        config_schema=cotemp.CONFIG_SCHEMA,
        check_config=cotemp.check_config,
        released=cotemp.RELEASED,
        fact_values=cotemp_answer.fact_values,
        categories=lambda options: list(options.get("relations", cotemp.RELATIONS)),
    ),
    Dataset(
        loader="marco",
        display_name="Microsoft MARCO QA",
        decompose=marco.decompose,
        answer_rule=marco.answer_rule,
        extras=marco.EXTRAS,
        write_synthetic=synth_marco.write_synthetic,
        config_schema=marco.CONFIG_SCHEMA,
        check_config=partial(check_synthetic_size, key="rows"),
        categories=lambda options: list(marco.QUERY_TYPES),
    ),
)

for _dataset in BUILT_IN:
    register(_dataset)
