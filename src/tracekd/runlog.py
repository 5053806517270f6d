"""Send a job's output to its Snakemake log file, and fail with the reason written there."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

from tracekd.errors import describe_error


@contextmanager
def logged(path: str | Path | None) -> Iterator[None]:
    """Redirect stdout, stderr and logging to ``path`` (append) for the block; re-raise errors.

    On an error the log gets one line first, ``error: <file>:<row>: <field>: <message>`` (what
    :func:`~tracekd.errors.describe_error` says), then the traceback for whoever debugs it.
    """
    if path is None:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # backslashreplace: a lone surrogate quoted from bad input must not break the log itself
    with open(path, "a", encoding="utf-8", errors="backslashreplace") as fh, \
            redirect_stdout(fh), redirect_stderr(fh):
        handler = logging.StreamHandler(fh)
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
        try:
            yield
        except BaseException as err:
            print(f"error: {describe_error(err)}", file=fh)
            traceback.print_exc(file=fh)
            raise
        finally:
            logging.getLogger().removeHandler(handler)
            fh.flush()
            sys.stdout.flush()
