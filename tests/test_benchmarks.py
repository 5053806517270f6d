"""The benchmark scripts' code paths, on tiny sizes (their timings are reported, never asserted)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
    sys.path[:] = [p for p in sys.path if p != str(BENCHMARKS)]


def test_real_length_examples_are_real_length() -> None:
    benchlib = _load("benchlib")
    prompts, completions = benchlib.real_length_examples(8, seed=0)
    words = [len((p + " " + c).split()) for p, c in zip(prompts, completions, strict=True)]
    cotemp, marco = words[0::2], words[1::2]
    # CoTempQA rows: 10-15 facts (~150-190 words); MS MARCO: 10 passages (~700 words)
    assert all(150 <= w <= 420 for w in cotemp), cotemp
    assert all(600 <= w <= 1000 for w in marco), marco
    assert all("<answer>" in c for c in completions)


def test_gpu_bench_cpu_mode(tmp_path: Path) -> None:
    """The whole GPU benchmark on one tiny architecture: three recipes, both generation paths."""
    report = _load("gpu_bench").main(
        ["--cpu", "--small", "--models", "qwen", "--examples", "16", "--gen-prompts", "4",
         "--gen-single", "2", "--max-new-tokens", "4", "--max-length", "512", "--out", str(tmp_path)]  # fmt: skip
    )
    written = list(tmp_path.glob("gpu_bench-cpu-mode_*.json"))
    assert len(written) == 1 and json.loads(written[0].read_text()) == json.loads(json.dumps(report))
    assert report["mode"] == "cpu" and report["versions"]["torch"]
    qwen = report["models"]["qwen"]
    # some real-length examples run past --max-length, and no recipe trained on more than it allows
    assert qwen["examples"]["max_length"] == 512 and qwen["examples"]["over_max_length"] > 0
    train = qwen["train"]
    assert all(r["tokens_trained"] <= 16 * 512 for r in train.values() if r["tokens_trained"])
    assert set(train) == {"authors", "exact", "fast"}
    assert train["exact"]["recipe"]["fast"] is False and train["fast"]["recipe"]["fast"] is True
    assert (train["fast"]["recipe"]["per_device_batch_size"], train["exact"]["recipe"]["per_device_batch_size"]) == (16, 4)
    # the same examples, every recipe one optimizer step of 16
    assert all(r["global_step"] == 1 for r in train.values())
    assert train["exact"]["tokens_trained"] == train["fast"]["tokens_trained"] > 0
    assert all(r["tokens_per_second"] > 0 for r in train.values())
    assert set(qwen["train_ratios"]) == {"fast_over_authors", "exact_over_authors", "fast_over_exact"}
    gen = qwen["generate"]
    assert gen["batched"]["prompts"] == 4 and gen["one_at_a_time"]["prompts"] == 2
    assert gen["identical_outputs"] == "2/2"  # float32 on a CPU: greedy is batch-invariant
    assert "vllm" not in qwen


def test_cpu_bench_small(tmp_path: Path) -> None:
    """Today's recipe against the fast one on demo examples, and the generation section."""
    report = _load("cpu_bench").main(
        ["--datasets", "bAbI", "--max-train", "32", "--epochs", "1", "--gen-single", "2",
         "--max-new-tokens", "4", "--out", str(tmp_path)]  # fmt: skip
    )
    assert len(list(tmp_path.glob("cpu_bench_*.json"))) == 1
    today, new = report["train"]["today"], report["train"]["new"]
    assert today["bAbI"]["recipe"]["group_by_length"] is False and new["bAbI"]["recipe"]["group_by_length"] is True
    assert today["total"]["tokens_trained"] == new["total"]["tokens_trained"] > 0
    assert today["bAbI"]["global_step"] == new["bAbI"]["global_step"] == 2
    assert report["train"]["new_over_today"] > 0
    gen = report["generate"]["bAbI"]
    assert gen["identical_outputs"] == "2/2" and gen["batched"]["generated_tokens"] > 0
