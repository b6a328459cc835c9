"""Attention within a sequence by blocks of queries (jaxrap.model.attention.attention_within)
against one block over all of it: values and gradients, grouped-query heads, padding masks,
and sequences that do not divide into blocks. The families' parity tests against transformers
run across several blocks too (tests/test_llama.py, tests/test_model.py)."""

from __future__ import annotations

from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

from jaxrap.model import attention

B, H, K, D = 2, 4, 2, 8


def _probs(scores, allowed, key):
    scores = jnp.where(allowed, scores * D**-0.5, jnp.finfo(jnp.float32).min)
    weights = jax.nn.softmax(scores, axis=-1)
    if key is None:
        return weights
    keep = jax.random.bernoulli(key, 0.9, weights.shape)
    return jnp.where(keep, weights / 0.9, 0.0)


def _attend(block: int, q, k, v, allowed, dropout_key=None):
    """attention_within with blocks of ``block`` queries, traced afresh (blocks are read at trace time)."""
    with mock.patch.object(attention, "CPU_QUERY_BLOCK", block):
        return jax.jit(lambda q, k, v: attention.attention_within(q, k, v, allowed, dropout_key, _probs))(q, k, v)


def _inputs(T: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return tuple(jnp.asarray(rng.normal(size=(B, T, heads, D)), jnp.float32) for heads in (H, K, K))


def _padding(T: int) -> np.ndarray:
    """(B, T) attention mask: row 0 right-padded after 11 tokens, row 1 left-padded by 5."""
    mask = np.ones((B, T), np.int32)
    mask[0, 11:] = 0
    mask[1, :5] = 0
    return mask


@pytest.mark.parametrize("T", [29, 32])
@pytest.mark.parametrize("padded", [False, True], ids=["causal", "padded"])
def test_blocks_of_queries_equal_one_block(T, padded):
    """Equal at every real token. A left-padded row's padding queries see no slot at all and
    average the values their block reaches: garbage either way, read by nothing (no real
    query attends to padding, and the loss masks it), so only finiteness is checked there."""
    q, k, v = _inputs(T)
    mask = _padding(T) if padded else np.ones((B, T), np.int32)
    allowed = attention.attention_allowed(jnp.asarray(mask), None, None, (B, T))[0] if padded else None
    whole = _attend(T, q, k, v, allowed)
    real = mask.astype(bool)
    for block in (1, 8, 13):
        blocked = np.asarray(_attend(block, q, k, v, allowed))
        np.testing.assert_allclose(blocked[real], np.asarray(whole)[real], atol=1e-6, rtol=0)
        assert np.isfinite(blocked).all()


def test_gradients_by_blocks_equal_one_block():
    q, k, v = _inputs(29, seed=1)
    weights = jnp.asarray(np.random.default_rng(2).normal(size=(B, 29, H, D)), jnp.float32)

    def grads(block):
        with mock.patch.object(attention, "CPU_QUERY_BLOCK", block):
            loss = lambda q, k, v: jnp.sum(attention.attention_within(q, k, v, None, None, _probs) * weights)  # noqa: E731
            return jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(q, k, v)

    for ours, expected in zip(grads(8), grads(29)):
        np.testing.assert_allclose(ours, expected, atol=2e-6, rtol=0)


def test_each_block_draws_its_own_dropout():
    """Blocks share one dropout key folded with their number: two blocks never repeat a mask."""
    q, k, v = _inputs(16)
    ones = jnp.ones_like(v)
    dropped = _attend(8, q, k, ones, None, jax.random.key(0))  # with v = 1, y is each row's kept weight
    first, second = np.asarray(dropped[:, :8]), np.asarray(dropped[:, 8:])
    assert not np.allclose(first, second)
    assert np.isfinite(dropped).all()


@given(T=st.integers(1, 300), block=st.integers(1, 128))
def test_query_blocks_tile_the_sequence(T, block):
    with mock.patch.object(attention, "CPU_QUERY_BLOCK", block):
        blocks = attention.query_blocks(T)
    assert blocks[0][0] == 0 and blocks[-1][1] == T
    assert all(end == start for (_, end), (start, _) in zip(blocks, blocks[1:]))
    assert all(0 < end - start <= block for start, end in blocks)
