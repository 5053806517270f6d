"""The house: datasets as plug-ins, and a library laid out by stage without import circles.

A toy fourth dataset is registered from this file alone (its raw format, decomposition,
synthetic twin, answer rule and config keys) and run through decompose -> traces -> score; the
import graph of ``src/tracekd`` is read from the code and checked for circles and for imports
that run against the stages' order; no module outside ``tracekd/datasets/`` names a dataset.
"""

from __future__ import annotations

import ast
import copy
import io
import json
import re
import tokenize
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from tracekd.config import ConfigError, validate_config
from tracekd.datasets import (
    SCHEMA,
    AnswerScore,
    Dataset,
    Report,
    Sampling,
    decompose,
    get_dataset,
    register,
    registered,
    sample_rows,
    unregister,
)
from tracekd.datasets.download import prepare_raw
from tracekd.evaluate.score import score_predictions
from tracekd.traces import Setting, TraceFormat, build_traces, parse_output

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = PROJECT_ROOT / "src" / "tracekd"


# ---------------------------------------------------------------- a toy fourth dataset


def toy_decompose(raw: Path, options: Mapping[str, Any], sampling: Sampling) -> tuple[pl.DataFrame, Report]:
    """Sums: one JSON object per line, ``{"id", "split", "op", "facts", "question", "answer",
    "support"}``; category = the operation, relevant = the supporting fact positions."""
    report = Report("Toy")
    rows = []
    for line in (raw / "sums.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        counts = report.per_category[record["op"]]
        counts["rows"] += 1
        counts["covered"] += 1
        rows.append(
            {
                "id": record["id"], "split": record["split"], "category": record["op"],
                "context": record["facts"], "question": record["question"],
                "answers": [str(record["answer"])], "relevant": record["support"],
                "digits": options["digits"],
            }
        )  # fmt: skip
    kept = sample_rows(rows, sampling, group=lambda row: (row["id"],), report=report)
    for row in kept:
        report.per_category[row["category"]]["kept"] += 1
    return pl.DataFrame(kept, schema={**SCHEMA, "digits": pl.Int64}, orient="row"), report


def toy_synthetic(out: Path, source: Mapping[str, Any], options: Mapping[str, Any]) -> None:
    """Problems "a + b" and "a - b" with a distractor fact each."""
    lines = []
    for i in range(int(source["rows"])):
        a, b, noise = 3 + i, 1 + i % 3, 7 * i
        op = "plus" if i % 2 else "minus"
        answer = a + b if op == "plus" else a - b
        facts = [f"A is {a}.", f"C is {noise}.", f"B is {b}."]
        question = f"What is A {'+' if op == 'plus' else '-'} B?"
        lines.append(json.dumps({
            "id": f"toy-{i:03d}", "split": "test" if i % 4 == 0 else "train", "op": op,
            "facts": facts, "question": question, "answer": answer, "support": [0, 2],
        }))  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "sums.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def toy_rule(
    answer: str | None, golds: Sequence[str], row: Mapping[str, Any], options: Mapping[str, Any]
) -> AnswerScore:
    """The number in the answer (its list literal's first item) equals the gold number."""
    found = re.findall(r"-?\d+", answer or "")
    ok = bool(found) and found[0] in golds
    return AnswerScore(ok, ok, float(ok), float(ok), float(ok))


TOY = Dataset(
    loader="toy",
    display_name="Toy Sums",
    decompose=toy_decompose,
    answer_rule=toy_rule,
    extras={"digits": pl.Int64},
    write_synthetic=toy_synthetic,
    config_schema={
        "properties": {"digits": {"type": "integer", "minimum": 1, "default": 2}},
        "source": {"rows": {"type": "integer", "minimum": 1}},
    },
)

TOY_BLOCK: dict[str, Any] = {
    "loader": "toy",
    "source": {"synthetic": True, "rows": 12},
    "prompt_template": "Facts:\n{context}\nQuestion: {question}\n",
    "trace_template": "The operation is: {category}.\nThe facts: {facts}",
    "answer_rule": "toy",
}


@pytest.fixture
def toy() -> Iterator[Dataset]:
    register(TOY)
    try:
        yield TOY
    finally:
        unregister("toy")


def demo_config() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "config" / "demo.yaml").read_text(encoding="utf-8"))


