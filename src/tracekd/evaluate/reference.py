"""The paper's released outputs: read them into a predictions frame, score them, summarise.

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
the trace metrics of :func:`tracekd.evaluate.score.score_predictions`.

Each dataset plug-in says how its rows were released (:class:`tracekd.datasets.Released`).
A dataset whose rows carry no gold relevant facts (CoTempQA) has null strict IR columns by
default (unknown, not wrong); ``gold_facts="answer_facts"`` takes the facts that contain a gold
answer (the authors' own definition, ``answer_facts`` in their
``scripts/cotempqa_create_fact_retrieval_data.py``), and ``gold_facts="decomposition"`` joins the
rows to our decomposition on question and facts (DESIGN.md's anchor + answer facts). A dataset
whose rows name their gold sentences (bAbI) always has them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tracekd.datasets import SCHEMA, Dataset, get_dataset, registered, released_dataset
from tracekd.datasets.released import Where, field_of, located, prompt_of
from tracekd.errors import RawFormatError
from tracekd.evaluate.score import score_predictions
from tracekd.model.chat import ChatFormat, conversation_text
from tracekd.readers import iter_json_lines, open_input
from tracekd.traces import TraceFormat, TraceTemplate, parse_output

#: ``gold_facts`` values for a dataset whose released rows carry no gold facts: unknown
#: (strict IR null), the authors' answer-fact rule, or our decomposition joined on question and
#: facts
GOLD_FACTS = ("none", "answer_facts", "decomposition")

#: the prediction columns a released file gives beside the gold side
_PREDICTION_COLUMNS: dict[str, Any] = {
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

#: file-name suffixes of the released runs -> our setting names (longest first)
_SETTING_SUFFIXES = (
    ("-sft-adapter-reasoning-facts-perturbed", "incorrect"),
    ("-sft-adapter-reasoning-facts", "correct"),
    ("-sft-adapter", "vanilla"),
)
#: settings whose target has no trace: their trace metrics are empty, not 0
_NO_TRACE_SETTINGS = ("prompt", "vanilla")


def reference_schema(dataset: Dataset) -> dict[str, Any]:
    """The columns :func:`read_trace_check_qa` returns for a dataset: the decomposed ones, the
    extras its rule reads, then the prediction columns."""
    wanted = (*dataset.answer_columns, *dataset.score_keys)
    extras = {name: dataset.extras[name] for name in wanted if name in dataset.extras}
    return {**SCHEMA, **extras, **_PREDICTION_COLUMNS}


def _dataset_of(path: Path) -> str:
    """The released dataset a path names; a ``ValueError`` asking for it when it names none."""
    with open_input(path):  # a folder or a missing file: that error first, by the reader
        pass
    name = run_from_path(path).dataset
    if name is None:
        known = sorted(get_dataset(n).released.name for n in registered() if get_dataset(n).released)
        raise ValueError(f"{path}: the path names no dataset; give it (one of {known})")
    return name


def _path_dataset(path: Path) -> Dataset | None:
    """The registered dataset whose released files a path names (its ``path_hint``)."""
    posix = path.as_posix().lower()
    for loader in registered():
        dataset = get_dataset(loader)
        if dataset.released is not None and dataset.released.path_hint in posix:
            return dataset
    return None


@dataclass(frozen=True)
class ReleasedRun:
    """What a released file's path says about the run that wrote it (``None``: not said)."""

    dataset: str | None  # the released name of its dataset (``Released.name``)
    relation: str | None  # the part of the dataset the path names (CoTempQA's relation file)
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
    found = _path_dataset(path)
    relation = None
    for loader in registered():  # a part only one dataset names (e.g. a relation's folder)
        released = get_dataset(loader).released
        if released is not None and relation is None:
            relation = released.category_from_path(path)
            found = found or (get_dataset(loader) if relation is not None else None)
    dataset = found.released.name if found is not None and found.released is not None else None
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


