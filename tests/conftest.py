"""Shared fixtures: project paths, the real sample data (skipped when absent), tiny bAbI folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
