"""Security checks: no eval/exec, no remote code, no Hugging Face token in any log or output.

(a) and (b) read the code with :mod:`ast` (strings and comments do not count); (c) runs a
small pipeline in-process on synthetic data with ``HF_TOKEN`` set and scans every byte written.
"""

from __future__ import annotations

import ast
import glob
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SRC = PROJECT_ROOT / "src"
WORKFLOW = PROJECT_ROOT / "workflow"


def _python_files(*roots: Path) -> list[Path]:
    """Every ``*.py`` under ``roots``, not following links (workflow/scripts/tracekd -> src)."""
    files: list[Path] = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root)
            if any((root / Path(*relative.parts[: i + 1])).is_symlink()
                   for i in range(len(relative.parts))):
                continue
            files.append(path)
    return files


def _trees() -> Iterator[tuple[Path, ast.AST]]:
    for path in _python_files(SRC, WORKFLOW):
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _snakemake_trees() -> list[tuple[Path, ast.AST]]:
    """The Snakefile and rules/*.smk, translated to Python by Snakemake's own parser."""
    from unittest import mock

    import snakemake.api  # noqa: F401  (imports snakemake.workflow first: a circular import)
    from snakemake.parser import parse
    from snakemake.sourcecache import LocalSourceFile

    out = []
    rules = sorted(glob.glob(f"{PROJECT_ROOT}/rules/*.smk"))
    paths = [PROJECT_ROOT / "Snakefile", *map(Path, rules)]
    for path in paths:
        workflow = mock.MagicMock()
        workflow.sourcecache.open.side_effect = lambda src, mode="r": open(  # noqa: SIM115
            src.get_path_or_uri(secret_free=True), mode, encoding="utf-8"
        )
        code = parse(LocalSourceFile(str(path)), workflow, {})[0]
        out.append((path, ast.parse(code, filename=str(path))))
    return out


def _dangerous_calls(tree: ast.AST) -> list[tuple[int, str]]:
    """``eval(...)``/``exec(...)``, also as ``builtins.eval``; ``ast.literal_eval`` and a
    model's ``.eval()`` method are fine."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("eval", "exec"):
            found.append((node.lineno, func.id))
        elif (
            isinstance(func, ast.Attribute)
            and func.attr in ("eval", "exec")
            and isinstance(func.value, ast.Name)
            and func.value.id in ("builtins", "__builtins__")
        ):
            found.append((node.lineno, f"{func.value.id}.{func.attr}"))
        elif (  # getattr(builtins, "eval")
            isinstance(func, ast.Name)
            and func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in ("eval", "exec")
        ):
            found.append((node.lineno, f"getattr(..., {node.args[1].value!r})"))
    return found


def test_the_scan_sees_the_code() -> None:
    files = [p.relative_to(PROJECT_ROOT).as_posix() for p in _python_files(SRC, WORKFLOW)]
    assert "src/tracekd/traces/parse.py" in files and "workflow/scripts/train.py" in files
    assert not any(f.startswith("workflow/scripts/tracekd/") for f in files)  # the link to src
    # and the detector detects
    assert _dangerous_calls(ast.parse("eval('1')\nbuiltins.exec(c)\nx = model.eval()")) == [
        (1, "eval"), (2, "builtins.exec"),
    ]
    assert _dangerous_calls(ast.parse("ast.literal_eval(s)  # eval(x)\ny = 'exec(z)'")) == []


def test_no_eval_or_exec_in_src_or_workflow() -> None:
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{line}: {name}"
        for path, tree in _trees()
        for line, name in _dangerous_calls(tree)
    ]
    assert offenders == []


def test_no_eval_or_exec_in_snakefile_and_rules() -> None:
    try:
        trees = _snakemake_trees()
    except (ImportError, AttributeError, TypeError) as err:  # Snakemake's parser is internal API
        pytest.skip(f"Snakemake's parser API changed: {err}")
    assert len(trees) >= 7
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}: {name}"
        for path, tree in trees
        for _, name in _dangerous_calls(tree)
    ]
    assert offenders == []


# ------------------------------------------------------------------- trust_remote_code

#: ``X.from_pretrained`` receivers that do not take ``trust_remote_code`` (PEFT loads only
#: adapter weights and its JSON config, never code)
NO_REMOTE_CODE = {"PeftModel", "PeftConfig", "LoraConfig"}


def _is_false(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _dict_keywords(node: ast.AST) -> dict[str, ast.AST] | None:
    """Keys and values of ``{...}`` or ``dict(...)`` literals; ``None`` otherwise."""
    if isinstance(node, ast.Dict):
        return {
            k.value: v for k, v in zip(node.keys, node.values, strict=True)
            if isinstance(k, ast.Constant) and isinstance(k.value, str)
        }
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        return {kw.arg: kw.value for kw in node.keywords if kw.arg is not None}
    return None


def _assigned_dicts(function: ast.AST) -> dict[str, dict[str, ast.AST]]:
    """``name -> keywords`` for each ``name = {...}``/``dict(...)`` (and later ``name.update(...)``
    or ``name["k"] = v``) in one function: what a ``**name`` in a call passes."""
    out: dict[str, dict[str, ast.AST]] = {}
    for node in ast.walk(function):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and node.value is not None:
                    found = _dict_keywords(node.value)
                    if found is not None:
                        out.setdefault(target.id, {}).update(found)
                elif (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Name)
                    and isinstance(target.slice, ast.Constant)
                    and node.value is not None
                ):
                    out.setdefault(target.value.id, {})[target.slice.value] = node.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "update"
            and isinstance(node.func.value, ast.Name)
        ):
            out.setdefault(node.func.value.id, {}).update(
                {kw.arg: kw.value for kw in node.keywords if kw.arg is not None}
            )
    return out


def _model_loading_calls(tree: ast.AST) -> Iterator[tuple[ast.Call, dict[str, ast.AST], str]]:
    """Every ``*.from_pretrained(...)`` and ``LLM(...)`` call with the keywords it passes
    (``**name`` resolved through the enclosing function's dict literals)."""
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef)
    functions = [n for n in ast.walk(tree) if isinstance(n, kinds)]
    for function in functions:
        dicts = _assigned_dicts(function)
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "from_pretrained":
                value = func.value
                receiver = value.id if isinstance(value, ast.Name) else ast.unparse(value)
                if receiver in NO_REMOTE_CODE:
                    continue
                label = f"{receiver}.from_pretrained"
            elif isinstance(func, ast.Name) and func.id == "LLM":
                label = "LLM"
            else:
                continue
            keywords: dict[str, ast.AST] = {}
            for kw in node.keywords:
                if kw.arg is not None:
                    keywords[kw.arg] = kw.value
                elif isinstance(kw.value, ast.Name) and kw.value.id in dicts:
                    keywords.update(dicts[kw.value.id])
            yield node, keywords, label


