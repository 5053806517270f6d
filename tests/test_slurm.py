"""End-to-end on a real SLURM: the demo through profiles/slurm on a one-node test cluster.

tests/slurm/start.sh installs Debian's slurm-wlm and munge when missing and starts a one-node
cluster whose node advertises one (fake) A100. The smallest demo's bAbI correct-trace run, with
its probes, goes through a profile derived from profiles/slurm/config.yaml (same
GPU requests for train, predict and probe; no account, the test partition, squeue for job status
since there is no accounting database). The run must submit every non-local job with sbatch, the
GPU rules with a GPU request, and write the same parquet and JSON files, byte for byte, as the
first local end-to-end run of the same config (tests/test_workflow.py).

The cluster's start and the run go in the background from collection on (tests/conftest.py runs
this file as a script: :func:`background_run`); the fixture waits for them. Skipped, with the
reason, where the cluster cannot start (not root, no apt-get, a daemon that fails) and with
TRACEKD_SLURM_TEST=0; with SLURM_GATE = True it runs only with TRACEKD_SLURM_TEST=1. About 3
minutes on 2 cores, most of it the plugin's waits between status checks.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_workflow import (  # tests/ is on sys.path (rootdir-less)
    job_counts,
    repeat_targets,
    run_files,
    smallest_demo_config,
)

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "tests" / "slurm"
#: the test cluster's folder (configuration, daemons' logs); start.sh and stop.sh read it too
SLURM_DIR = Path(os.environ.get("TRACEKD_SLURM_DIR", "/tmp/tracekd-slurm"))
PARTITION = "tracekd"  # start.sh's partition
GPU_RULES = ("train", "predict", "probe")
LOCAL_RULES = ("all", "raw_data", "tables")  # the Snakefile's localrules
#: the whole cluster setup (package install included) must finish within this
SETUP_TIMEOUT_S = 360
#: the SLURM run and the local run, each
RUN_TIMEOUT_S = 1200
#: True: run only with TRACEKD_SLURM_TEST=1; False: run wherever the cluster can start
SLURM_GATE = False

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def slurm_test_profile(profile_dir: Path) -> Path:
    """profiles/slurm/config.yaml adapted to the test cluster, written to ``profile_dir``."""
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    profile.pop("configfile", None)  # the test passes its own
    profile.update(
        {
            # the node has 2 CPUs and 1 GPU: SLURM queues the rest, and the twelve trace jobs
            # need not wait for a status check (every 1 + 10k s) each
            "jobs": 6,
            "retries": 0,  # a failure must show, not be retried away
            "keep-going": False,
            "latency-wait": 5,  # one host: no networked filesystem to wait for
            "config": ["inference={engine: transformers}"],
            "slurm-no-account": True,  # no accounting database, so no accounts
            "slurm-status-command": "squeue",  # sacct needs the database
            "slurm-keep-successful-logs": True,  # the per-job logs are the test's evidence
            "slurm-init-seconds-before-status-checks": 1,  # the default 40 s is for big queues
            "scheduler": "greedy",  # as the local runs (tests/test_workflow.py's e2e_command)
        }
    )
    defaults = profile["default-resources"]
    defaults.pop("slurm_account")
    defaults.update(slurm_partition=PARTITION, mem_mb=1000)
    for rule in GPU_RULES:
        # the GPU request (gpu: 1, gpu_model: a100) stays as the site profile has it; CPUs,
        # memory and threads shrink to the test node and equal the demo's (1 thread), so
        # the outputs can equal a local run's
        assert profile["set-resources"][rule]["gpu"] == 1
        assert profile["set-resources"][rule]["gpu_model"] == "a100"
        profile["set-resources"][rule].update(
            slurm_partition=PARTITION, cpus_per_task=1, mem_mb=2000, runtime=30
        )
        profile["set-threads"][rule] = 1
    # decompose asks for 16 GB (MS MARCO's whole pool); two jobs must fit the test node
    profile["set-resources"]["decompose"] = {"mem_mb": 2000}
    profile_dir.mkdir(parents=True, exist_ok=True)
    (profile_dir / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return profile_dir



def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = RUN_TIMEOUT_S):
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def snakemake_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), *args]


def script(name: str, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess[str]:
    """Run tests/slurm/<name>; past ``timeout`` its whole process group (apt-get too) is killed."""
    with subprocess.Popen(["bash", str(SCRIPTS / name)], cwd=ROOT, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          start_new_session=True) as proc:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def reason(proc: subprocess.CompletedProcess[str]) -> str:
    """The last 'start.sh: ...' line of a failed start, else the output's last line."""
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    said = [line for line in lines if line.startswith("start.sh:")]
    return (said or lines or [f"exit status {proc.returncode}"])[-1]


