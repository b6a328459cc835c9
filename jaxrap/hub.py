"""Hugging Face hub ids: which ``--model`` and tokenizer names jaxrap looks up on the hub.

Pure Python, so the terminal UI can tell a mistyped path from a hub id before loading anything.
"""

from __future__ import annotations


def is_hub_id(name: str) -> bool:
    """``name`` can be a hub id (``gpt2``, ``antoinelouis/belgpt2``): not a path (no leading
    ``.``, ``/`` or ``~``, no backslash) and at most one ``/`` (owner/name)."""
    return not name.startswith((".", "/", "~")) and name.count("/") <= 1 and "\\" not in name
