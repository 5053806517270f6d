"""The paper's released CoTempQA predictions: read them into a predictions frame and score them.

The authors of arXiv 2505.13792 released their outputs (sbhambr1/Trace_Check_QA,
``results/Cotempqa/evaluation_outputs``) as JSON lines written by
``scripts/cotempqa_sft_inference_fixed.py``: ``input.text`` (the chat prompt), ``prediction``
(the raw decoded output), ``gold``, ``question``, ``facts`` and ``triple_element``; beside each
a ``results_*.json`` with their ``acc, f1, p, r, avg``. ``score_reference`` recomputes those
numbers with our ``cotemp`` rule (which reproduces theirs) and adds the trace metrics.

The format carries no gold relevant facts. By default the IR columns are therefore null
(unknown, not wrong); ``gold_facts="answer_facts"`` instead takes the facts that contain a gold
answer, the authors' own definition of a trace's facts (``answer_facts`` in their
``scripts/cotempqa_create_fact_retrieval_data.py``), which is narrower than ours (DESIGN.md: the
anchor fact plus the answer facts).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from tracekd.cotemp import RELATIONS
from tracekd.decompose import SCHEMA
from tracekd.errors import RawFormatError
from tracekd.readers import iter_json_lines
from tracekd.score import score_predictions
from tracekd.traces import TraceTemplate, parse_output

#: the trace sentence of the authors' CoTempQA "reasoning-facts" setting (and DESIGN.md)
COTEMP_TRACE_TEMPLATE = TraceTemplate(
    "The temporal relation between the event in question and the event in context is: "
    "{category}. I need to use the following facts to answer the question: {facts}"
)

#: CoTempQA's relations; the file name says which one a reference file holds
COTEMP_RELATIONS = RELATIONS

#: ``gold_facts`` values: unknown (IR null), or the authors' answer-fact rule
GOLD_FACTS = ("none", "answer_facts")

#: the predictions-frame columns ``read_trace_check_qa`` returns
REFERENCE_SCHEMA: dict[str, Any] = {
    **SCHEMA,  # the decomposed columns, then CoTemp's extra and the prediction columns
    "triple_element": pl.String,
    "prompt": pl.String,
    "output": pl.String,
    "trace_text": pl.String,
    "trace_tokens": pl.Int64,
    "pred_category": pl.String,
    "pred_facts": pl.List(pl.String),
    "pred_answer": pl.String,
    "parse_status": pl.String,
}

_RELATION_IN_NAME = re.compile(r"(?:^|_)(" + "|".join(COTEMP_RELATIONS) + r")(?:_|\.|$)")


def relation_from_name(path: str | Path) -> str | None:
    """The CoTempQA relation a reference file's name gives (``outputs_equal_...`` -> ``equal``)."""
    match = _RELATION_IN_NAME.search(Path(path).name)
    return match.group(1) if match else None


def _field(record: dict[str, Any], name: str, kind: type, where: tuple[str, int]) -> Any:
    """``record[name]`` checked to be a ``kind`` (a list: of strings)."""
    if name not in record:
        raise RawFormatError(*where, name, "missing")
    value = record[name]
    if not isinstance(value, kind):
        raise RawFormatError(*where, name, f"expected {kind.__name__}, got {type(value).__name__}")
    if kind is list and not all(isinstance(item, str) for item in value):
        raise RawFormatError(*where, name, "expected a list of strings")
    return value


def _read_record(record: Any, where: tuple[str, int]) -> dict[str, Any]:
    """One parsed JSON line, checked: the fields the format promises, with their types."""
    if not isinstance(record, dict):
        raise RawFormatError(*where, "json", f"expected an object, got {type(record).__name__}")
    prompt = _field(record, "input", dict, where)
    if not isinstance(prompt.get("text"), str):
        raise RawFormatError(*where, "input.text", "missing or not a string")
    return {
        "prompt": prompt["text"],
        "prediction": _field(record, "prediction", str, where),
        "gold": _field(record, "gold", list, where),
        "question": _field(record, "question", str, where),
        "facts": _field(record, "facts", list, where),
        "triple_element": _field(record, "triple_element", str, where),
    }


def answer_fact_positions(facts: Sequence[str], golds: Sequence[str]) -> list[int]:
    """Positions of the facts that contain a gold answer (case-sensitive substring).

    The authors' definition of a CoTempQA trace's facts: ``answer_facts`` in
    sbhambr1/Trace_Check_QA ``scripts/cotempqa_create_fact_retrieval_data.py``.
    """
    return [i for i, fact in enumerate(facts) if any(gold in fact for gold in golds)]


