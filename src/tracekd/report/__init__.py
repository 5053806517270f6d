"""Reports of the study: figures (``figures``) and tables (``tables``) from the score files."""

from tracekd.report.figures import plot_confusion, plot_confusion_grid
from tracekd.report.names import DISPLAY_NAMES
from tracekd.report.tables import StudyTables, study_tables, summarize

__all__ = [
    "DISPLAY_NAMES",
    "StudyTables",
    "plot_confusion",
    "plot_confusion_grid",
    "study_tables",
    "summarize",
]