def test_trust_remote_code_is_never_true() -> None:
    offenders = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            values: list[ast.AST] = []
            if isinstance(node, ast.keyword) and node.arg == "trust_remote_code":
                values.append(node.value)
            found = _dict_keywords(node) if isinstance(node, (ast.Dict, ast.Call)) else None
            if found and "trust_remote_code" in found:
                values.append(found["trust_remote_code"])
            if (
                isinstance(node, ast.Assign)
                and any(
                    isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant)
                    and t.slice.value == "trust_remote_code"
                    for t in node.targets
                )
            ):
                values.append(node.value)
            offenders += [
                f"{path.relative_to(PROJECT_ROOT)}:{v.lineno}: trust_remote_code={ast.unparse(v)}"
                for v in values
                if not _is_false(v)
            ]
    assert offenders == []


def test_every_model_load_passes_trust_remote_code_false() -> None:
    calls, offenders = [], []
    for path, tree in _trees():
        if not path.is_relative_to(SRC):
            continue
        for node, keywords, label in _model_loading_calls(tree):
            where = f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}: {label}"
            calls.append(where)
            if not _is_false(keywords.get("trust_remote_code", ast.Constant(None))):
                offenders.append(where)
    # tokenizer + model in train.py and generate.py (x2), and vLLM's two LLM(...) calls
    assert len(calls) >= 6, calls
    assert any("LLM" in c for c in calls) and any("AutoTokenizer" in c for c in calls)
    assert offenders == []


def test_the_remote_code_check_catches_a_missing_flag() -> None:
    code = (
        "def load(base):\n"
        "    kw = {'dtype': 1}\n"
        "    AutoModelForCausalLM.from_pretrained(base, **kw)\n"
        "    AutoTokenizer.from_pretrained(base, trust_remote_code=False)\n"
        "    common = dict(seed=0, trust_remote_code=False)\n"
        "    LLM(model=base, **common)\n"
    )
    checked = {
        label: _is_false(kw.get("trust_remote_code", ast.Constant(None)))
        for _, kw, label in _model_loading_calls(ast.parse(code))
    }
    assert checked == {
        "AutoModelForCausalLM.from_pretrained": False,
        "AutoTokenizer.from_pretrained": True,
        "LLM": True,
    }


# ------------------------------------------------------------------- HF token in outputs

TOKEN = "hf_secretTOKENvalue0123456789abcdefXYZ"
SPEC = {
    "architecture": "qwen3",
    "vocab_size": 400,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "max_position_embeddings": 512,
}
TEMPLATE_TEXT = (
    "The reasoning task in the question is: {category}. "
    "I need to use the following facts to answer the question: {facts}"
)


def _files_holding(root: Path, needle: bytes) -> list[str]:
    return [
        str(p.relative_to(root)) for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink() and needle in p.read_bytes()
    ]


