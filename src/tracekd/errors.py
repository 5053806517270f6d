"""Errors shared by the raw-data loaders, and the one-line summary every error boundary prints."""

from __future__ import annotations


class RawFormatError(ValueError):
    """Bad raw input. ``str()`` reads ``'<file>:<row>: <field>: <message>'``.

    ``row`` is 1-based; it is ``None`` when the problem concerns the whole file
    (e.g. an empty file), and the row part is then left out of the message.
    """

    def __init__(self, file: str, row: int | None, field: str, message: str) -> None:
        self.file = str(file)
        self.row = row
        self.field = field
        self.message = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.file if self.row is None else f"{self.file}:{self.row}"
        return f"{where}: {self.field}: {self.message}"

    def __str__(self) -> str:
        return self._render()

    def __reduce__(self) -> tuple[type[RawFormatError], tuple[str, int | None, str, str]]:
        # ValueError pickles self.args (the rendered text), which would not fit our
        # four-argument __init__; multiprocessing/Snakemake may pickle errors.
        return (type(self), (self.file, self.row, self.field, self.message))


class PathError(ValueError):
    """A path of the wrong kind: a folder where a file is expected, a file for a folder, or a
    folder too big to be a dataset's. ``str()`` reads ``'<path>: <message>'``."""

    def __init__(self, path: str, message: str) -> None:
        self.path = str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")

    def __reduce__(self) -> tuple[type[PathError], tuple[str, str]]:
        return (type(self), (self.path, self.message))


def describe_error(err: BaseException) -> str:
    """What went wrong, for a person: the first line names the file (and row and field when
    known). Used by the command line and by rule logs before any traceback."""
    if isinstance(err, OSError) and err.filename is not None:
        where = str(err.filename)
        if err.filename2 is not None:
            where += f" -> {err.filename2}"
        text = f"{where}: {err.strerror or err}"
    elif isinstance(err, (ValueError, OSError)) and str(err):
        # our errors (RawFormatError, ConfigError, PathError) already lead with the location
        text = str(err)
    elif isinstance(err, RecursionError):
        text = f"input nested too deeply to read ({err})"
    else:
        text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    # a lone surrogate from bad input must not make the error itself unprintable
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
