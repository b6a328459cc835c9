"""Memory sizes as people write them ("16GiB", "512 MB", "1.5T") and as jaxrap prints them.

Used by ``train.device_memory`` (config), ``jaxrap plan --device-memory`` and the memory plan's
tables. Binary (GiB, MiB, KiB, TiB) and decimal (GB, MB, kB, TB) units are both read; a bare
letter (``16G``) is binary, as TPU and GPU memory is counted. Pure Python.
"""

from __future__ import annotations

import re

_UNITS = {
    "": 1, "b": 1,
    "k": 1 << 10, "kib": 1 << 10, "kb": 1000,
    "m": 1 << 20, "mib": 1 << 20, "mb": 1000**2,
    "g": 1 << 30, "gib": 1 << 30, "gb": 1000**3,
    "t": 1 << 40, "tib": 1 << 40, "tb": 1000**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$", re.IGNORECASE)


def size_problem(text: str) -> str | None:
    """Why ``text`` is not a memory size, or None when it is one."""
    match = _SIZE.match(text)
    if match is None or match.group(2).lower() not in _UNITS:
        return f"expected a size such as 16GiB, 512MiB or 80GB, got {text!r}"
    if float(match.group(1)) * _UNITS[match.group(2).lower()] < 1:
        return f"must be at least 1 byte, got {text!r}"
    return None


def parse_size(text: str) -> int:
    """Bytes of a size string; ValueError (with ``size_problem``'s message) when it is none."""
    problem = size_problem(text)
    if problem is not None:
        raise ValueError(problem)
    match = _SIZE.match(text)
    assert match is not None  # size_problem checked it
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_size(size: float) -> str:
    """Bytes as the largest binary unit that keeps a number of at least 1: '15.8 GiB', '512 B'."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(size) >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size:.0f} B"
