"""Fault injection: a training job SIGKILLed and rerun, an archive whose bytes changed, a job
killed while writing its output (in-process, in a subprocess, and under Snakemake itself).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import torch
from safetensors.torch import load_file

from tracekd.datasets.download import ChecksumError, fetch, sha256_of
from tracekd.io import write_json, write_parquet, write_text

SPEC = {
    "architecture": "qwen3",
    "vocab_size": 400,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "max_position_embeddings": 512,
}
#: max |resumed - uninterrupted| over all weights that the resume test accepts. Observed: 0.0
#: (bit-identical) on CPU with one thread: the Trainer restores optimizer, scheduler, RNG and
#: data order from the checkpoint.
RESUME_TOLERANCE = 1e-5

TRAIN_HELPER = """
import json, sys, time
import torch
torch.set_num_threads(1)
from tracekd.model.chat import ChatFormat
from tracekd.model.train import TrainSpec, train_model

job = json.loads(open(sys.argv[1]).read())
if job["slow"]:
    # a pause per optimizer step (numerics untouched) so the test can kill between saves
    from trl import SFTTrainer
    step = SFTTrainer.training_step
    def slow_step(self, *args, **kwargs):
        time.sleep(job["slow"])
        return step(self, *args, **kwargs)
    SFTTrainer.training_step = slow_step
