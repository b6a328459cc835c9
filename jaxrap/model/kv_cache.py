"""The key/value cache every family decodes with, and the attention masks and cached
attention that go with its layout.

Shapes: B batch, T new tokens, S key/value slots, H query heads, K key/value heads (K = H
without grouped-query attention), G = H / K query heads per key/value head, D head dim,
L layers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from flax import struct

if TYPE_CHECKING:
    from jaxrap.model.registry import LMConfig


@struct.dataclass
class KVCache:
    """Static-shape key/value cache for decoding; one slot per position of the context. It
    holds the key/value heads only: with grouped-query attention, K < H.

    Laid out for decoding a token at a time on a CPU, where XLA copies any operand a matmul
    cannot read in place: one buffer per layer (a slice of a stacked (L, ...) array is a
    copy), batch and heads merged into the matmul batch dimension (with separate B and K
    dimensions XLA copies the updated cache to reshape it), slots last for the keys, so the G
    queries of a key/value head attend with two plain batched matmuls, q (G*T, D) @ keys
    (D, S) and probs (G*T, S) @ values (S, D), and each step updates the buffers in place
    (faster than a stacked (L, B, S, H, D) cache; README, Benchmarks — sampling). Attention
    reads all S slots, the unused ones masked: choosing a shorter prefix with ``lax.switch``
    made XLA copy the cache into the branches, which was slower.
    """

    keys: tuple[jax.Array, ...]  # L x (B*K, D, S)
    values: tuple[jax.Array, ...]  # L x (B*K, S, D)
    mask: jax.Array  # (B, S) bool: slot holds a real token (not padding, not yet written)
    index: jax.Array  # () int32: next slot to write, shared by the batch

    @classmethod
    def empty(cls, config: LMConfig, batch: int, length: int, dtype: Any = jnp.float32) -> KVCache:
        heads, D = batch * config.n_kv_head, config.head_dim
        return cls(
            keys=tuple(jnp.zeros((heads, D, length), dtype) for _ in range(config.n_layer)),
            values=tuple(jnp.zeros((heads, length, D), dtype) for _ in range(config.n_layer)),
            mask=jnp.zeros((batch, length), bool),
            index=jnp.zeros((), jnp.int32),
        )

    def grow(self, copies: int, length: int) -> KVCache:
        """This cache of G rows and P slots as ``copies`` copies of its rows (row r of the result
        is row r % G: copy-major, the G rows innermost), of ``length`` slots, the new slots
        empty: a prompt is prefilled once for all its samples (G = 1), or once per guidance
        branch for all the samples' pairs (G = 2), over its own slots only."""
        GH, D, P = self.keys[0].shape

        def rows(x):  # (G*H, ...) or (G, P) -> copies of them, (copies*G*H, ...) or (copies*G, P)
            return jnp.broadcast_to(x[None], (copies, *x.shape)).reshape(copies * x.shape[0], *x.shape[1:])

        return self.replace(  # type: ignore[attr-defined]  # flax.struct adds replace()
            keys=tuple(jnp.zeros((copies * GH, D, length), k.dtype).at[..., :P].set(rows(k)) for k in self.keys),
            values=tuple(jnp.zeros((copies * GH, length, D), v.dtype).at[:, :P].set(rows(v)) for v in self.values),
            mask=jnp.zeros((copies * self.mask.shape[0], length), bool).at[:, :P].set(rows(self.mask)),
        )


def attention_allowed(
    attention_mask: jax.Array | None,  # (B, T): 1 for real tokens, 0 for padding; None: all real
    positions: jax.Array | None,  # (B, T) int; None: the slots
    cache: KVCache | None,
    shape: tuple[int, int],  # (B, T)
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(allowed (B, 1, T, S) bool, key_valid (B, S), index (), positions (B, T)) for T new
    tokens written from slot ``index``: a query in slot index + t sees the slots up to its
    own that hold real tokens (without a cache, S = T and index = 0)."""
    B, T = shape
    valid = jnp.ones((B, T), bool) if attention_mask is None else attention_mask.astype(bool)
    index = jnp.zeros((), jnp.int32) if cache is None else cache.index
    if positions is None:
        positions = jnp.broadcast_to(index + jnp.arange(T, dtype=jnp.int32), (B, T))
    if cache is None:
        key_valid, S = valid, T  # (B, S)
    else:
        key_valid = jax.lax.dynamic_update_slice(cache.mask, valid, (0, index))
        S = cache.mask.shape[1]
    causal = jnp.arange(S)[None, :] <= index + jnp.arange(T)[:, None]  # (T, S)
    return causal[None, None] & key_valid[:, None, None, :], key_valid, index, positions


def cached_attention(
    q: jax.Array,  # (B, T, H, D)
    k: jax.Array,  # (B, T, K, D)
    v: jax.Array,  # (B, T, K, D)
    kv: tuple[jax.Array, jax.Array],  # the layer's cached keys (B*K, D, S) and values (B*K, S, D)
    index: jax.Array,  # () slot of the first new token
    probs: Callable[[jax.Array], jax.Array],  # raw scores (B, H, T, S) -> attention probabilities, same shape
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """Write the new keys and values at ``index`` and attend over every slot (KVCache's
    layout): (y (B, T, H, D), the updated keys and values). Query head h reads key/value head
    h // G, as transformers' ``repeat_kv`` pairs them."""
    B, T, H, D = q.shape
    K = k.shape[2]
    G = H // K
    k_cache, v_cache = kv
    k = k.transpose(0, 2, 3, 1).reshape(B * K, D, T).astype(k_cache.dtype)
    v = v.transpose(0, 2, 1, 3).reshape(B * K, T, D).astype(v_cache.dtype)
    kv = (jax.lax.dynamic_update_slice(k_cache, k, (0, 0, index)), jax.lax.dynamic_update_slice(v_cache, v, (0, index, 0)))
    q = q.reshape(B, T, K, G, D).transpose(0, 2, 3, 1, 4).reshape(B * K, G * T, D)
    scores = jnp.einsum("ntd,nds->nts", q, kv[0].astype(q.dtype)).reshape(B, H, T, -1)  # (B, H, T, S)
    weights = probs(scores).reshape(B * K, G * T, -1)
    y = jnp.einsum("nts,nsd->ntd", weights, kv[1]).reshape(B, H, T, D).transpose(0, 2, 1, 3)  # (B, T, H, D)
    return y, kv
