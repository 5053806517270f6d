"""Shared fixtures: project paths, the real sample data (skipped when absent), tiny bAbI folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# no per-example deadline: the machines are shared and noisy, and speed is shown by benchmarks,
# not by timed assertions (a lazy import in a first example once took 0.5 s under load)
settings.register_profile("tracekd", deadline=None)
settings.load_profile("tracekd")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "config"
#: the real sample files beside the project (same variable and default as tests/test_babi.py)
REAL_DATA = Path(os.environ.get("TRACEKD_REAL_DATA", PROJECT_ROOT / ".." / "shared" / "data"))

#: the paper's eleven bAbI tasks
PAPER_TASKS = ["qa1", "qa2", "qa4", "qa7", "qa8", "qa12", "qa14", "qa15", "qa16", "qa17", "qa18"]


def real_babi_dir() -> Path:
    """The real bAbI folder: ``$TRACEKD_REAL_DATA/babi`` if it exists, else the variable itself."""
    return REAL_DATA / "babi" if (REAL_DATA / "babi").is_dir() else REAL_DATA


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real sample data folder; skips the test when it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real sample data not found at {REAL_DATA} (set TRACEKD_REAL_DATA)")
    return REAL_DATA


@pytest.fixture(scope="session")
def real_babi(real_data: Path) -> Path:
    """The real bAbI v1.2 folder; skips when its qa1 train file cannot be found."""
    from tracekd.datasets.babi import find_babi_file

    raw = real_babi_dir()
    try:
        find_babi_file(raw, "qa1", "train")
    except FileNotFoundError:
        pytest.skip(f"real bAbI data not found under {raw} (set TRACEKD_REAL_DATA)")
    return raw


@pytest.fixture(scope="session")
def synth_babi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic bAbI folder (3 tasks, 5 train / 3 test stories each), written once."""
    from tracekd.datasets.synth_babi import write_synthetic_babi

    root = tmp_path_factory.mktemp("synth_babi")
    write_synthetic_babi(root, tasks=["qa1", "qa2", "qa8"], stories={"train": 5, "test": 3}, seed=1)
    return root


# --- the end-to-end runs: started once, early, in the background; the slow tests read them ------
#
# Each run is a whole Snakemake run of a small config (tests/test_workflow.py says which), or the
# SLURM run (tests/test_slurm.py: the test cluster's start, then the run through the plugin).
# They start as soon as collection shows a test that reads them, each on one xdist worker (or all
# in a plain pytest), and run alongside the unit tests; the fixtures wait for them. Every worker
# sees one shared folder, so a run is made once per session, whichever worker asks.

#: the fixtures that read end-to-end runs, and the runs each reads (``repeat_run``: see there)
E2E_FIXTURES = {"demo_run": ("first",), "study_run": ("study",), "slurm_run": ("slurm",),
                "repeat_run": ("repeat",)}
#: the test module whose ``e2e_command(name, work)`` gives each run's command and environment
E2E_MODULES = {"first": "test_workflow", "second": "test_workflow", "study": "test_workflow",
               "slurm": "test_slurm"}
#: how long a test waits for a run (two cores, the rest of the suite alongside)
E2E_TIMEOUT_S = 1800
_e2e_processes: list = []