def test_a_toy_dataset_runs_decompose_traces_score(toy: Dataset, tmp_path: Path) -> None:
    config = demo_config()
    config["datasets"] = {"Sums": copy.deepcopy(TOY_BLOCK)}
    config["report"] = {"table2_dataset": "Sums", "table3_datasets": ["Sums"]}
    config["probing"] = {"datasets": ["Sums"]}
    validate_config(config)  # the plug-in's keys are composed into the schema
    block = config["datasets"]["Sums"]
    assert block["digits"] == 2 and "relations" not in block  # its default, none of CoTemp's
    prepare_raw("toy", block["source"], tmp_path / "raw", options=block)
    decomposed, report = decompose("toy", tmp_path / "raw", block)
    assert decomposed.height == 12 and set(decomposed["category"]) == {"plus", "minus"}
    assert report.to_dict()["per_category"]["plus"]["kept"] == 6
    fmt = TraceFormat.from_config(block)
    for setting in (Setting("correct", "trace"), Setting("incorrect", "trace", "random", seed=3)):
        traces = build_traces(decomposed, setting=setting, fmt=fmt)
        test = traces.filter(pl.col("split") == "test")
        # a perfect model: it writes the completion it was trained on
        parsed = [parse_output(text, fmt.trace) for text in test["completion"]]
        gold = decomposed.filter(pl.col("split") == "test")
        predictions = gold.with_columns(
            trace_text=pl.Series([p.trace_text for p in parsed]),
            trace_tokens=pl.lit(5, dtype=pl.Int64),
            pred_category=pl.Series([p.category for p in parsed]),
            pred_facts=pl.Series([p.facts for p in parsed], dtype=pl.List(pl.String)),
            pred_answer=pl.Series([p.answer for p in parsed]),
            parse_status=pl.Series([p.status for p in parsed]),
            answer_source=pl.Series([p.answer_source for p in parsed]),
        )
        scores = score_predictions(predictions, answer_rule="toy", options=block)
        assert scores["answer_correct"].all()  # the right answer, whatever the trace
        assert scores["trace_correct"].all() == (setting.corruption is None)


def test_the_toy_blocks_own_keys_are_checked(toy: Dataset) -> None:
    config = demo_config()
    config["datasets"] = {"Sums": {**copy.deepcopy(TOY_BLOCK), "digitz": 3}}
    config["report"] = {"table2_dataset": "Sums", "table3_datasets": ["Sums"]}
    with pytest.raises(ConfigError, match=r"datasets\.Sums\.digitz: unknown key"):
        validate_config(config)
    config["datasets"] = {"Sums": {**copy.deepcopy(TOY_BLOCK), "tasks": ["qa1"]}}
    with pytest.raises(ConfigError, match=r"datasets\.Sums\.tasks: unknown key"):
        validate_config(config)  # bAbI's key, not the toy's


def test_registry() -> None:
    assert registered()[:3] == ("babi", "cotemp", "marco")
    assert get_dataset("babi").display_name == "Facebook bAbI QA"
    with pytest.raises(ValueError, match="unknown loader 'squad'"):
        get_dataset("squad")
    with pytest.raises(ValueError, match="registered already"):
        register(get_dataset("babi"))
    assert "toy" not in registered()  # the fixture cleaned up


# ---------------------------------------------------------------- the import graph

#: the stages in the order data flows; a module may import its own stage and earlier ones,
#: and the shared plumbing (the top-level modules); the CLI and config sit above them all
STAGES = ("datasets", "traces", "model", "evaluate", "report")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the tracekd modules it imports at module level (as the code says)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found: set[str] = set()
        for node in tree.body:  # module level: lazy imports inside functions are not edges
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            found |= {t for t in targets if t in modules and t != name}
        graph[name] = found
    return graph


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_no_import_circles() -> None:
    graph = import_graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_stages_import_only_earlier_stages() -> None:
    order = {stage: i for i, stage in enumerate(STAGES)}
    wrong = []
    for module, imported in import_graph().items():
        here = _stage(module)
        for target in imported:
            there = _stage(target)
            if here is None and module.count(".") == 1 and there is not None:
                # shared plumbing (io, text, readers, ...) depends on no stage; cli and config may
                if module not in ("tracekd.cli", "tracekd.config"):
                    wrong.append(f"{module} -> {target}")
            elif here is not None and there is not None and order[there] > order[here]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, wrong


def _code_tokens(path: Path) -> Iterator[tuple[int, str]]:
    """Names and string literals of a module, docstrings and comments left out."""
    tokens = list(tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline))
    for i, token in enumerate(tokens):
        if token.type == tokenize.NAME:
            yield token.start[0], token.string
        elif token.type == tokenize.STRING:
            before = tokens[i - 1].type if i else tokenize.ENCODING
            if before not in (tokenize.INDENT, tokenize.NEWLINE, tokenize.NL, tokenize.DEDENT, tokenize.ENCODING):
                yield token.start[0], token.string


def test_nothing_outside_the_datasets_package_names_a_dataset() -> None:
    names = re.compile(r"babi|cotemp|marco", re.IGNORECASE)
    found = [
        f"{path.relative_to(PROJECT_ROOT)}:{line}: {text[:60]}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if "datasets" not in path.relative_to(PACKAGE).parts
        for line, text in _code_tokens(path)
        if names.search(text)
    ]
    assert not found, found