def read_trace_check_qa(
    path: str | Path,
    *,
    gold_facts: str = "none",
    template: TraceTemplate = COTEMP_TRACE_TEMPLATE,
) -> pl.DataFrame:
    """A released ``outputs_*.json`` file as a predictions frame for ``score_predictions``.

    One row per non-blank line, in file order: ``id`` (``<file stem>:<line>``), ``split``
    ("test"), ``category`` (the relation in the file name; null when it names none),
    ``context`` (the facts), ``question``, ``answers`` (the golds), ``relevant`` (null, or the
    answer facts with ``gold_facts="answer_facts"``), ``triple_element``, ``prompt`` and
    ``output`` (the raw prediction), and the parsed ``trace_text``, ``pred_category``,
    ``pred_facts``, ``pred_answer``, ``parse_status``. ``trace_tokens`` is null: the format has
    no token counts and no tokenizer is loaded here.

    A malformed line raises ``RawFormatError`` naming the file, the 1-based line and the field.
    """
    if gold_facts not in GOLD_FACTS:
        raise ValueError(f"unknown gold_facts {gold_facts!r}; expected one of {GOLD_FACTS}")
    path = Path(path)
    category = relation_from_name(path)
    columns: dict[str, list[Any]] = {name: [] for name in REFERENCE_SCHEMA}
    # the guarded reader: UTF-8 only, no nesting deep enough to crash the parser
    for number, obj in iter_json_lines(path):
        record = _read_record(obj, (str(path), number))
        parsed = parse_output(record["prediction"], template)
        relevant = (
            answer_fact_positions(record["facts"], record["gold"])
            if gold_facts == "answer_facts"
            else None
        )
        values = {
            "id": f"{path.stem}:{number}",
            "split": "test",
            "category": category,
            "context": record["facts"],
            "question": record["question"],
            "answers": record["gold"],
            "relevant": relevant,
            "triple_element": record["triple_element"],
            "prompt": record["prompt"],
            "output": record["prediction"],
            "trace_text": parsed.trace_text,
            "trace_tokens": None,
            "pred_category": parsed.category,
            "pred_facts": parsed.facts,
            "pred_answer": parsed.answer,
            "parse_status": parsed.status,
        }
        for name, value in values.items():
            columns[name].append(value)
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


def score_reference(
    path: str | Path, dataset: str = "CoTemp", *, gold_facts: str = "none"
) -> dict[str, Any]:
    """Score a released predictions file as the authors did, plus the trace metrics.

    ``acc, f1, p, r, avg`` are the authors' (``evaluate_model`` in sbhambr1/Trace_Check_QA
    ``scripts/cotempqa_config.py``): per-row scores of the ``cotemp`` rule averaged over the
    rows, in percent, rounded to one decimal with Python's ``round``; ``avg`` is the mean of
    accuracy and F1 per row. Beside them: ``n``; ``has_trace`` (share of outputs with a trace);
    ``category_acc`` (strict) and ``category_lenient`` (the label anywhere in the trace), over
    all rows, ``None`` when the file name gives no relation; ``ir_acc``, ``ir_lenient`` and
    ``trace_acc`` over all rows (``None`` with ``gold_facts="none"``: the format has no gold
    facts); ``parse_status`` (counts); ``gold_facts`` (how IR was judged). All in percent.
    """
    if dataset != "CoTemp":
        raise ValueError(f"reference scoring supports dataset 'CoTemp' only, got {dataset!r}")
    predictions = read_trace_check_qa(path, gold_facts=gold_facts)
    scores = score_predictions(predictions, answer_rule="cotemp")
    acc = scores["answer_correct"].to_list()
    f1 = scores["answer_f1"].to_list()
    count = scores.height
    known_category = predictions["category"].null_count() == 0
    judged = gold_facts != "none"
    return {
        "acc": _percent(acc),
        "f1": _percent(f1),
        "p": _percent(scores["answer_precision"].to_list()),
        "r": _percent(scores["answer_recall"].to_list()),
        # the authors: round((em_total + f1_total) * 50 / count, 1)
        "avg": round((sum(map(float, acc)) + sum(f1)) * 50 / count, 1),
        "n": count,
        "has_trace": _percent(scores["has_trace"].to_list()),
        "category_acc": _percent(scores["category_correct"].to_list()) if known_category else None,
        "category_lenient": (
            _percent(scores["category_lenient"].to_list()) if known_category else None
        ),
        # without gold facts only the rows with no trace have an IR verdict: report none
        "ir_acc": _percent(scores["ir_correct"].to_list()) if judged else None,
        "ir_lenient": _percent(scores["ir_lenient"].to_list()) if judged else None,
        "trace_acc": _percent(scores["trace_correct"].to_list()) if judged else None,
        "parse_status": dict(sorted(Counter(scores["parse_status"].to_list()).items())),
        "gold_facts": gold_facts,
    }
