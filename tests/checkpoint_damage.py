"""Damage done to a saved checkpoint item (``RUN/checkpoints/<step>/params`` or ``train_state``),
as a disk or a copy would."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp


def zero_data_files(item_dir: Path) -> None:
    """Overwrite the item's data files with 16 zero bytes: unreadable."""
    for file in item_dir.rglob("*"):
        if file.is_file() and file.parent.name == "d":
            file.write_bytes(b"\0" * 16)


def change_one_value(item_dir: Path) -> str:
    """Rewrite the item with 1 added to the first element of its first array: files that read
    back cleanly, with one value other than the one saved (what a flipped bit in a data file
    can decode to). Returns that array's name (the last key of its path: Orbax reads lists and
    named tuples back, without a target, as dicts, so the rest of the path differs from the
    model's tree)."""
    item_dir = item_dir.absolute()
    with ocp.StandardCheckpointer() as checkpointer:
        tree = checkpointer.restore(item_dir)
        (path, _), *_ = jax.tree_util.tree_flatten_with_path(tree)[0]
        leaves, treedef = jax.tree.flatten(tree)
        first = np.array(leaves[0])
        first.flat[0] += 1
        checkpointer.save(item_dir, jax.tree.unflatten(treedef, [first, *leaves[1:]]), force=True)
    return str(path[-1].key)