def _e2e_base(config: pytest.Config) -> Path:
    """The folder every worker of this session shares (the per-worker base's parent)."""
    base = config._tmp_path_factory.getbasetemp()  # noqa: SLF001 (the fixture's own factory)
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _e2e_start(name: str, base: Path) -> None:
    """Start run ``name`` in ``base / e2e-<name>`` unless another worker already has."""
    import importlib
    import subprocess

    work = base / f"e2e-{name}"
    try:
        work.mkdir()  # atomic: the worker that makes the folder runs it
    except FileExistsError:
        return
    # tests/ is on sys.path (rootdir-less)
    cmd, env = importlib.import_module(E2E_MODULES[name]).e2e_command(name, work)
    # the exit status lands in `rc` only when the run has ended, whoever is still waiting
    script = '"$@" > snakemake.log 2>&1; echo $? > rc.part && mv rc.part rc'
    _e2e_processes.append(subprocess.Popen(["sh", "-c", script, "sh", *cmd], cwd=work, env=env,
                                           start_new_session=True))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The test files that read an end-to-end run go last, whole (a worker takes a file at a
    time): until the runs end, both workers run everything else instead of waiting."""
    waiting = {item.path for item in items
               if set(E2E_FIXTURES) & set(getattr(item, "fixturenames", ()))}
    items.sort(key=lambda item: item.path in waiting)  # stable: the order is kept otherwise


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the end-to-end runs the selected tests read, spread over the xdist workers."""
    if session.config.option.collectonly:
        return
    names = sorted({_repeat_name() if run == "repeat" else run for item in session.items
                    for fixture, runs in E2E_FIXTURES.items()
                    if fixture in getattr(item, "fixturenames", ()) for run in runs})
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker.removeprefix("gw")) if worker else 0
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    base = _e2e_base(session.config)
    for position, name in enumerate(names):
        if position % count == index:
            _e2e_start(name, base)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Let this worker's runs end (a waiting test on another worker reads them); on an
    interrupt, stop them."""
    import signal

    for proc in _e2e_processes:
        if exitstatus == pytest.ExitCode.INTERRUPTED and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


def e2e_results(config: pytest.Config, name: str) -> Path:
    """The results folder of end-to-end run ``name`` (``e2e-<name>/results``), once it has ended;
    fails the test with the run's log when it failed."""
    import time

    base = _e2e_base(config)
    work = base / f"e2e-{name}"
    if not work.exists():  # no worker started it (a test selected after collection)
        _e2e_start(name, base)
    deadline = time.monotonic() + E2E_TIMEOUT_S
    while not (work / "rc").exists():
        if time.monotonic() > deadline:
            pytest.fail(f"end-to-end run {name!r} did not end within {E2E_TIMEOUT_S} s")
        time.sleep(2)
    if (work / "rc").read_text().strip() != "0":
        pytest.fail(f"end-to-end run {name!r} failed:\n"
                    + (work / "snakemake.log").read_text()[-6000:])
    return work / "results"


@pytest.fixture(scope="session")
def demo_run(request: pytest.FixtureRequest) -> Path:
    """The smallest demo's results (its light rules run with the model stack blocked)."""
    return e2e_results(request.config, "first")


def _repeat_name() -> str:
    """The run that repeats the first one: the SLURM run wherever it may run (it builds the
    same files, so the determinism check costs no run of its own), else ``second``."""
    from test_slurm import unavailable  # tests/ is on sys.path (rootdir-less)

    return "second" if unavailable() else "slurm"


@pytest.fixture(scope="session")
def repeat_run(request: pytest.FixtureRequest) -> Path:
    """A repeat of the first run's config and seed, in other processes, building its data,
    traces, tiny model and bAbI's correct run (tests/test_workflow.py's
    ``repeat_targets``): the SLURM run's results, or, where its cluster did not start or its
    run failed (test_slurm says so), the local run ``second``, started then."""
    import json

    if _repeat_name() == "slurm":
        results = e2e_results(request.config, "slurm")
        outcome = json.loads((results.parent / "outcome.json").read_text())
        if "skip" not in outcome and outcome.get("rc") == 0:
            return results
    return e2e_results(request.config, "second")


@pytest.fixture(scope="session")
def study_run(request: pytest.FixtureRequest) -> Path:
    """The corruption study at its smallest: bAbI, two schemes, two seeds, two probes."""
    return e2e_results(request.config, "study")


@pytest.fixture(scope="session")
def slurm_run(request: pytest.FixtureRequest) -> Path:
    """The SLURM run's results folder (tests/test_slurm.py; its outcome.json says whether the
    cluster started)."""
    return e2e_results(request.config, "slurm")
