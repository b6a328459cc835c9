"""jaxrap's GPT-2 against transformers' PyTorch GPT2LMHeadModel, the reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxrap.errors import JaxrapError
from jaxrap.model import gpt2, hf
from jaxrap.model.config import GPT2Config

# Parity across several blocks of queries (the CPU path), 8 queries each: conftest.
pytestmark = pytest.mark.usefixtures("several_query_blocks")

# Jitted once per shape: eager NNX would compile every op separately, which is far slower.
forward = jax.jit(gpt2.forward, static_argnums=0)


@pytest.fixture(scope="module")
def loaded(torch_reference):
    _, directory = torch_reference
    config, params = hf.load_pretrained(directory)
    graphdef, _ = gpt2.abstract(config)
    return config, graphdef, params


def _torch_logits(model, ids, mask=None, positions=None):
    with torch.no_grad():
        out = model(
            torch.tensor(ids),
            attention_mask=None if mask is None else torch.tensor(mask),
            position_ids=None if positions is None else torch.tensor(positions),
        )
    return out.logits.numpy()


def test_logits_match_transformers(torch_reference, loaded):
    model, _ = torch_reference
    _, graphdef, params = loaded
    ids = np.random.RandomState(0).randint(0, 97, (3, 40))
    ours, cache = forward(graphdef, params, jnp.asarray(ids))
    assert cache is None
    np.testing.assert_allclose(np.asarray(ours), _torch_logits(model, ids), atol=1e-4, rtol=0)


def test_padded_batch_matches_transformers(torch_reference, loaded):
    """Right padding (training) and left padding with shifted positions (generation)."""
    model, _ = torch_reference
    _, graphdef, params = loaded
    ids = np.random.RandomState(1).randint(2, 97, (2, 16))
    mask = np.ones_like(ids)
    mask[0, 11:] = 0  # right-padded row
    mask[1, :5] = 0  # left-padded row
    positions = np.clip(np.cumsum(mask, axis=1) - 1, 0, None)
    ours, _ = forward(
        graphdef, params, jnp.asarray(ids), attention_mask=jnp.asarray(mask), positions=jnp.asarray(positions)
    )
    ref = _torch_logits(model, ids, mask, positions)
    real = mask.astype(bool)
    assert np.abs(np.asarray(ours)[real] - ref[real]).max() <= 1e-4
    assert np.isfinite(np.asarray(ours)).all()  # fully masked (pad) queries stay finite


def test_kv_cache_decoding_equals_full_forward(loaded):
    config, graphdef, params = loaded
    ids = jnp.asarray(np.random.RandomState(2).randint(0, 97, (2, 12)))
    full, _ = forward(graphdef, params, ids)
    cache = gpt2.KVCache.empty(config, batch=2, length=20)
    prefill, cache = forward(graphdef, params, ids[:, :9], cache=cache)
    np.testing.assert_allclose(prefill, full[:, :9], atol=1e-5)
    for t in range(9, 12):  # one token at a time through the cache
        step, cache = forward(graphdef, params, ids[:, t : t + 1], cache=cache)
        np.testing.assert_allclose(step[:, 0], full[:, t], atol=1e-5)
    assert int(cache.index) == 12


def test_kv_cache_with_left_padded_prompt(loaded):
    """A left-padded prompt decodes exactly as the same prompt unpadded."""
    config, graphdef, params = loaded
    prompt = np.random.RandomState(3).randint(2, 97, (1, 6))
    next_token = np.array([[5]])
    alone, _ = forward(graphdef, params, jnp.asarray(np.concatenate([prompt, next_token], 1)))

    padded = np.concatenate([np.full((1, 4), 1), prompt], 1)
    mask = (np.arange(10) >= 4)[None].astype(np.int32)
    positions = np.clip(np.cumsum(mask, 1) - 1, 0, None)
    cache = gpt2.KVCache.empty(config, batch=1, length=16)
    _, cache = forward(
        graphdef, params, jnp.asarray(padded), attention_mask=jnp.asarray(mask),
        positions=jnp.asarray(positions), cache=cache,
    )
    step, _ = forward(graphdef, params, jnp.asarray(next_token), positions=jnp.array([[6]]), cache=cache)
    np.testing.assert_allclose(step[0, 0], alone[0, 6], atol=1e-5)


def test_fused_attention_equals_the_current_path(loaded, monkeypatch):
    """The fused call a GPU takes (jax.nn.dot_product_attention, here with XLA's implementation)
    against the explicit path every CPU run takes, GPT-2's scale included."""
    config, graphdef, params = loaded
    ids = jnp.asarray(np.random.RandomState(6).randint(0, 97, (2, 24)))
    explicit = np.asarray(jax.jit(gpt2.make_forward(config))(params, ids, None))
    monkeypatch.setattr(gpt2, "fused_implementation", lambda dtype, head_dim: "xla")
    fused = np.asarray(jax.jit(gpt2.make_forward(config))(params, ids, None))
    np.testing.assert_allclose(fused, explicit, atol=1e-5, rtol=0)


def test_dropout_is_active_only_with_a_key(loaded):
    _, graphdef, params = loaded
    ids = jnp.zeros((1, 8), jnp.int32)
    a, _ = forward(graphdef, params, ids)
    b, _ = forward(graphdef, params, ids)
    c, _ = forward(graphdef, params, ids, dropout_key=jax.random.key(0))
    d, _ = forward(graphdef, params, ids, dropout_key=jax.random.key(0))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(c, d)  # same key, same mask
    assert np.abs(np.asarray(a - c)).max() > 1e-3


def test_bfloat16_compute_stays_close_to_float32(tiny_config):
    graphdef32, params = gpt2.build(tiny_config, seed=0)
    graphdef16, _ = gpt2.abstract(tiny_config, dtype=jnp.bfloat16)
    ids = jnp.asarray(np.random.RandomState(4).randint(0, 97, (2, 16)))
    ref, _ = forward(graphdef32, params, ids)
    low, _ = forward(graphdef16, params, ids)
    assert low.dtype == jnp.float32  # logits always float32
    assert np.abs(np.asarray(low - ref)).max() < 0.05
    assert jax.tree.leaves(params)[0].dtype == jnp.float32  # master weights stay float32


def test_random_init_follows_gpt2_scheme():
    config = GPT2Config(vocab_size=512, n_positions=64, n_embd=128, n_layer=8, n_head=4)
    _, params = gpt2.build(config, seed=0)
    block = params["h"][0]
    assert np.std(np.asarray(block["attn"]["c_attn"]["kernel"])) == pytest.approx(0.02, rel=0.05)
    assert np.std(np.asarray(block["mlp"]["c_proj"]["kernel"])) == pytest.approx(0.02 / 4, rel=0.05)
    assert np.all(np.asarray(block["ln_1"]["scale"]) == 1.0)
    assert np.all(np.asarray(block["attn"]["c_attn"]["bias"]) == 0.0)
    n_params = sum(x.size for x in jax.tree.leaves(params))
    assert n_params == config.num_params()


def test_gpt2_small_param_count():
    assert GPT2Config().num_params() == 124_439_808  # transformers' GPT-2 small, tied head


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"n_embd": 30, "n_head": 4}, "divisible"),
        ({"n_layer": 0}, "n_layer"),
        ({"activation_function": "swish"}, "activation_function"),
        ({"attn_pdrop": 1.5}, "attn_pdrop"),
    ],
)
def test_bad_config_values_are_refused(fields, message):
    with pytest.raises(JaxrapError, match=message):
        GPT2Config(**fields)
