"""Where every array of a run lives: the one place for meshes and sharding specs, used by
training (``jaxrap.train``) and evaluation (``jaxrap.evaluate``) alike.

A 2-D mesh over all devices (of all processes) with axes ``("data", "fsdp")``.

- Batches, shaped (B, T) or with a leading micro-batch axis (A, B, T), are split along B
  over both axes: every device computes on its own rows (with fsdp, FSDP/ZeRO-3 style).
- Parameters and optimizer state are replicated when ``fsdp == 1``. With ``fsdp > 1`` each
  leaf of at least ``MIN_SHARDED_SIZE`` elements is split along its largest dimension that the
  fsdp axis size divides (the vocab rows of the embedding, the 3C or 4C output columns of a
  kernel), and replicated when none does; XLA inserts the all-gathers and reduce-scatters.
  Adam's moments have their parameter's shape, so the same rule shards them alike. Smaller
  leaves (the RNG key, the step and Adam's counts, biases, LayerNorm parameters) stay whole on
  every device.

LoRA's adapters (``jaxrap.model.lora``) follow the kernels they adapt rather than their own
largest side: A (in, r) is split along its input axis and B (r, out) along its output axis
(when the fsdp size divides it), and the rank axis is never split.

Nothing else here knows the model: the rules look at leaf shapes, and at the names of those
two adapter leaves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxrap.config import MeshConfig
from jaxrap.errors import JaxrapError

AXES = ("data", "fsdp")
BATCH_AXES = ("data", "fsdp")  # the batch dimension is split over every device
# Leaves under 4,096 elements (16 KiB of float32) are replicated: the RNG key (2,), scalars,
# and the biases and LayerNorm parameters of models up to GPT-2 small's width. Splitting them
# saves a few KiB per device, costs a collective each time a step reads them, and would split
# the two words of the key (or a (4,) bias) across devices.
MIN_SHARDED_SIZE = 4096
# The axis each LoRA adapter leaf is split along, by its params name (jaxrap.model.lora's).
ADAPTER_AXES = {"lora_a": 0, "lora_b": 1}


def make_mesh(config: MeshConfig, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """The (data, fsdp) mesh over ``devices`` (default: every device of every process)."""
    devices = list(jax.devices() if devices is None else devices)
    fsdp = config.fsdp
    data = len(devices) // fsdp if config.data == -1 else config.data
    if data < 1 or data * fsdp != len(devices):
        raise JaxrapError(
            f"mesh.data ({config.data if config.data != -1 else data}) x mesh.fsdp ({fsdp}) must equal"
            f" the number of devices ({len(devices)}); set mesh.data: -1 to use them all"
        )
    # create_device_mesh orders TPU devices along the physical interconnect; on CPU/GPU it is a
    # reshape in process order, so each process's devices hold a contiguous run of batch rows.
    return Mesh(mesh_utils.create_device_mesh((data, fsdp), devices), AXES)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, leading_axes: int = 0) -> NamedSharding:
    """Rows split over all devices; ``leading_axes`` unsplit axes before the row axis."""
    return NamedSharding(mesh, P(*([None] * leading_axes), BATCH_AXES))


def leaf_spec(shape: tuple[int, ...], fsdp: int, axis: int | None = None) -> P:
    """Split the largest dimension that ``fsdp`` divides over the fsdp axis (only ``axis``, when
    given); replicate a leaf under MIN_SHARDED_SIZE elements, or one that no such dimension of
    divides."""
    if fsdp == 1 or math.prod(shape) < MIN_SHARDED_SIZE:
        return P()
    dims = range(len(shape)) if axis is None else [axis]
    candidates = [(shape[dim], dim) for dim in dims if shape[dim] % fsdp == 0]
    if not candidates:
        return P()
    _, dim = max(candidates)
    return P(*([None] * dim), "fsdp")


def state_shardings(mesh: Mesh, abstract_state: Any) -> Any:
    """A NamedSharding for every leaf of a (params / optimizer state / train state) tree."""
    fsdp = mesh.shape["fsdp"]

    def spec(path: tuple, leaf: Any) -> NamedSharding:
        name = getattr(path[-1], "key", None) if path else None
        return NamedSharding(mesh, leaf_spec(tuple(leaf.shape), fsdp, ADAPTER_AXES.get(name) if isinstance(name, str) else None))

    return jax.tree_util.tree_map_with_path(spec, abstract_state)


def place(params: Any, shardings: Any) -> Any:
    """Host (or single-device) params onto the mesh; every process passes the same values.
    Leaves already placed with their sharding stay as they are."""

    def put(leaf: Any, target: jax.sharding.Sharding) -> jax.Array:
        if isinstance(leaf, jax.Array) and leaf.sharding == target:
            return leaf
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, target, lambda index: host[index])

    return jax.tree.map(put, params, shardings)


def put_batch(local: dict[str, np.ndarray], sharding: NamedSharding, global_shape: tuple[int, ...]) -> dict[str, jax.Array]:
    """Global arrays of ``global_shape`` from this process's rows of the batch.

    Every leaf has the same shape ((A, B, T) or (B, T)). Which global rows a process's devices
    hold does not matter to the loss (a sum over all rows); the row counts must match.
    """
    return {name: jax.make_array_from_process_local_data(sharding, array, global_shape) for name, array in local.items()}
