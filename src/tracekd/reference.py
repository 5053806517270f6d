"""The paper's released outputs: read them into a predictions frame and score them.

The authors of arXiv 2505.13792 released their predictions (sbhambr1/Trace_Check_QA,
``results/{Cotempqa,Babiqa}/evaluation_outputs``) as JSON lines: ``input`` (the rendered prompt:
an object with ``text``, or a plain string for the prompted baseline and bAbI), ``prediction``
(the raw decoded output), ``gold`` and ``question``; CoTempQA rows add ``facts`` and
``triple_element``, bAbI rows ``query_type``, ``passage`` (the context as a Python list
literal), ``reasoning`` and ``answer_passage`` (the gold supporting sentences). Beside each, a
``results_*.json`` holds their ``acc, f1, p, r, avg``.

:func:`score_reference` re-scores a file two ways: ``variant="paper"``, the paper's released
evaluator exactly (its extraction of the answer from the raw output included; it reproduces the
published numbers), or the dataset's own rule applied to the final answer alone as the workflow
does (``cotempqa``: CoTempQA's candidate rule; ``babi``: normalized exact match); and it adds
the trace metrics of :func:`tracekd.score.score_predictions`.

CoTempQA rows carry no gold relevant facts: by default the strict IR columns are null (unknown,
not wrong); ``gold_facts="answer_facts"`` takes the facts that contain a gold answer (the
authors' own definition, ``answer_facts`` in their
``scripts/cotempqa_create_fact_retrieval_data.py``), and ``gold_facts="decomposition"`` joins the
rows to our CoTemp decomposition on question and facts (DESIGN.md's anchor + answer facts).
bAbI rows name their gold supporting sentences, so their strict IR is always known.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tracekd.babi import BABI_TASKS
from tracekd.chat import ChatFormat, conversation_text
from tracekd.cotemp import RELATIONS
from tracekd.decompose import SCHEMA
from tracekd.errors import RawFormatError
from tracekd.readers import iter_json_lines
from tracekd.score import (
    COTEMP_TRIPLE_ELEMENTS,
    paper_babi_score,
    paper_cotemp_score,
    score_predictions,
)
from tracekd.traces import TraceFormat, TraceTemplate, parse_output

#: the trace sentences of the authors' released runs (their traces put a newline between the
#: two steps; the parser tolerates either spacing)
COTEMP_TRACE_TEMPLATE = TraceTemplate(
    "The temporal relation between the event in question and the event in context is: "
    "{category}.\nI need to use the following facts to answer the question: {facts}",
    facts="python_list",
)
BABI_TRACE_TEMPLATE = TraceTemplate(
    "The category of the question represents what is being asked in that question. The "
    "category of the question asked is: {category}.\nI need to use the following text to "
    "answer the question: {facts}",
    facts="python_list",
)
TRACE_TEMPLATES: Mapping[str, TraceTemplate] = {
    "CoTemp": COTEMP_TRACE_TEMPLATE,
    "bAbI": BABI_TRACE_TEMPLATE,
}

#: CoTempQA's relations; the file name says which one a reference file holds
COTEMP_RELATIONS = RELATIONS

#: the score variants per dataset: the paper's released evaluator, or our rule on the answer
VARIANTS: Mapping[str, tuple[str, ...]] = {"CoTemp": ("paper", "cotempqa"), "bAbI": ("paper", "babi")}

#: ``gold_facts`` values for CoTemp: unknown (strict IR null), the authors' answer-fact rule,
#: or our decomposition joined on question and facts
GOLD_FACTS = ("none", "answer_facts", "decomposition")

#: the predictions-frame columns ``read_trace_check_qa`` returns (``triple_element`` for
#: CoTemp, ``task`` for bAbI; the other dataset's column is null)
REFERENCE_SCHEMA: dict[str, Any] = {
    **SCHEMA,  # the decomposed columns, then the datasets' extras and the prediction columns
    "triple_element": pl.String,
    "task": pl.String,
    "prompt": pl.String,
    "output": pl.String,
    "trace_text": pl.String,
    "trace_tokens": pl.Int64,
    "pred_category": pl.String,
    "pred_facts": pl.List(pl.String),
    "pred_answer": pl.String,
    "parse_status": pl.String,
    "answer_source": pl.String,
}

_TASK_OF_CATEGORY = {name: task for task, name in BABI_TASKS.items()}
_RELATION_IN_NAME = re.compile(r"(?:^|[_/])(" + "|".join(COTEMP_RELATIONS) + r")(?:_|\.|/|$)")
#: file-name suffixes of the released runs -> our setting names (longest first)
_SETTING_SUFFIXES = (
    ("-sft-adapter-reasoning-facts-perturbed", "incorrect"),
    ("-sft-adapter-reasoning-facts", "correct"),
    ("-sft-adapter", "vanilla"),
)
#: settings whose target has no trace: their trace metrics are empty, not 0
_NO_TRACE_SETTINGS = ("prompt", "vanilla")


def relation_from_name(path: str | Path) -> str | None:
    """The CoTempQA relation a reference file's path gives (``.../equal/...`` -> ``equal``)."""
    match = _RELATION_IN_NAME.search(Path(path).as_posix())
    return match.group(1) if match else None