def test_hf_token_never_reaches_a_log_or_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """decompose -> traces -> tiny model -> train (2 steps) -> predict (2 rows) -> score ->
    report, each step's output captured by ``runlog.logged`` into a log file, with the token
    in the environment; then every byte under ``tmp_path`` is searched for it."""
    from tracekd.datasets import decompose
    from tracekd.datasets.synth_babi import write_synthetic_babi
    from tracekd.evaluate.score import score_predictions
    from tracekd.evaluate.stats import confusion_counts
    from tracekd.io import write_json, write_parquet
    from tracekd.model.chat import ChatFormat
    from tracekd.model.predict import InferenceSpec, predict
    from tracekd.model.tiny import build_tiny_model
    from tracekd.model.train import TrainSpec, train_model
    from tracekd.report import plot_confusion, summarize
    from tracekd.runlog import logged
    from tracekd.traces import Setting, TraceFormat, TraceTemplate, build_traces

    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.setenv(name, TOKEN)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")  # the chattiest logs
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    logs, res = tmp_path / "logs", tmp_path / "results"
    try:
        with logged(logs / "raw.log"):
            write_synthetic_babi(tmp_path / "raw", tasks=["qa1"], stories={"train": 4, "test": 2},
                                 seed=0)
        with logged(logs / "decompose.log"):
            options = {"tasks": ["qa1"], "sample": {"per_story": 1}}
            table, report = decompose("babi", tmp_path / "raw", options)
            write_parquet(table, res / "decomposed.parquet")
            write_json(report.to_dict(), res / "decomposition_report.json")
            print(report.to_dict())
        template = TraceTemplate(TEMPLATE_TEXT)
        with logged(logs / "traces.log"):
            traces = build_traces(
                table, setting=Setting("correct", "trace"), fmt=TraceFormat(template, "Context: {context} Question: {question}"),
            )
            write_parquet(traces, res / "traces" / "correct.parquet")
        with logged(logs / "build_model.log"):
            texts = traces["prompt"].to_list() + traces["completion"].to_list()
            print(build_tiny_model(texts, res / "base", SPEC, seed=0))
        with logged(logs / "train.log"):
            train = traces.filter(pl.col("split") == "train")
            spec = TrainSpec(epochs=1, per_device_batch_size=2, gradient_accumulation_steps=1,
                             learning_rate=1e-3, max_length=256, bf16=False, logging_steps=1,
                             save_steps=1, max_steps=2)
            print(train_model(
                base=str(res / "base"), prompts=train["prompt"].to_list(),
                completions=train["completion"].to_list(), fmt=ChatFormat(), spec=spec,
                lora=None, quantization=None, seed=0, out_dir=res / "adapter",
                checkpoint_dir=res / "checkpoints", keep_checkpoints=True,
            ))
        with logged(logs / "predict.log"):
            test_ids = traces.filter(pl.col("split") == "test")["id"].head(2).to_list()
            predictions = predict(
                base=str(res / "base"), adapter_dir=res / "adapter",
                traces=traces.filter(pl.col("id").is_in(test_ids)), decomposed=table,
                fmt=ChatFormat(), template=template,
                spec=InferenceSpec(engine="transformers", max_new_tokens=8, batch_size=2),
                seed=0,
            )
            write_parquet(predictions, res / "predictions.parquet")
        with logged(logs / "score.log"):
            scores = score_predictions(predictions, answer_rule="babi")
            write_parquet(scores, res / "scores.parquet")
        with logged(logs / "report.log"):
            counts = confusion_counts(scores)
            write_json(counts, res / "confusion.json")
            plot_confusion(counts, res / "confusion.png", title="bAbI tiny correct")
            write_json(summarize(scores, dataset="bAbI", model="tiny", setting="correct",
                                 has_trace_target=True), res / "summary.json")
    finally:
        torch.set_num_threads(threads)

    assert predictions.height == 2 and scores.height == 2
    # the pipeline really wrote and logged: checkpoints (training_args.bin pickles the
    # TrainingArguments, where a hub token would sit), weights, tables, a figure, logs
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert {"results/adapter/model.safetensors", "results/checkpoints/checkpoint-2/"
            "training_args.bin", "results/confusion.png", "logs/train.log"} <= written
    assert (logs / "train.log").stat().st_size > 0

    for needle in (TOKEN.encode(), TOKEN.encode("utf-16-le"), TOKEN[3:].encode()):
        assert _files_holding(tmp_path, needle) == []


def test_the_token_scan_finds_a_leak(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.bin").write_bytes(b"\x00\x01" + TOKEN.encode() + b"\xff")
    (tmp_path / "clean.txt").write_text("nothing here")
    assert _files_holding(tmp_path, TOKEN.encode()) == ["a/b/x.bin"]