def unavailable() -> str | None:
    """Why the SLURM test must not run here, or None."""
    if os.environ.get("TRACEKD_SLURM_TEST", "") == "0":
        return "SLURM end-to-end test disabled (TRACEKD_SLURM_TEST=0)"
    if SLURM_GATE and os.environ.get("TRACEKD_SLURM_TEST") != "1":
        return "SLURM end-to-end test runs only with TRACEKD_SLURM_TEST=1"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "SLURM test cluster needs root (tests/slurm/start.sh)"
    return None


def e2e_command(name: str, work: Path) -> tuple[list[str], dict[str, str]]:
    """The SLURM run as tests/conftest.py starts it: this file as a script, on folder ``work``."""
    assert name == "slurm", name
    return [sys.executable, str(Path(__file__).resolve()), str(work)], dict(os.environ)


def background_run(work: Path) -> None:
    """Start the test cluster and run the SLURM run in ``work``; write ``work/outcome.json``:
    ``{"skip": why}`` where the cluster cannot start, else the plan's job counts, the dry run's
    and the run's exit statuses and the run's seconds (its log: ``snakemake-slurm.log``). The
    cluster keeps running for the tests' ``scontrol`` queries; the fixture stops it."""
    outcome: dict = {"env": {"TRACEKD_SLURM_DIR": str(SLURM_DIR)}}

    def done(**values) -> None:
        (work / "outcome.json").write_text(json.dumps({**outcome, **values}))

    if why := unavailable():
        return done(skip=why)
    env = {**os.environ, **outcome["env"]}
    try:
        proc = script("start.sh", env, SETUP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        script("stop.sh", env, 120)
        return done(skip=f"SLURM test cluster did not start within {SETUP_TIMEOUT_S} s")
    if proc.returncode != 0:
        script("stop.sh", env, 120)
        return done(skip=f"SLURM test cluster unavailable: {reason(proc)}")
    outcome["env"]["SLURM_CONF"] = str(SLURM_DIR / "etc" / "slurm.conf")
    env.update(outcome["env"])

    (work / "config.yaml").write_text(yaml.safe_dump(smallest_demo_config(work / "results")))
    profile = slurm_test_profile(work / "profile" / "slurm-test")
    common = (*repeat_targets(work / "results"), "--configfile", "config.yaml",
              "--directory", str(work))
    plan = run(snakemake_cmd("--profile", str(profile), "-n", *common), work, env)
    if plan.returncode != 0:
        return done(plan_rc=plan.returncode, plan_log=plan.stdout[-3000:] + plan.stderr[-3000:])
    start = time.monotonic()
    try:
        slurm = run(snakemake_cmd("--profile", str(profile), "--verbose", *common), work, env)
    except subprocess.TimeoutExpired as exc:
        subprocess.run(["scancel", f"--partition={PARTITION}"], env=env, capture_output=True,
                       timeout=60, check=False)
        (work / "snakemake-slurm.log").write_text(str(exc.stdout))
        return done(plan_rc=0, plan=job_counts(plan.stdout), rc=None,
                    timeout=f"SLURM run took over {RUN_TIMEOUT_S} s")
    (work / "snakemake-slurm.log").write_text(slurm.stdout + slurm.stderr)
    return done(plan_rc=0, plan=job_counts(plan.stdout), rc=slurm.returncode,
                seconds=time.monotonic() - start)


@pytest.fixture(scope="module")
def runs(slurm_run: Path) -> dict:
    """The SLURM run (tests/conftest.py's ``slurm_run``): its folder, plan, log and timing, and
    the environment that points SLURM's commands at the test cluster; stops the cluster after."""
    work = slurm_run.parent
    outcome = json.loads((work / "outcome.json").read_text())
    env = {**os.environ, **outcome["env"]}
    try:
        if "skip" in outcome:
            pytest.skip(outcome["skip"])
        assert outcome["plan_rc"] == 0, outcome.get("plan_log")
        log = (work / "snakemake-slurm.log").read_text()
        assert outcome["rc"] == 0, outcome.get("timeout") or log[-6000:]
        print(f"SLURM run: {outcome['seconds']:.0f} s")
        yield {"slurm": work, "plan": outcome["plan"], "log": log, "seconds": outcome["seconds"],
               "env": env}
    finally:
        if "skip" not in outcome:
            script("stop.sh", env, 120)


def slurm_logs(work: Path) -> dict[str, list[Path]]:
    """The plugin's per-job logs, .snakemake/slurm_logs/rule_<rule>/<wildcards>/<jobid>.log."""
    logs: dict[str, list[Path]] = {}
    for path in sorted((work / ".snakemake" / "slurm_logs").glob("rule_*/**/*.log")):
        rule = path.relative_to(work / ".snakemake" / "slurm_logs").parts[0].removeprefix("rule_")
        logs.setdefault(rule, []).append(path)
    return logs


def show_job(jobid: str, env: dict[str, str]) -> dict[str, str]:
    """``scontrol show job -o`` as {key: value} (MinJobAge keeps finished jobs for an hour)."""
    out = subprocess.run(["scontrol", "show", "job", "-o", jobid], env=env, capture_output=True,
                         text=True, timeout=30, check=True).stdout
    return dict(re.findall(r"(\S+?)=(\S*)", out))


def test_every_non_local_job_went_through_sbatch(runs: dict) -> None:
    plan = {rule: n for rule, n in runs["plan"].items() if rule != "total"}
    expected = {rule: n for rule, n in plan.items() if rule not in LOCAL_RULES}
    logs = slurm_logs(runs["slurm"])
    assert {rule: len(paths) for rule, paths in logs.items()} == expected
    assert sum(expected.values()) >= 20  # 23 today: tests/test_workflow.py's repeat_targets
    for rule, paths in logs.items():
        for path in paths:
            info = show_job(path.stem, runs["env"])
            assert info["JobState"] == "COMPLETED", (path, info.get("Reason"))
            assert info["Partition"] == PARTITION
            comment = info["Comment"]  # the plugin's rule_<rule>[_wildcards_<values>]
            assert comment == f"rule_{rule}" or comment.startswith(f"rule_{rule}_wildcards_")


def test_gpu_rules_were_submitted_with_a_gpu_request(runs: dict) -> None:
    logs = slurm_logs(runs["slurm"])
    assert all(logs.get(rule) for rule in GPU_RULES)
    for rule, paths in logs.items():
        for path in paths:
            info = show_job(path.stem, runs["env"])
            gres = info.get("TresPerJob", "") + info.get("TresPerNode", "")
            if rule in GPU_RULES:  # gres:gpu:a100:1 (Slurm 22.05) or gres/gpu:a100=1 (later)
                assert re.search(r"gpu[:/]a100[:=]1\b", gres), (rule, path, gres)
            else:
                assert "gpu" not in gres, (rule, path, gres)
    # the plugin's own sbatch calls (logged with --verbose): one GPU request per GPU job
    calls = [line for line in runs["log"].splitlines() if "sbatch call:" in line]
    gpu_calls = [c for c in calls if "--gpus=a100:1" in c]
    assert len(calls) == sum(len(p) for p in logs.values())
    assert len(gpu_calls) == sum(len(logs[rule]) for rule in GPU_RULES)
    assert all(re.search(r"rule_(train|predict|probe)\b", c) for c in gpu_calls)


def test_outputs_equal_the_local_run_byte_for_byte(runs: dict, demo_run: Path) -> None:
    slurm, local = runs["slurm"] / "results", demo_run
    names = run_files(slurm)
    assert len(names) >= 35, names  # 37 today: tests/test_workflow.py's determinism check
    different = [str(p) for p in names if (slurm / p).read_bytes() != (local / p).read_bytes()]
    assert not different, different
    print(f"{len(names)} parquet/JSON/safetensors files equal; SLURM run {runs['seconds']:.0f} s")


if __name__ == "__main__":  # tests/conftest.py starts the SLURM run this way
    background_run(Path(sys.argv[1]))
