"""Attention shared by every family: the masks of a call, fused attention where a kernel
serves, and attention over a ``KVCache``.

- ``fused_implementation``: on a GPU in half precision, ``jax.nn.dot_product_attention`` with
  cuDNN's fused flash-attention kernel (plain causal attention, no dropout: what training
  runs); None elsewhere, where each family's explicit einsum/softmax path runs (on a CPU, XLA's
  implementation of dot_product_attention is the same einsums; tests/test_llama.py checks the
  fused call's layout, scale and grouping against the explicit path there, and
  scripts/check_attention_gpu.py checks cuDNN's numbers on a GPU).
- ``attention_within``: T tokens attending to themselves (training, scoring) with the explicit
  path, by blocks of queries on a CPU (``query_blocks``).
- ``attention_allowed``: which slots each new token sees.
- ``cached_attention``: write new keys and values into the cache and attend over all its slots.

Shapes: B batch, T new tokens, S key/value slots, H query heads, K key/value heads (K = H
without grouped-query attention), G = H / K query heads per key/value head, D head dim.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp

from jaxrap.model.kv_cache import KVCache

HALF_PRECISION = (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))


def fused_implementation(dtype: Any, head_dim: int) -> Literal["cudnn"] | None:
    """``"cudnn"`` where cuDNN's fused kernel takes the call (a GPU, half precision, head
    widths it supports), else None. Read at trace time."""
    fits = jnp.dtype(dtype) in HALF_PRECISION and head_dim % 8 == 0 and head_dim <= 128
    return "cudnn" if fits and jax.default_backend() == "gpu" else None


def fused_causal_attention(q: jax.Array, k: jax.Array, v: jax.Array, scale: float, implementation: str | None) -> jax.Array:
    """Causal attention within T tokens, as one fused call: q (B, T, H, D), k and v (B, T, K, D)
    -> (B, T, H, D); query head h reads key/value head h // G."""
    return jax.nn.dot_product_attention(q, k, v, is_causal=True, scale=scale, implementation=implementation)  # type: ignore[arg-type]


# Queries per block of attention_within on XLA:CPU: of 32, 64, 128 and 256, the fastest over
# 1,024 tokens and within noise of the fastest over 256 (docs/models.md, scripts/bench_attention.py).
CPU_QUERY_BLOCK = 64


def query_blocks(T: int) -> list[tuple[int, int]]:
    """[start, end) of each block of ``attention_within``'s queries. On a CPU, blocks of
    ``CPU_QUERY_BLOCK``: a block's queries see no key past its end, so the scores it computes
    stop there, skipping the upper triangle a causal mask would discard (about half the
    attention work and memory traffic at 1,024 tokens), and each block's scores stay in cache.
    Elsewhere one block: XLA on an accelerator does better with one large product. Read at
    trace time."""
    size = CPU_QUERY_BLOCK if jax.default_backend() == "cpu" else T
    return [(start, min(start + size, T)) for start in range(0, T, size)]


def attention_within(
    q: jax.Array,  # (B, T, H, D)
    k: jax.Array,  # (B, T, K, D)
    v: jax.Array,  # (B, T, K, D)
    allowed: jax.Array | None,  # (B or 1, 1, T, T) bool, causal (attention_allowed's); None: plain causal
    dropout_key: jax.Array | None,
    probs: Callable[[jax.Array, jax.Array, jax.Array | None], jax.Array],  # (scores (B, H, t, s), allowed, key) -> weights
) -> jax.Array:
    """Causal attention of T tokens over themselves, without a cache: y (B, T, H, D). Query
    head h reads key/value head h // G. Each block of queries (``query_blocks``) attends to the
    keys up to its own end, with its own dropout key (``dropout_key`` folded with the block's
    number). A query with no allowed slot (a left-padded row's padding) averages the values its
    block reaches rather than all of them: garbage either way, and read by nothing."""
    B, T, H, D = q.shape
    K = k.shape[2]
    G = H // K
    q = q.reshape(B, T, K, G, D)
    ys = []
    for n, (start, end) in enumerate(query_blocks(T)):
        if allowed is None:
            block_allowed = (jnp.arange(end)[None, :] <= jnp.arange(start, end)[:, None])[None, None]  # (1, 1, t, s)
        else:
            block_allowed = allowed[:, :, start:end, :end]
        key = None if dropout_key is None else jax.random.fold_in(dropout_key, n)
        scores = jnp.einsum("btkgd,bskd->bkgts", q[:, start:end], k[:, :end]).reshape(B, H, end - start, end)
        weights = probs(scores, block_allowed, key).reshape(B, K, G, end - start, end)
        ys.append(jnp.einsum("bkgts,bskd->btkgd", weights, v[:, :end]))
    return jnp.concatenate(ys, axis=1).reshape(B, T, H, D)


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