@dataclass(frozen=True)
class ReleasedRun:
    """What a released file's path says about the run that wrote it (``None``: not said)."""

    dataset: str | None  # "CoTemp" or "bAbI"
    relation: str | None  # CoTempQA's relation (equal, overlap, during, mix)
    model: str | None  # e.g. "Qwen3-1.7B", "Llama-3.2-1B-Instruct"
    setting: str | None  # prompt, vanilla, correct or incorrect


def run_from_path(path: str | Path) -> ReleasedRun:
    """Dataset, relation, model and setting of a released outputs (or results) file.

    Reads the repository's layout (``results/Cotempqa/evaluation_outputs/equal/Qwen3-1.7B-
    sft-adapter-reasoning-facts_default.json``; ``.../equal_default/Qwen_Qwen3-1.7B_default_
    equal.json`` for the prompted baseline; ``results/Babiqa/...``) and the flat copies beside
    the project (``outputs_equal_Qwen3-1.7B_default.json``). A name of another shape gives
    ``None`` for what it does not say.
    """
    path = Path(path)
    posix = path.as_posix().lower()
    relation = relation_from_name(path)
    if "babi" in posix:
        dataset: str | None = "bAbI"
    elif "cotemp" in posix or relation is not None:
        dataset = "CoTemp"
    else:
        dataset = None
    stem = re.sub(r"^(outputs|results)_", "", path.stem)
    if relation is not None:
        stem = re.sub(rf"^{relation}_|_{relation}$", "", stem)
    if not stem.endswith("_default"):  # every released run was scored in mode "default"
        return ReleasedRun(dataset, relation, None, None)
    stem = stem.removesuffix("_default")
    for suffix, setting in _SETTING_SUFFIXES:
        if stem.endswith(suffix):
            return ReleasedRun(dataset, relation, stem.removesuffix(suffix), setting)
    # the prompted baseline: "Qwen_Qwen3-1.7B" (an organisation prefix) or "Qwen3-1.7B"
    organisation = re.match(r"(?:Qwen|meta-llama)_(.+)$", stem)
    return ReleasedRun(dataset, relation, organisation.group(1) if organisation else stem, "prompt")


def _located(where: tuple[str, int], field: str, message: str) -> RawFormatError:
    return RawFormatError(where[0], where[1], field, message)


def _field(record: dict[str, Any], name: str, kind: type, where: tuple[str, int]) -> Any:
    """``record[name]`` checked to be a ``kind`` (a list: of strings)."""
    if name not in record:
        raise _located(where, name, "missing")
    value = record[name]
    if not isinstance(value, kind):
        raise _located(where, name, f"expected {kind.__name__}, got {type(value).__name__}")
    if kind is list and not all(isinstance(item, str) for item in value):
        raise _located(where, name, "expected a list of strings")
    return value