metrics = train_model(
    base=job["base"], prompts=job["prompts"], completions=job["completions"], fmt=ChatFormat(),
    spec=TrainSpec(**job["spec"]), lora=None, quantization=None, seed=0,
    out_dir=job["out"], checkpoint_dir=job["ckpt"], keep_checkpoints=True,
)
open(job["metrics"], "w").write(json.dumps(metrics))
"""


def _examples() -> tuple[list[str], list[str]]:
    people = ["Mary", "John", "Sandra", "Daniel"]
    places = ["kitchen", "garden", "hallway", "office"]
    prompts, completions = [], []
    for i in range(8):
        who, where = people[i % 4], places[(i * 3) % 4]
        prompts.append(f'Context: ["{who} went to the {where}."] Question: Where is {who}?')
        completions.append(f'<think>single. facts: ["{who} went to the {where}."]</think> '
                           f'<answer>["{where}"]</answer>')
    return prompts, completions


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tracekd.model.tiny import build_tiny_model

    prompts, completions = _examples()
    out = tmp_path_factory.mktemp("faults") / "base"
    build_tiny_model(prompts + completions, out, SPEC, seed=0)
    return out


class TrainRun:
    """One ``train_model`` job in a fresh Python process (6 steps, a checkpoint every 2)."""

    def __init__(self, root: Path, base: Path, *, slow: float = 0.0) -> None:
        prompts, completions = _examples()
        self.root, self.out, self.ckpt = root, root / "out", root / "ckpt"
        self.metrics = root / "metrics.json"
        root.mkdir(parents=True, exist_ok=True)
        job = {
            "base": str(base), "prompts": prompts, "completions": completions,
            "out": str(self.out), "ckpt": str(self.ckpt), "metrics": str(self.metrics),
            "slow": slow,
            "spec": {"epochs": 10, "per_device_batch_size": 4, "gradient_accumulation_steps": 1,
                     "learning_rate": 1e-3, "optim": "adamw_torch", "max_length": 256,
                     "bf16": False, "logging_steps": 1, "save_steps": 2, "max_steps": 6},
        }
        (root / "job.json").write_text(json.dumps(job))
        (root / "helper.py").write_text(TRAIN_HELPER)

    def start(self) -> subprocess.Popen[bytes]:
        log = open(self.root / "log.txt", "ab")  # noqa: SIM115  (closed by the process's end)
        return subprocess.Popen(
            [sys.executable, str(self.root / "helper.py"), str(self.root / "job.json")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def log(self) -> str:
        return (self.root / "log.txt").read_text(errors="replace")[-3000:]

    def result(self) -> dict[str, Any]:
        return json.loads(self.metrics.read_text())


def _wait(proc: subprocess.Popen[bytes], run: TrainRun, timeout: float = 180) -> None:
    assert proc.wait(timeout=timeout) == 0, run.log()


def _complete_checkpoint(ckpt: Path) -> str | None:
    """``checkpoint-2``/``-4`` once its trainer_state.json (the Trainer writes it last) reads."""
    for name in ("checkpoint-4", "checkpoint-2"):
        try:
            json.loads((ckpt / name / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        return name
    return None


def _max_abs_diff(a: Path, b: Path) -> float:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    return max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)


@pytest.fixture(scope="module")
def resume_runs(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An uninterrupted run and a run SIGKILLed after a checkpoint (concurrently), then the
    killed run's rerun and a rerun over a checkpoint cut short mid-save (concurrently)."""
    root = tmp_path_factory.mktemp("resume")
    full = TrainRun(root / "uninterrupted", tiny_base)
    killed = TrainRun(root / "killed", tiny_base, slow=0.3)
    p_full, p_killed = full.start(), killed.start()
    try:
        deadline = time.monotonic() + 180
        seen = None
        while seen is None and p_killed.poll() is None and time.monotonic() < deadline:
            seen = _complete_checkpoint(killed.ckpt)
            time.sleep(0.02)
        assert seen is not None, f"no checkpoint before the job ended:\n{killed.log()}"
        os.killpg(p_killed.pid, signal.SIGKILL)
        assert p_killed.wait(timeout=30) == -signal.SIGKILL
    finally:
        if p_killed.poll() is None:
            os.killpg(p_killed.pid, signal.SIGKILL)
    _wait(p_full, full)
    after_kill = sorted(p.name for p in killed.ckpt.glob("checkpoint-*"))
    assert not killed.out.exists()  # killed before the end: no final weights

    # a kill in the middle of saving a checkpoint: the newest one lacks its trainer_state.json
    partial = TrainRun(root / "partial", tiny_base)
    shutil.copytree(full.ckpt, partial.ckpt)
    newest = max(partial.ckpt.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    (newest / "trainer_state.json").unlink()

    rerun = TrainRun(killed.root, tiny_base)  # same folders, full speed
    p_rerun, p_partial = rerun.start(), partial.start()
    _wait(p_rerun, rerun)
    _wait(p_partial, partial)
    return {
        "full": full, "rerun": rerun, "partial": partial, "seen": seen,
        "after_kill": after_kill, "cut_short": newest.name,
    }


def test_training_resumes_after_sigkill_to_the_same_weights(resume_runs: dict[str, Any]) -> None:
    """SIGKILL once a checkpoint is complete, rerun in a fresh process, compare the weights
    with an uninterrupted run: observed max |difference| 0.0, tolerance ``RESUME_TOLERANCE``."""
    full, rerun = resume_runs["full"].result(), resume_runs["rerun"].result()
    assert full["resumed_from"] is None and full["global_step"] == 6
    assert rerun["resumed_from"] in ("checkpoint-2", "checkpoint-4")
    assert rerun["resumed_from"] in resume_runs["after_kill"]
    assert rerun["global_step"] == 6
    assert [p["step"] for p in rerun["loss_curve"]] == [1, 2, 3, 4, 5, 6]
    diff = _max_abs_diff(resume_runs["full"].out, resume_runs["rerun"].out)
    print(f"resume after SIGKILL ({rerun['resumed_from']}): max |dw| = {diff:.3g}")
    assert diff <= RESUME_TOLERANCE
    losses = [p["loss"] for p in rerun["loss_curve"]]
    assert losses == pytest.approx([p["loss"] for p in full["loss_curve"]], abs=1e-5)


def test_a_checkpoint_cut_short_mid_save_is_skipped(resume_runs: dict[str, Any]) -> None:
    partial = resume_runs["partial"]
    metrics = partial.result()
    cut = resume_runs["cut_short"]
    older = f"checkpoint-{int(cut.split('-')[1]) - 2}"
    assert metrics["resumed_from"] == older and metrics["global_step"] == 6
    assert "removing incomplete checkpoint" in partial.log()
    assert _max_abs_diff(resume_runs["full"].out, partial.out) <= RESUME_TOLERANCE


# ------------------------------------------------------------------ changed archive


def test_changed_archive_bytes_fail_the_checksum(tmp_path: Path) -> None:
    source = tmp_path / "mirror" / "tasks_1-20_v1-2.tar.gz"
    source.parent.mkdir()
    source.write_bytes(b"original archive bytes" * 100)
    pinned = sha256_of(source)
    dest = tmp_path / "raw" / source.name

    fetch(source.as_uri(), dest, sha256=pinned)  # control: the pinned bytes go through
    assert sha256_of(dest) == pinned
    dest.unlink()

    source.write_bytes(b"original archive bytes" * 99 + b"tampered archive bytes")
    with pytest.raises(ChecksumError) as info:
        fetch(source.as_uri(), dest, sha256=pinned)
    message = str(info.value)
    assert str(dest) in message and source.as_uri() in message and pinned in message
    assert list(dest.parent.iterdir()) == []  # no file at dest, no temporary left behind

    # the same through the offline-cluster path (local_path), still verified
    with pytest.raises(ChecksumError, match=str(source)):
        fetch("", dest, sha256=pinned, local_path=source)
    assert list(dest.parent.iterdir()) == []


# ------------------------------------------------------------------ killed while writing


def _frame(rows: int = 50_000) -> pl.DataFrame:
    return pl.DataFrame({"id": [f"r{i:06d}" for i in range(rows)], "x": list(range(rows))})


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


@pytest.fixture
def half_writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """polars' parquet writer and Path.write_text write half their bytes, then fail."""
    real_parquet, real_text = pl.DataFrame.write_parquet, Path.write_text

    def parquet(self: pl.DataFrame, file: Any, **kwargs: Any) -> None:
        real_parquet(self, file, **kwargs)
        data = Path(file).read_bytes()
        Path(file).write_bytes(data[: len(data) // 2])
        raise OSError("No space left on device")

    def text(self: Path, data: str, *args: Any, **kwargs: Any) -> int:
        real_text(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError("No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", parquet)
    monkeypatch.setattr(Path, "write_text", text)
    yield


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda p: write_parquet(_frame(), p / "table.parquet"), id="write_parquet"),
        pytest.param(lambda p: write_json({"n": list(range(5000))}, p / "report.json"),
                     id="write_json"),
        pytest.param(lambda p: write_text("row\n" * 5000, p / "report.md"), id="write_text"),
    ],
)
def test_a_write_failing_midway_leaves_nothing(
    tmp_path: Path, half_writes: None, write: Any
) -> None:
    with pytest.raises(OSError, match="No space left"):
        write(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_write_failing_midway_keeps_the_previous_complete_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "table.parquet"
    write_parquet(_frame(10), target)
    before = target.read_bytes()

    def fail(self: pl.DataFrame, file: Any, **kwargs: Any) -> None:
        Path(file).write_bytes(b"PAR1 half a file")
        raise OSError("killed")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", fail)
    with pytest.raises(OSError):
        write_parquet(_frame(), target)
    assert target.read_bytes() == before and _visible(tmp_path) == ["table.parquet"]


WRITER = """
import os, signal, sys, time
from pathlib import Path
import polars as pl
from tracekd.io import write_parquet

out, mode = sys.argv[1], sys.argv[2]
frame = pl.DataFrame({"id": [f"r{i:06d}" for i in range(200_000)], "x": list(range(200_000))})
if mode != "ok":
    real = pl.DataFrame.write_parquet
    def half(self, file, **kwargs):
        real(self, file, **kwargs)
        data = Path(file).read_bytes()
        Path(file).write_bytes(data[: len(data) // 2])  # the job dies with half its bytes out
        Path(out).with_name("midway").touch()
        if mode == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(120)  # "hang": the test kills the whole Snakemake process group
        os._exit(1)  # never finish the write, even if a kill missed this process
    pl.DataFrame.write_parquet = half
write_parquet(frame, out)
"""


def test_sigkill_mid_write_leaves_no_complete_looking_file(tmp_path: Path) -> None:
    (tmp_path / "writer.py").write_text(WRITER)
    out = tmp_path / "data" / "table.parquet"
    proc = subprocess.run([sys.executable, str(tmp_path / "writer.py"), str(out), "die"],
                          capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert (out.parent / "midway").exists()  # it did die in the middle of the write
    assert not out.exists()
    leftovers = [p.name for p in out.parent.iterdir() if p.name != "midway"]
    assert all(name.startswith(".table.parquet.") for name in leftovers), leftovers


SNAKEFILE = """
rule make:
    output: "out/table.parquet"
    params: mode=config.get("mode", "ok")
    shell: "{python} writer.py {{output}} {{params.mode}}"
"""


def _snakemake(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(workdir / "Snakefile"), "-c1",
            "--directory", str(workdir), "--quiet", *args]


@pytest.mark.parametrize("fault", ["job-sigkilled", "snakemake-sigkilled"])
def test_snakemake_job_killed_mid_write_then_rerun(tmp_path: Path, fault: str) -> None:
    """A rule writing through ``write_parquet`` dies with half the file written: either the
    job's own process is SIGKILLed (Snakemake sees the failure and cleans up) or Snakemake and
    its job are SIGKILLed together (no cleanup at all, as on a node loss). Either way no
    ``out/table.parquet`` exists afterwards, and a plain rerun builds it."""
    (tmp_path / "writer.py").write_text(WRITER)
    (tmp_path / "Snakefile").write_text(textwrap.dedent(SNAKEFILE).format(python=sys.executable))
    out = tmp_path / "out" / "table.parquet"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if fault == "job-sigkilled":
        done = subprocess.run(_snakemake(tmp_path, "--config", "mode=die"), env=env,
                              capture_output=True, timeout=120)
        assert done.returncode != 0
    else:
        proc = subprocess.Popen(_snakemake(tmp_path, "--config", "mode=hang"), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while not (out.parent / "midway").exists() and time.monotonic() < deadline:
                assert proc.poll() is None, "Snakemake ended before the write"
                time.sleep(0.05)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        # a SIGKILLed Snakemake leaves its lock behind; --unlock is the documented remedy
        subprocess.run(_snakemake(tmp_path, "--unlock"), env=env, check=True,
                       capture_output=True, timeout=120)
    assert (out.parent / "midway").exists()  # the job did die in the middle of the write
    assert not out.exists()
    assert all(p.name.startswith((".table.parquet.", "midway")) for p in out.parent.iterdir())

    rerun = subprocess.run(_snakemake(tmp_path, "--config", "mode=ok"), env=env,
                           capture_output=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    assert pl.read_parquet(out).height == 200_000


@pytest.fixture(autouse=True, scope="module")
def _few_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
