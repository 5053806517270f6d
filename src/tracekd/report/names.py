"""The paper's names for the study's settings (its tables and figures)."""

from __future__ import annotations

#: the paper's names for our settings; a name not listed here is shown as it is (datasets are
#: named by their plug-ins: :attr:`tracekd.datasets.Dataset.display_name`)
DISPLAY_NAMES: dict[str, str] = {
    "prompt": "Prompt",
    "vanilla": "SFT - Vanilla",
    "correct": "SFT - Correct Trace",
    "incorrect": "SFT - Incorrect Trace",
}
