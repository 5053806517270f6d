"""Reports of the study: figures (``figures``) and tables (``tables``) from the score files.

The names below load their module on first use: a job that writes a table does not pay for
matplotlib, nor one that draws a figure for the statistics (PEP 562 module ``__getattr__``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracekd.report.figures import plot_confusion, plot_confusion_grid
    from tracekd.report.names import DISPLAY_NAMES
    from tracekd.report.tables import StudyTables, study_tables, summarize

#: each public name and the module that defines it
_HOMES = {
    "DISPLAY_NAMES": "tracekd.report.names",
    "StudyTables": "tracekd.report.tables",
    "plot_confusion": "tracekd.report.figures",
    "plot_confusion_grid": "tracekd.report.figures",
    "study_tables": "tracekd.report.tables",
    "summarize": "tracekd.report.tables",
}

__all__ = [
    "DISPLAY_NAMES",
    "StudyTables",
    "plot_confusion",
    "plot_confusion_grid",
    "study_tables",
    "summarize",
]


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` when it is first asked for."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value
