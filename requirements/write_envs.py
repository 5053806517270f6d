"""Write envs/*.yaml, the conda environments of ``--sdm conda``, from the locks beside this file.

Each environment is Python 3.11 and pip, and under pip every line of its lock: exact versions
(with the lock's platform markers), so a cluster's environment holds what the lock holds.
``make lock`` runs this after the locks; ``--check`` only reports whether the files are current.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: environment file -> (its lock, what it is for: the file's opening comment)
ENVS: dict[str, tuple[str, str]] = {
    "tracekd.yaml": (
        "light.txt",
        "Light rules (raw_data, decompose, traces, score, score_reference, confusion,\n"
        "confusion_grid, tables, release_raw, release_summary) under `--sdm conda`: only what they\n"
        "import (requirements/light.in), no torch. Jobs import the library through the link\n"
        "workflow/scripts/tracekd.",
    ),
    "gpu.yaml": (
        "gpu.txt",
        "Model rules (build_model, train, predict) under `--sdm conda`: the whole stack with\n"
        "pyproject's `gpu` extra (bitsandbytes for QLoRA, vLLM for inference, Liger's kernels for\n"
        "the fast training recipe) and `tracking` extra (tensorboard), for Linux x86_64 with CUDA;\n"
        "torch is the version vLLM pins.",
    ),
}


def lock_pins(lock: Path) -> list[str]:
    """The requirement lines of a ``uv pip compile`` lock: ``name==version`` with any marker."""
    pins = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "-")):
            pins.append(line)
    return pins


def env_text(lock_name: str, purpose: str, pins: list[str]) -> str:
    """One environment file: its purpose, where its pins come from, Python 3.11, the pins."""
    comment = "".join(f"# {line}\n" for line in purpose.splitlines())
    lines = [
        comment.rstrip("\n"),
        f"# Exact pins: requirements/{lock_name}, written by `make lock`; do not edit by hand.",
        "channels:",
        "  - conda-forge",
        "  - nodefaults",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - pip:",
        *(f"      - {pin}" for pin in pins),
    ]
    return "\n".join(lines) + "\n"


def rendered_envs(root: Path = ROOT) -> dict[Path, str]:
    """Every environment file's path and the text the locks under ``root`` give it."""
    return {
        root / "envs" / name: env_text(lock, purpose, lock_pins(root / "requirements" / lock))
        for name, (lock, purpose) in ENVS.items()
    }


def main(argv: list[str]) -> int:
    """Write the environment files (or, with ``--check``, name those that are out of date)."""
    stale = []
    for path, text in rendered_envs().items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if "--check" not in argv:
            path.write_text(text, encoding="utf-8")
    if "--check" in argv and stale:
        print("out of date (run make lock): " + ", ".join(str(p) for p in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