def _prompt(record: dict[str, Any], where: tuple[str, int]) -> str:
    """The ``input`` field: the rendered chat (an object with ``text``) or a plain prompt."""
    if "input" not in record:
        raise _located(where, "input", "missing")
    value = record["input"]
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if not isinstance(value.get("text"), str):
            raise _located(where, "input.text", "missing or not a string")
        return value["text"]
    raise _located(where, "input", f"expected dict or str, got {type(value).__name__}")


def _golds(values: Sequence[str], where: tuple[str, int]) -> list[str]:
    """Gold answers, refused when empty or blank (a blank gold matches anything)."""
    if not values:
        raise _located(where, "gold", "no gold answer")
    if any(not value.strip() for value in values):
        raise _located(where, "gold", f"empty or blank gold answer in {list(values)!r}")
    return list(values)


def _list_literal(record: dict[str, Any], name: str, where: tuple[str, int]) -> list[str]:
    """A field holding a Python list literal of strings (read by ``ast.literal_eval``)."""
    text = _field(record, name, str, where)
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise _located(where, name, "not a list literal of strings") from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _located(where, name, "not a list literal of strings")
    return value


def _records(path: Path) -> Iterator[tuple[tuple[str, int], dict[str, Any]]]:
    """``((file, line), object)`` per non-blank line, through the guarded JSON-lines reader
    (UTF-8 only, no nesting deep enough to crash the parser)."""
    for number, record in iter_json_lines(path):
        where = (str(path), number)
        if not isinstance(record, dict):
            raise _located(where, "json", f"expected an object, got {type(record).__name__}")
        yield where, record


def _cotemp_row(record: dict[str, Any], where: tuple[str, int]) -> dict[str, Any]:
    kind = _field(record, "triple_element", str, where)
    if kind not in COTEMP_TRIPLE_ELEMENTS:
        raise _located(
            where, "triple_element", f"unknown question kind {kind!r}; expected one of "
            f"{COTEMP_TRIPLE_ELEMENTS}"
        )  # fmt: skip
    return {
        "context": _field(record, "facts", list, where),
        "question": _field(record, "question", str, where),
        "answers": _golds(_field(record, "gold", list, where), where),
        "triple_element": kind,
        "task": None,
    }


def _babi_row(record: dict[str, Any], where: tuple[str, int]) -> dict[str, Any]:
    category = _field(record, "query_type", str, where)
    if category not in _TASK_OF_CATEGORY:
        raise _located(where, "query_type", f"unknown bAbI task name {category!r}")
    context = _list_literal(record, "passage", where)
    support = _list_literal(record, "answer_passage", where)
    relevant = []
    for sentence in support:  # the gold sentences, as positions in the passage
        if sentence not in context:
            raise _located(where, "answer_passage", f"sentence {sentence!r} is not in passage")
        relevant.append(context.index(sentence))
    return {
        "category": category,
        "context": context,
        "question": _field(record, "question", str, where),
        "answers": _golds([_field(record, "gold", str, where)], where),
        "relevant": relevant,
        "triple_element": None,
        "task": _TASK_OF_CATEGORY[category],
    }


def answer_fact_positions(facts: Sequence[str], golds: Sequence[str]) -> list[int]:
    """Positions of the facts that contain a gold answer (case-sensitive substring).

    The authors' definition of a CoTempQA trace's facts: ``answer_facts`` in
    sbhambr1/Trace_Check_QA ``scripts/cotempqa_create_fact_retrieval_data.py``.
    """
    return [i for i, fact in enumerate(facts) if any(gold in fact for gold in golds)]


def _decomposition_index(decomposed: pl.DataFrame) -> dict[tuple[str, tuple[str, ...]], list[int]]:
    """Our CoTemp decomposition's gold facts keyed by (question, context)."""
    return {
        (row["question"], tuple(row["context"])): list(row["relevant"])
        for row in decomposed.select("question", "context", "relevant").iter_rows(named=True)
    }


