"""A model's params as two disjoint trees: what the optimizer trains and what stays frozen.

Full fine-tuning trains everything (frozen is ``{}``). A LoRA run (``jaxrap.model.lora``)
trains its adapters and new embedding rows, over a frozen base. The trainer takes both trees
explicitly: gradients and optimizer state exist for the trainable one only, and the forward
sees them ``join``-ed back into the network's params. Both are nested dicts with the same
keys as the network's params (``lm.Params``), each leaf in exactly one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Params = dict[Any, Any]


def partition(params: Params, trainable: Callable[[tuple], bool]) -> tuple[Params, Params]:
    """(trainable, frozen): the leaves whose path ``trainable`` accepts, and the others;
    empty modules are left out of each tree."""
    kept: Params = {}
    rest: Params = {}
    for key, value in params.items():
        if isinstance(value, dict):
            inner_kept, inner_rest = partition(value, _under(key, trainable))
            if inner_kept:
                kept[key] = inner_kept
            if inner_rest:
                rest[key] = inner_rest
        elif trainable((key,)):
            kept[key] = value
        else:
            rest[key] = value
    return kept, rest


def _under(key: Any, trainable: Callable[[tuple], bool]) -> Callable[[tuple], bool]:
    """``trainable`` for the paths below ``key``."""
    return lambda path: trainable((key, *path))


def join(trainable: Params, frozen: Params) -> Params:
    """The network's params from its two disjoint parts (``partition``'s inverse)."""
    if not frozen:
        return trainable
    joined = dict(frozen)
    for key, value in trainable.items():
        joined[key] = join(value, frozen[key]) if isinstance(value, dict) and key in frozen else value
    return joined