def _records(path: Path) -> Iterator[tuple[Where, dict[str, Any]]]:
    """``((file, line), object)`` per non-blank line, through the guarded JSON-lines reader
    (UTF-8 only, no nesting deep enough to crash the parser)."""
    for number, record in iter_json_lines(path):
        where = (str(path), number)
        if not isinstance(record, dict):
            raise located(where, "json", f"expected an object, got {type(record).__name__}")
        yield where, record


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
    dataset: str | None = None,
    gold_facts: str = "none",
    decomposed: pl.DataFrame | None = None,
    template: TraceTemplate | None = None,
) -> pl.DataFrame:
    """A released ``outputs_*.json`` file as a predictions frame for ``score_predictions``.

    ``dataset`` is the released name of its dataset (``tracekd score --dataset``; by default
    the one the path names, see :func:`run_from_path`). One row per
    non-blank line, in file order: ``id`` (``<file stem>:<line>``), ``split`` ("test"), the
    gold side as the plug-in reads it (``category``: e.g. CoTempQA's relation from the path,
    null when it names none, or bAbI's ``query_type``; ``context``, ``question``, ``answers``,
    ``relevant``, the extras its rule reads), ``prompt`` (the ``input`` text) and ``output`` (the
    raw prediction), and the parsed ``trace_text``, ``pred_category``, ``pred_facts``,
    ``pred_answer``, ``parse_status``, ``answer_source``. ``trace_tokens`` is null: no tokenizer
    is loaded here. See :func:`reference_schema`.

    ``gold_facts``, for rows released without their gold facts: ``none`` (null),
    ``answer_facts`` (the facts holding a gold) or ``decomposition`` (``decomposed``, our
    decomposition of the dataset, joined on question and facts; a row it does not hold keeps a
    null ``relevant``). A malformed line raises ``RawFormatError`` naming the file, the 1-based
    line and the field.
    """
    path = Path(path)
    plugin = released_dataset(dataset or _dataset_of(path))
    released = plugin.released
    assert released is not None  # released_dataset only returns plug-ins with released outputs
    if gold_facts not in GOLD_FACTS:
        raise ValueError(f"unknown gold_facts {gold_facts!r}; expected one of {GOLD_FACTS}")
    if gold_facts == "decomposition" and decomposed is None:
        raise ValueError("gold_facts='decomposition' needs the decomposed frame of the dataset")
    path = Path(path)
    template = template or TraceTemplate(released.trace_template, facts="python_list")
    category = released.category_from_path(path)
    index = _decomposition_index(decomposed) if gold_facts == "decomposition" else {}
    schema = reference_schema(plugin)
    columns: dict[str, list[Any]] = {name: [] for name in schema}
    for where, record in _records(path):
        prompt = prompt_of(record, where)
        prediction = field_of(record, "prediction", str, where)
        values = released.read_row(record, where, category)
        if "relevant" not in values:  # released without gold facts
            if gold_facts == "answer_facts":
                values["relevant"] = answer_fact_positions(values["context"], values["answers"])
            else:
                values["relevant"] = index.get((values["question"], tuple(values["context"])))
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
        for name in schema:
            columns[name].append(values.get(name))
    if not columns["id"]:
        raise RawFormatError(str(path), None, "rows", "no prediction rows")
    return pl.DataFrame(columns, schema=schema)


def _percent(values: Sequence[Any]) -> float | None:
    """The authors' aggregate: ``round(sum * 100 / count, 1)``, summed in row order.

    Null values (unknown) are left out; ``None`` when nothing is known.
    """
    known = [float(v) for v in values if v is not None]
    if not known:
        return None
    return round(sum(known) * 100 / len(known), 1)


def _paper_answer_scores(frame: pl.DataFrame, plugin: Dataset) -> dict[str, list[float]]:
    """Per-row acc, f1, p, r of the paper's released evaluator on the raw outputs."""
    assert plugin.released is not None
    scores = [plugin.released.paper_score(row["output"], row) for row in frame.iter_rows(named=True)]
    return {name: [row[i] for row in scores] for i, name in enumerate(("acc", "f1", "p", "r"))}


