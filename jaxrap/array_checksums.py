"""Checksums of a pytree's arrays, computed on the devices that hold them.

A checkpoint records one checksum per array when it is saved and compares them when it is
restored (``jaxrap.checkpoint``), so that files which still decode, but to other values (a
flipped bit on disk, a bad copy, a data file overwritten in place), are caught like
unreadable ones instead of resuming training from garbage. Orbax checks no such thing: its
zstd chunks decode whatever bytes they hold.

An array's checksum is a sum, modulo 2**32, of its elements' bits times a weight hashed from
each element's flat index (MurmurHash3's finalizer, made odd). A sum modulo 2**32 does not
depend on the order of addition, so the checksum is the same on any sharding and any number of
devices; and as every weight is odd, a change to any single element always changes it (a
nonzero change below 2**32 times an odd number is never 0 modulo 2**32). Other damage goes
unseen with odds of about 2**-32 per array, as with a CRC-32. One fused pass over the arrays:
the tiny model's params and Adam moments (12.8M elements) in 22 ms on the team's 2-core CPU,
GPT-2 small's (373M) in 0.5 s, after a compilation of about 0.65 s.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

# Recorded beside the checksums: a checksum made another way is not compared (never taken
# for damage). Change it with anything below that changes a checksum's value.
ALGORITHM = "uint32 sum of bits x odd murmur3-finalized flat index"
_MURMUR_1, _MURMUR_2 = np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE3D)


def _as_uint32(leaf: jax.Array) -> jax.Array:
    """The leaf's elements' bits, as uint32 words (64-bit elements give two words each)."""
    if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    if leaf.dtype == jnp.bool_:
        return leaf.astype(jnp.uint32)
    width = leaf.dtype.itemsize * 8
    if width == 64:
        return lax.bitcast_convert_type(leaf, jnp.uint32)  # (..., 2)
    return lax.bitcast_convert_type(leaf, jnp.dtype(f"uint{width}")).astype(jnp.uint32)


def _index_weights(shape: tuple[int, ...]) -> jax.Array:
    """Odd uint32 weights, one per element, hashed from its flat index: unrelated from one
    element to the next, so that moving values within an array changes the sum too."""
    index = jnp.arange(np.prod(shape, dtype=int), dtype=jnp.uint32).reshape(shape)
    index = (index ^ (index >> 16)) * _MURMUR_1
    index = (index ^ (index >> 13)) * _MURMUR_2
    return (index ^ (index >> 16)) | np.uint32(1)


def _leaf_checksum(leaf: jax.Array) -> jax.Array:
    """() uint32: the weighted sum of ``leaf``'s bits."""
    bits = _as_uint32(leaf)
    return jnp.sum(bits * _index_weights(bits.shape), dtype=jnp.uint32)


@jax.jit
def _checksums(leaves: list[jax.Array]) -> jax.Array:
    return jnp.stack([_leaf_checksum(leaf) for leaf in leaves])  # (leaves,)


def checksums(tree: Any) -> list[str]:
    """One 8-digit hex checksum per array of ``tree``, in ``jax.tree`` flattening order."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return []
    sums = np.asarray(jax.device_get(_checksums(leaves)))
    return [f"{value:08x}" for value in sums.tolist()]


def mismatches(tree: Any, saved: list[str]) -> list[str]:
    """The paths (``jax.tree_util.keystr``) of ``tree``'s arrays whose checksums differ from
    ``saved``; every path when the number of arrays differs."""
    paths = [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    computed = checksums(tree)
    if len(computed) != len(saved):
        return paths
    return [path for path, now, then in zip(paths, computed, saved, strict=True) if now != then]
