"""Errors shared by the raw-data loaders."""

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