def score_reference(
    path: str | Path,
    dataset: str | None = None,
    *,
    variant: str = "paper",
    gold_facts: str = "none",
    decomposed: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """Score a released predictions file, plus the trace metrics.

    ``variant="paper"``: ``acc, f1, p, r, avg`` of the paper's released evaluator
    (sbhambr1/Trace_Check_QA ``scripts/*_config.py`` ``evaluate_model`` as of the commits that
    scored the released files): per-row scores averaged over the rows, in percent, rounded to
    one decimal with Python's ``round``; ``avg`` is the mean of accuracy and F1. The plug-in's
    other variant (``cotempqa`` for CoTemp, ``babi`` for bAbI): the dataset's own rule applied
    to the final answer alone, as the workflow scores its runs.

    Beside them: ``n``; ``dataset``, ``relation``, ``model``, ``setting`` (from the path);
    ``has_trace`` (share of outputs with a trace); ``category_acc`` (strict) and
    ``category_lenient`` (the label anywhere in the trace); ``ir_lenient`` (the paper's check:
    any context fact in the trace); ``ir_acc`` and ``trace_acc`` (strict, where the gold facts
    are known: always for a dataset whose rows name them, else per ``gold_facts``);
    ``parse_status`` and ``answer_source`` (counts); ``gold_rows`` (rows whose gold facts are
    known). Trace metrics are ``None`` (empty) for a run that trains no trace (the prompted
    baseline, vanilla) and categories too when the path names none. All in percent.
    """
    dataset = dataset or _dataset_of(Path(path))
    plugin = released_dataset(dataset)
    assert plugin.released is not None
    if variant not in plugin.released.variants:
        raise ValueError(
            f"unknown variant {variant!r} for {dataset}; expected one of {plugin.released.variants}"
        )
    predictions = read_trace_check_qa(path, dataset=dataset, gold_facts=gold_facts, decomposed=decomposed)
    # the trace metrics do not depend on the answer rule; the plug-in's own rule, by default
    scores = score_predictions(predictions, answer_rule=plugin.loader)
    if variant == "paper":
        answer = _paper_answer_scores(predictions, plugin)
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
    rows_name_gold = predictions["relevant"].null_count() == 0 and gold_facts == "none"
    known_gold = rows_name_gold or gold_facts != "none"

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
        "gold_facts": "supporting sentences" if rows_name_gold else gold_facts,
        # rows whose gold facts are known (a decomposition join may miss some)
        "gold_rows": int(predictions["relevant"].is_not_null().sum()),
    }


def check_prompts(
    path: str | Path, *, dataset: str, fmt: TraceFormat, chat: ChatFormat, tokenizer: Any
) -> dict[str, Any]:
    """Compare our rendered prompt with the ``input`` of every row of a released file.

    Our prompt is ``fmt``'s user message from the row's own context and question (as the
    dataset's plug-in reads the row), rendered by ``tokenizer``'s chat template with ``chat`` and no generation prompt
    (the shape of the released ``input``; a plain ``chat=False`` format is the text itself).
    Returns ``{"file", "checked", "equal", "first_mismatch"}``; the mismatch names the line and
    the first differing character with both texts around it.
    """
    path = Path(path)
    released = released_dataset(dataset).released
    assert released is not None
    checked = equal = 0
    first: dict[str, Any] | None = None
    for where, record in _records(path):
        theirs = prompt_of(record, where)
        values = released.read_row(record, where, None)
        ours = conversation_text(tokenizer, fmt.prompt(values["context"], values["question"]), chat)
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
    release: Mapping[str, Any],
    raw_dir: str | Path,
    *,
    decomposed: Mapping[str, pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """Every released evaluation, re-scored, in one table (``results/reference/summary.csv``).

    One row per outputs file: its run (dataset, relation, model, setting), the published
    ``acc, f1, p, r``, ours under the paper's evaluator (``paper_*``) and under the dataset's own
    rule on the final answer (``ours_*``), the largest gap between the paper's evaluator and
    the published numbers, and the trace metrics (strict IR, for a dataset released without
    its gold facts, from ``decomposed[dataset]``: our decomposition joined on question and
    facts; null without it). Then one ``relation == "mean"`` row per (dataset, model, setting)
    whose files are parts of the dataset (CoTempQA's relations), over its ``runs`` files.
    ``table_*`` holds the paper's published average (its Table 2 for CoTempQA's mean rows, Table
    3 for bAbI's runs) where it reports that run.
    """
    raw_dir = Path(raw_dir)
    decomposed = decomposed or {}
    rows: list[dict[str, Any]] = []
    for dataset, outputs, results in released_outputs(release):
        path = raw_dir / outputs
        released = released_dataset(dataset).released
        assert released is not None
        options: dict[str, Any] = {}
        if dataset in decomposed:
            options = {"gold_facts": "decomposition", "decomposed": decomposed[dataset]}
        paper = score_reference(path, dataset, variant="paper", **options)
        ours = score_reference(path, dataset, variant=released.variants[1], **options)
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
        if row["relation"] is None:  # a whole-dataset run: the paper's table reports it
            row.update(_table_columns(dataset, row["model"], row["setting"]))
        rows.append(row)
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        if row["relation"] is not None:
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
    """The paper's published averages of a run (Table 2 or 3), where it reports them."""
    released = released_dataset(dataset).released
    published = released.tables.get((model or "", setting or ""), {}) if released else {}
    return {f"table_{m}": published.get(m) for m in (*_METRICS, "category", "ir")}