def read_trace_check_qa(
    path: str | Path,
    *,
    dataset: str = "CoTemp",
    gold_facts: str = "none",
    decomposed: pl.DataFrame | None = None,
    template: TraceTemplate | None = None,
) -> pl.DataFrame:
    """A released ``outputs_*.json`` file as a predictions frame for ``score_predictions``.

    One row per non-blank line, in file order: ``id`` (``<file stem>:<line>``), ``split``
    ("test"), ``category`` (CoTemp: the relation in the path, null when it names none; bAbI:
    ``query_type``), ``context``, ``question``, ``answers`` (the golds), ``relevant`` (bAbI:
    the ``answer_passage`` positions; CoTemp: see ``gold_facts``), ``triple_element`` or
    ``task``, ``prompt`` (the ``input`` text) and ``output`` (the raw prediction), and the
    parsed ``trace_text``, ``pred_category``, ``pred_facts``, ``pred_answer``,
    ``parse_status``, ``answer_source``. ``trace_tokens`` is null: no tokenizer is loaded here.

    ``gold_facts`` (CoTemp): ``none`` (null), ``answer_facts`` (the facts holding a gold) or
    ``decomposition`` (``decomposed``, our CoTemp decomposition, joined on question and facts;
    a row it does not hold keeps a null ``relevant``). A malformed line raises
    ``RawFormatError`` naming the file, the 1-based line and the field.
    """
    if dataset not in VARIANTS:
        raise ValueError(f"released outputs exist for {sorted(VARIANTS)}, not {dataset!r}")
    if gold_facts not in GOLD_FACTS:
        raise ValueError(f"unknown gold_facts {gold_facts!r}; expected one of {GOLD_FACTS}")
    if gold_facts == "decomposition" and decomposed is None:
        raise ValueError("gold_facts='decomposition' needs the decomposed CoTemp frame")
    path = Path(path)
    template = template or TRACE_TEMPLATES[dataset]
    relation = relation_from_name(path)
    index = _decomposition_index(decomposed) if gold_facts == "decomposition" else {}
    columns: dict[str, list[Any]] = {name: [] for name in REFERENCE_SCHEMA}
    for where, record in _records(path):
        prompt = _prompt(record, where)
        prediction = _field(record, "prediction", str, where)
        if dataset == "bAbI":
            values = _babi_row(record, where)
        else:
            values = {**_cotemp_row(record, where), "category": relation}
            if gold_facts == "answer_facts":
                values["relevant"] = answer_fact_positions(values["context"], values["answers"])
            else:
                key = (values["question"], tuple(values["context"]))
                values["relevant"] = index.get(key)
        parsed = parse_output(prediction, template)
        values.update(
            id=f"{path.stem}:{where[1]}",
            split="test",
            prompt=prompt,
            output=prediction,
            trace_text=parsed.trace_text,
            trace_tokens=None,
            pred_category=parsed.category,
            pred_facts=parsed.facts,
            pred_answer=parsed.answer,
            parse_status=parsed.status,
            answer_source=parsed.answer_source,
        )
        for name in REFERENCE_SCHEMA:
            columns[name].append(values[name])
    if not columns["id"]:
        raise RawFormatError(str(path), None, "rows", "no prediction rows")
    return pl.DataFrame(columns, schema=REFERENCE_SCHEMA)


def _percent(values: Sequence[Any]) -> float | None:
    """The authors' aggregate: ``round(sum * 100 / count, 1)``, summed in row order.

    Null values (unknown) are left out; ``None`` when nothing is known.
    """
    known = [float(v) for v in values if v is not None]
    if not known:
        return None
    return round(sum(known) * 100 / len(known), 1)


