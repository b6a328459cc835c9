"""Warnings as the commands print them: one ``jaxrap: warning: ...`` line on stderr each time."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Every warning raised in the block, each time (not once per place, Python's default), as
    one line on stderr, without Python's file and line."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *_args, **_kw: print(f"jaxrap: warning: {message}", file=sys.stderr)
        yield