def _paper_answer_scores(frame: pl.DataFrame, dataset: str) -> dict[str, list[float]]:
    """Per-row acc, f1, p, r of the paper's released evaluator on the raw outputs."""
    acc: list[float] = []
    f1: list[float] = []
    p: list[float] = []
    r: list[float] = []
    for row in frame.iter_rows(named=True):
        if dataset == "bAbI":
            ok = float(paper_babi_score(row["output"], row["answers"][0]))
            scores = (ok, ok, ok, ok)
        else:
            result = paper_cotemp_score(
                row["output"], row["answers"], facts=row["context"], question=row["question"],
                triple_element=row["triple_element"],
            )  # fmt: skip
            scores = (float(result.correct), result.f1, result.precision, result.recall)
        for column, value in zip((acc, f1, p, r), scores, strict=True):
            column.append(value)
    return {"acc": acc, "f1": f1, "p": p, "r": r}


def score_reference(
    path: str | Path,
    dataset: str = "CoTemp",
    *,
    variant: str = "paper",
    gold_facts: str = "none",
    decomposed: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """Score a released predictions file, plus the trace metrics.

    ``variant="paper"``: ``acc, f1, p, r, avg`` of the paper's released evaluator
    (sbhambr1/Trace_Check_QA ``scripts/cotempqa_config.py`` / ``babiqa_config.py`` ``evaluate_model``
    as of the commits that scored the released files): per-row scores averaged over the rows,
    in percent, rounded to one decimal with Python's ``round``; ``avg`` is the mean of accuracy
    and F1. ``cotempqa`` (CoTemp) or ``babi`` (bAbI): the dataset's own rule applied to the
    final answer alone, as the workflow scores its runs.

    Beside them: ``n``; ``dataset``, ``relation``, ``model``, ``setting`` (from the path);
    ``has_trace`` (share of outputs with a trace); ``category_acc`` (strict) and
    ``category_lenient`` (the label anywhere in the trace); ``ir_lenient`` (the paper's check:
    any context fact in the trace); ``ir_acc`` and ``trace_acc`` (strict, where the gold facts
    are known: bAbI always, CoTemp per ``gold_facts``); ``parse_status`` and
    ``answer_source`` (counts); ``gold_rows`` (rows whose gold facts are known). Trace
    metrics are ``None`` (empty) for a run that trains no
    trace (the prompted baseline, vanilla) and for CoTemp categories when the path names no
    relation. All in percent.
    """
    if dataset not in VARIANTS:
        raise ValueError(f"released outputs exist for {sorted(VARIANTS)}, not {dataset!r}")
    if variant not in VARIANTS[dataset]:
        raise ValueError(f"unknown variant {variant!r} for {dataset}; expected one of {VARIANTS[dataset]}")
    predictions = read_trace_check_qa(path, dataset=dataset, gold_facts=gold_facts, decomposed=decomposed)
    rule = "babi" if dataset == "bAbI" else "cotemp"
    scores = score_predictions(predictions, answer_rule=rule, cotemp_variant="cotempqa")
    if variant == "paper":
        answer = _paper_answer_scores(predictions, dataset)
    else:
        answer = {
            "acc": [float(v) for v in scores["answer_correct"].to_list()],
            "f1": scores["answer_f1"].to_list(),
            "p": scores["answer_precision"].to_list(),
            "r": scores["answer_recall"].to_list(),
        }
    count = scores.height
    run = run_from_path(path)
    # a run that trains no trace has no trace metrics (empty, not 0); an unnamed one, if no
    # output holds a trace
    traced = run.setting not in _NO_TRACE_SETTINGS and bool(scores["has_trace"].any())
    known_category = predictions["category"].null_count() == 0
    # without gold facts only the rows with no trace have a strict IR verdict: report none
    known_gold = dataset == "bAbI" or gold_facts != "none"

    def trace_metric(column: str, known: bool = True) -> float | None:
        return _percent(scores[column].to_list()) if traced and known else None

    return {
        **{key: _percent(values) for key, values in answer.items()},
        # the authors: round((em_total + f1_total) * 50 / count, 1)
        "avg": round((sum(answer["acc"]) + sum(answer["f1"])) * 50 / count, 1),
        "n": count,
        "variant": variant,
        "dataset": dataset,
        "relation": run.relation,
        "model": run.model,
        "setting": run.setting,
        "has_trace": _percent(scores["has_trace"].to_list()),
        "category_acc": trace_metric("category_correct", known_category),
        "category_lenient": trace_metric("category_lenient", known_category),
        "ir_lenient": trace_metric("ir_lenient"),
        "ir_acc": trace_metric("ir_correct", known_gold),
        "trace_acc": trace_metric("trace_correct", known_category and known_gold),
        "parse_status": dict(sorted(Counter(scores["parse_status"].to_list()).items())),
        "answer_source": dict(sorted(Counter(scores["answer_source"].to_list()).items())),
        "gold_facts": "supporting sentences" if dataset == "bAbI" else gold_facts,
        # rows whose gold facts are known (a decomposition join may miss some)
        "gold_rows": int(predictions["relevant"].is_not_null().sum()),
    }


def check_prompts(
    path: str | Path, *, dataset: str, fmt: TraceFormat, chat: ChatFormat, tokenizer: Any
) -> dict[str, Any]:
    """Compare our rendered prompt with the ``input`` of every row of a released file.

    Our prompt is ``fmt``'s user message from the row's own facts (bAbI: ``passage``) and
    question, rendered by ``tokenizer``'s chat template with ``chat`` and no generation prompt
    (the shape of the released ``input``; a plain ``chat=False`` format is the text itself).
    Returns ``{"file", "checked", "equal", "first_mismatch"}``; the mismatch names the line and
    the first differing character with both texts around it.
    """
    path = Path(path)
    checked = equal = 0
    first: dict[str, Any] | None = None
    for where, record in _records(path):
        theirs = _prompt(record, where)
        if dataset == "bAbI":
            context = _list_literal(record, "passage", where)
        else:
            context = _field(record, "facts", list, where)
        question = _field(record, "question", str, where)
        ours = conversation_text(tokenizer, fmt.prompt(context, question), chat)
        checked += 1
        if ours == theirs:
            equal += 1
        elif first is None:
            at = next(
                (i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b),
                min(len(ours), len(theirs)),
            )
            first = {
                "line": where[1],
                "at": at,
                "ours": ours[max(0, at - 40) : at + 40],
                "theirs": theirs[max(0, at - 40) : at + 40],
            }
    return {"file": str(path), "checked": checked, "equal": equal, "first_mismatch": first}


# ---------------------------------------------------------------- the released evaluations, one table

#: the paper's published averages (arXiv 2505.13792): Table 2 (CoTempQA, the mean over its four
#: relations) and Table 3 (bAbI), keyed by (dataset, released model name, setting); ``None``
#: where the table shows "-"
PAPER_TABLES: Mapping[tuple[str, str, str], Mapping[str, float | None]] = {
    ("CoTemp", "Qwen3-1.7B", "prompt"): {"acc": 6.35, "f1": 11.35, "p": 14.33, "r": 10.1},
    ("CoTemp", "Qwen3-1.7B", "vanilla"): {"acc": 60.33, "f1": 74.88, "p": 82.15, "r": 71.3},
    ("CoTemp", "Qwen3-1.7B", "correct"): {
        "acc": 52.88, "f1": 70.63, "p": 79.45, "r": 66.33, "category": 47.06, "ir": 78.99,
    },
    ("CoTemp", "Qwen3-1.7B", "incorrect"): {
        "acc": 63.88, "f1": 76.5, "p": 82.58, "r": 73.5, "category": 20.36, "ir": 56.92,
    },
    ("CoTemp", "Llama-3.2-1B-Instruct", "prompt"): {"acc": 7.48, "f1": 13.78, "p": 17.58, "r": 12.15},
    ("CoTemp", "Llama-3.2-1B-Instruct", "vanilla"): {"acc": 44.65, "f1": 61.08, "p": 69.53, "r": 56.58},
    ("CoTemp", "Llama-3.2-1B-Instruct", "correct"): {
        "acc": 39.55, "f1": 56.83, "p": 65.83, "r": 52.5, "category": 39.09, "ir": 79.4,
    },
    ("CoTemp", "Llama-3.2-1B-Instruct", "incorrect"): {
        "acc": 45.58, "f1": 61.15, "p": 69.65, "r": 57.23, "category": 18.8, "ir": 73.62,
    },
    ("bAbI", "Qwen3-1.7B", "prompt"): {"acc": 0.0},
    ("bAbI", "Qwen3-1.7B", "vanilla"): {"acc": 97.9},
    ("bAbI", "Qwen3-1.7B", "correct"): {"acc": 94.41, "category": 61.7, "ir": 24.73},
    ("bAbI", "Qwen3-1.7B", "incorrect"): {"acc": 95.21, "category": 17.82, "ir": 0.0},
    ("bAbI", "Llama-3.2-1B-Instruct", "prompt"): {"acc": 12.8},
    ("bAbI", "Llama-3.2-1B-Instruct", "vanilla"): {"acc": 96.5},
    ("bAbI", "Llama-3.2-1B-Instruct", "correct"): {"acc": 94.41, "category": 61.7, "ir": 24.73},
    ("bAbI", "Llama-3.2-1B-Instruct", "incorrect"): {"acc": 86.17, "category": 3.46, "ir": 0.0},
}  # fmt: skip

_METRICS = ("acc", "f1", "p", "r")
_TRACE_METRICS = ("category_acc", "category_lenient", "ir_lenient", "ir_acc", "trace_acc")
#: the summary's columns, in order
SUMMARY_SCHEMA: dict[str, Any] = {
    "dataset": pl.String, "relation": pl.String, "model": pl.String, "setting": pl.String,
    "runs": pl.Int64, "n": pl.Int64,
    **{f"published_{m}": pl.Float64 for m in _METRICS},
    **{f"paper_{m}": pl.Float64 for m in _METRICS},
    **{f"ours_{m}": pl.Float64 for m in _METRICS},
    "paper_minus_published": pl.Float64,
    **{name: pl.Float64 for name in _TRACE_METRICS},
    **{f"table_{m}": pl.Float64 for m in (*_METRICS, "category", "ir")},
    "file": pl.String,
}  # fmt: skip


def released_outputs(release: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(dataset, outputs path, results path) of every released evaluation a ``paper_release``
    block pins (an outputs file under ``evaluation_outputs/`` and its ``evaluation_results/``)."""
    found = []
    for entry in release["releases"]:
        files = entry["files"]
        for path in files:
            if "/evaluation_outputs/" in path:
                results = path.replace("/evaluation_outputs/", "/evaluation_results/")
                if results not in files:
                    raise ValueError(f"paper_release: {path} has no results file {results} pinned")
                found.append((entry["dataset"], path, results))
    return found


def _published(path: Path) -> dict[str, float]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as err:
        raise RawFormatError(str(path), None, "json", f"not valid JSON ({err})") from None
    if not isinstance(value, dict) or not all(isinstance(value.get(m), (int, float)) for m in _METRICS):
        raise RawFormatError(str(path), None, "acc", "expected an object with numbers acc, f1, p, r")
    return {m: float(value[m]) for m in _METRICS}


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 2) if known and len(known) == len(values) else None


def release_summary(
    release: Mapping[str, Any], raw_dir: str | Path, *, decomposed: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Every released evaluation, re-scored, in one table (``results/reference/summary.csv``).

    One row per outputs file: its run (dataset, relation, model, setting), the published
    ``acc, f1, p, r``, ours under the paper's evaluator (``paper_*``) and under the dataset's own
    rule on the final answer (``ours_*``: CoTempQA's candidate rule, bAbI's exact match),
    the largest gap between the paper's evaluator and the published numbers, and the trace
    metrics (strict IR for CoTemp from ``decomposed``, our CoTemp decomposition, joined on
    question and facts; null without it). Then one ``relation == "mean"`` row per CoTemp
    (model, setting) over its ``runs`` relation files (the paper's Table 2 averages all four).
    ``table_*`` holds the paper's published average (Table 2 for CoTemp's mean rows, Table 3
    for bAbI) where it reports that run.
    """
    raw_dir = Path(raw_dir)
    rows: list[dict[str, Any]] = []
    for dataset, outputs, results in released_outputs(release):
        path = raw_dir / outputs
        options: dict[str, Any] = {}
        if dataset == "CoTemp" and decomposed is not None:
            options = {"gold_facts": "decomposition", "decomposed": decomposed}
        paper = score_reference(path, dataset, variant="paper", **options)
        ours = score_reference(path, dataset, variant=VARIANTS[dataset][1], **options)
        published = _published(raw_dir / results)
        row: dict[str, Any] = {
            "dataset": dataset, "relation": paper["relation"], "model": paper["model"],
            "setting": paper["setting"], "runs": 1, "n": paper["n"], "file": outputs,
            **{f"published_{m}": published[m] for m in _METRICS},
            **{f"paper_{m}": paper[m] for m in _METRICS},
            **{f"ours_{m}": ours[m] for m in _METRICS},
            "paper_minus_published": max(abs(paper[m] - published[m]) for m in _METRICS),
            **{name: paper[name] for name in _TRACE_METRICS},
        }  # fmt: skip
        if dataset == "bAbI":
            row.update(_table_columns(dataset, row["model"], row["setting"]))
        rows.append(row)
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        if row["dataset"] == "CoTemp":
            groups.setdefault((row["dataset"], row["model"], row["setting"]), []).append(row)
    means = []
    for (dataset, model, setting), members in groups.items():
        mean = {
            "dataset": dataset, "relation": "mean", "model": model, "setting": setting,
            "runs": len(members), "n": sum(r["n"] for r in members), "file": None,
            "paper_minus_published": None,
        }  # fmt: skip
        for column in SUMMARY_SCHEMA:
            if column not in mean and column.split("_")[0] in ("published", "paper", "ours"):
                mean[column] = _mean([r[column] for r in members])
            elif column in _TRACE_METRICS:
                mean[column] = _mean([r[column] for r in members])
        mean.update(_table_columns(dataset, model, setting))
        means.append(mean)
    full = [{column: row.get(column) for column in SUMMARY_SCHEMA} for row in rows + means]
    return pl.DataFrame(full, schema=SUMMARY_SCHEMA, orient="row")


def _table_columns(dataset: str, model: str | None, setting: str | None) -> dict[str, Any]:
    published = PAPER_TABLES.get((dataset, model or "", setting or ""), {})
    return {f"table_{m}": published.get(m) for m in (*_METRICS, "category", "ir")}


def _tex_number(value: Any) -> str:
    return "--" if value is None else f"{value:.1f}"


def release_summary_latex(summary: pl.DataFrame) -> str:
    """The summary as a booktabs table: accuracy published / ours under the paper's evaluator /
    ours under the dataset's rule, the paper's table value, and the trace metrics."""
    from tracekd.report import latex_escape

    lines = [
        r"\begin{table}[t]",
        r"\centering\small",
        r"\caption{The paper's released evaluations re-scored. Accuracy (\%): published, the "
        r"paper's evaluator re-run, the dataset's own rule on the final answer alone, and the "
        r"paper's table; trace metrics (\%): category strict / lenient, IR lenient / strict.}",
        r"\label{tab:reference}",
        r"\begin{tabular}{llllrrrrrrr}",
        r"\toprule",
        r"Data & Relation & Model & Setting & Published & Paper rule & Own rule & Table & "
        r"Category & Cat.\ (len.) & IR (len.) / IR \\",
        r"\midrule",
    ]
    for row in summary.iter_rows(named=True):
        cells = [
            latex_escape(row["dataset"]), latex_escape(row["relation"] or "--"),
            latex_escape(row["model"] or "--"), latex_escape(row["setting"] or "--"),
            _tex_number(row["published_acc"]), _tex_number(row["paper_acc"]),
            _tex_number(row["ours_acc"]), _tex_number(row["table_acc"]),
            _tex_number(row["category_acc"]), _tex_number(row["category_lenient"]),
            f"{_tex_number(row['ir_lenient'])} / {_tex_number(row['ir_acc'])}",
        ]  # fmt: skip
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
