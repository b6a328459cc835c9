"""jaxrap's Llama-style decoder against transformers' PyTorch classes, each family.

Five random-init references built with transformers (grouped-query attention, 4 query and 2
key/value heads), covering every model_type, every RoPE scaling (none, linear, llama3) and the
three ways a config.json states RoPE (``rope_theta`` + ``rope_scaling`` with ``type``, with
``rope_type``, and transformers v5's ``rope_parameters``): the config is rewritten into that
form after ``save_pretrained`` and the reference is transformers' own reading of the file.
"""

from __future__ import annotations

import json
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from hypothesis import given, strategies as st

from jaxrap.model import hf, lm
from jaxrap.model.kv_cache import KVCache
from jaxrap.sample.decode import NO_TOKEN, DecodeModel, token_chunks
from jaxrap.sample.params import SamplingParams
from jaxrap.sample.processors import SamplingArrays
from jaxrap.train.step import loss_sums

# Parity across several blocks of queries (the CPU path), 8 queries each: conftest.
pytestmark = pytest.mark.usefixtures("several_query_blocks")

VOCAB = 128
SHAPE = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=64, bos_token_id=1, eos_token_id=2,
             initializer_range=0.15)
LLAMA3 = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
# name -> (transformers class, extra config fields, how config.json states RoPE after saving)
CASES = {
    "llama-biases-untied": (transformers.LlamaForCausalLM, dict(attention_bias=True, mlp_bias=True),
                            {"rope_theta": 10000.0}),
    "llama-llama3-tied": (transformers.LlamaForCausalLM, dict(tie_word_embeddings=True),
                          {"rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", **LLAMA3}}),
    "mistral-linear": (transformers.MistralForCausalLM, dict(sliding_window=None),
                       {"rope_theta": 20000.0, "rope_scaling": {"type": "linear", "factor": 4.0}}),
    "qwen2-tied": (transformers.Qwen2ForCausalLM, dict(tie_word_embeddings=True),
                   {"rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}}),
    "qwen3-head-dim-llama3": (transformers.Qwen3ForCausalLM, dict(head_dim=16),
                              {"rope_parameters": {"rope_type": "llama3", "rope_theta": 10000.0, **LLAMA3}}),
}
IDS = np.random.default_rng(0).integers(3, VOCAB, (2, 24))

forward = jax.jit(lm.forward, static_argnums=0)


def _reference(case: str, tmp_path_factory) -> tuple:
    """(transformers model as it reads the rewritten config.json, directory, case name)."""
    model_class, extra, rope = CASES[case]
    config = model_class.config_class(**SHAPE, **extra)
    torch.manual_seed(0)
    model = model_class(config)
    with torch.no_grad():  # norms and biases away from their 1 / 0 init, so that a swap shows
        for p in model.parameters():
            if p.ndim == 1:
                p.add_(torch.randn_like(p) * 0.2)
    directory = tmp_path_factory.mktemp(case)
    model.save_pretrained(directory)
    data = json.loads((directory / "config.json").read_text())
    data.pop("rope_parameters", None)
    data.update(rope)
    (directory / "config.json").write_text(json.dumps(data))
    return model_class.from_pretrained(directory).eval(), directory, case


def _loaded(directory) -> tuple:
    config, params = hf.load_pretrained(directory)
    return config, lm.abstract(config)[0], params


@pytest.fixture(scope="module", params=list(CASES))
def reference(request, tmp_path_factory):
    return _reference(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def loaded(reference):
    return _loaded(reference[1])


@pytest.fixture(scope="module")
def qwen3(tmp_path_factory):
    """The case with every flag of the block's attention (q/k norm, explicit head_dim), for the
    tests of the block itself rather than of a family."""
    return _loaded(_reference("qwen3-head-dim-llama3", tmp_path_factory)[1])


def _logits(model, ids, mask=None, positions=None) -> np.ndarray:
    with torch.no_grad():
        return model(
            torch.tensor(ids), attention_mask=None if mask is None else torch.tensor(mask),
            position_ids=None if positions is None else torch.tensor(positions),
        ).logits.numpy()


def test_config_reads_the_family_and_rope_as_transformers_does(reference, loaded):
    model, _, name = reference
    config, _, _ = loaded
    hf_config = model.config
    assert config.model_type == hf_config.model_type
    head_dim = getattr(hf_config, "head_dim", None) or hf_config.hidden_size // hf_config.num_attention_heads  # Qwen2 has none
    assert (config.num_attention_heads, config.kv_heads, config.head_dim) == (4, 2, head_dim)
    assert config.rope_theta == hf_config.rope_parameters["rope_theta"]
    rope_type = hf_config.rope_parameters["rope_type"]
    assert (config.rope_scaling.rope_type if config.rope_scaling else "default") == rope_type
    assert config.tie_word_embeddings == hf_config.tie_word_embeddings
    assert config.num_params() == sum(p.numel() for p in model.parameters())


def test_logits_equal_transformers(reference, loaded):
    model, _, _ = reference
    _, graphdef, params = loaded
    ours = np.asarray(forward(graphdef, params, jnp.asarray(IDS))[0])
    expected = _logits(model, IDS)
    assert np.abs(expected).max() > 1.0  # logits large enough for the comparison to mean something
    np.testing.assert_allclose(ours, expected, atol=1e-4, rtol=0)


def test_padded_rows_with_their_own_positions_equal_transformers(reference, loaded):
    """Right padding, and left padding with shifted position ids (each row's RoPE its own)."""
    model, _, _ = reference
    _, graphdef, params = loaded
    mask = np.ones_like(IDS[:, :16])
    mask[0, 11:] = 0
    mask[1, :5] = 0
    positions = np.clip(np.cumsum(mask, axis=1) - 1, 0, None)
    ours = np.asarray(forward(graphdef, params, jnp.asarray(IDS[:, :16]), attention_mask=jnp.asarray(mask),
                              positions=jnp.asarray(positions))[0])
    expected = _logits(model, IDS[:, :16], mask, positions)
    real = mask.astype(bool)
    assert np.abs(ours[real] - expected[real]).max() <= 1e-4
    assert np.isfinite(ours).all()


def test_kv_cache_holds_key_value_heads_and_equals_the_full_forward(loaded):
    config, graphdef, params = loaded
    ids = jnp.asarray(IDS[:, :12])
    full = forward(graphdef, params, ids)[0]
    cache = KVCache.empty(config, batch=2, length=20)
    assert cache.keys[0].shape == (2 * 2, config.head_dim, 20)  # B * K, not B * H
    prefill, cache = forward(graphdef, params, ids[:, :9], cache=cache)
    np.testing.assert_allclose(prefill, full[:, :9], atol=1e-5)
    for t in range(9, 12):
        step, cache = forward(graphdef, params, ids[:, t : t + 1], cache=cache)
        np.testing.assert_allclose(step[:, 0], full[:, t], atol=1e-5)


def test_fused_attention_equals_the_explicit_path(qwen3, monkeypatch):
    """The fused call a GPU takes (jax.nn.dot_product_attention, here with XLA's implementation:
    the same arguments, layout, scale and head grouping) against the explicit path, on the CPU."""
    from jaxrap.model import llama

    config, graphdef, params = qwen3
    explicit = np.asarray(jax.jit(lm.make_forward(config))(params, jnp.asarray(IDS), None))
    monkeypatch.setattr(llama, "fused_implementation", lambda dtype, head_dim: "xla")
    fused = np.asarray(jax.jit(lm.make_forward(config))(params, jnp.asarray(IDS), None))
    np.testing.assert_allclose(fused, explicit, atol=1e-5, rtol=0)


def test_gradients_equal_transformers(reference, loaded):
    model, _, _ = reference
    config, _, params = loaded
    tokens = np.random.default_rng(5).integers(3, VOCAB, (2, 17)).astype(np.int32)
    mask = np.ones((2, 16), np.int32)
    mask[1, -4:] = 0
    batch = {"input_ids": tokens[:, :-1], "targets": tokens[:, 1:], "loss_mask": mask}
    grads = jax.jit(jax.grad(lambda p: (lambda s, c: s / c)(*loss_sums(lm.make_forward(config), p, batch, None))))(params)

    labels = tokens.copy()
    labels[:, 1:][mask == 0] = -100
    model.zero_grad()
    model(torch.tensor(tokens, dtype=torch.long), labels=torch.tensor(labels, dtype=torch.long)).loss.backward()
    expected = {name: p.grad.numpy() for name, p in model.named_parameters()}
    for path, grad in jax.tree_util.tree_flatten_with_path(grads)[0]:
        keys = tuple(key.key for key in path)
        name = hf.hf_name(config, keys)
        grad = np.asarray(grad).T if keys[-1] == "kernel" else np.asarray(grad)
        np.testing.assert_allclose(grad, expected[name], atol=2e-6, rtol=1e-4, err_msg=name)


def test_greedy_generation_with_repetition_penalty_equals_transformers(reference, loaded):
    model, _, _ = reference
    config, _, params = loaded
    prompt, new = IDS[0, :8].tolist(), 24
    with torch.no_grad():
        expected = model.generate(
            torch.tensor([prompt]), do_sample=False, max_new_tokens=new, min_new_tokens=new, repetition_penalty=1.3,
            pad_token_id=0,
        )[0, len(prompt):].tolist()
    params_ = SamplingParams(temperature=0.0, repetition_penalty=1.3, repetition_window=0, max_new_tokens=new,
                             min_new_tokens=new, num_samples=2, seed=0)
    sampling = SamplingArrays.from_params(params_, config.eos_token_id)
    tokens = np.concatenate(list(token_chunks(DecodeModel.from_params(config, params), prompt, sampling, num_samples=2)), 1)
    for row in tokens:
        assert row[row != NO_TOKEN].tolist() == expected


def test_export_loads_in_transformers_and_equals_the_reference(reference, loaded, tmp_path):
    model, _, _ = reference
    config, _, params = loaded
    hf.save_pretrained(tmp_path / "a", config, params)
    reloaded = type(model).from_pretrained(tmp_path / "a").eval()
    np.testing.assert_array_equal(_logits(reloaded, IDS), _logits(model, IDS))
    hf.save_pretrained(tmp_path / "b", *hf.load_pretrained(tmp_path / "a"))
    for name in ("model.safetensors", "config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


# bfloat16 matmuls over float32 weights, against the float32 logits: measured when written, at
# most 0.07 apart on logits up to ~6 (bfloat16 keeps 8 bits of mantissa: ~0.4% per rounding).
BF16_ATOL = 0.25


def test_bfloat16_compute_stays_close_to_float32(loaded):
    config, graphdef, params = loaded
    low = np.asarray(forward(lm.abstract(config, dtype=jnp.bfloat16)[0], params, jnp.asarray(IDS))[0])
    ref = np.asarray(forward(graphdef, params, jnp.asarray(IDS))[0])
    assert low.dtype == np.float32
    assert np.abs(low - ref).max() < BF16_ATOL


def test_random_init_counts_and_shapes(qwen3):
    config, _, _ = qwen3
    _, params = lm.build(config, seed=0)
    assert sum(x.size for x in jax.tree.leaves(params)) == config.num_params()
    assert np.std(np.asarray(params["layers"][0]["mlp"]["up_proj"]["kernel"])) == pytest.approx(0.15, rel=0.1)
    assert np.all(np.asarray(params["norm"]["scale"]) == 1.0)


@partial(pytest.mark.parametrize, "form")(["rope_type", "type", "rope_parameters"])
def test_rope_is_read_in_each_form_and_unknown_types_are_refused(form):
    from jaxrap.errors import JaxrapError
    from jaxrap.model.registry import config_from_hf_dict

    scaling = {"factor": 2.0}
    data = {"model_type": "llama", **{k: v for k, v in SHAPE.items()}}
    if form == "rope_parameters":
        data["rope_parameters"] = {"rope_type": "linear", "rope_theta": 5e5, **scaling}
    else:
        data.update(rope_theta=5e5, rope_scaling={form: "linear", **scaling})
    config = config_from_hf_dict(data)
    assert (config.rope_theta, config.rope_scaling.rope_type, config.rope_scaling.factor) == (5e5, "linear", 2.0)
    bad = json.loads(json.dumps(data).replace('"linear"', '"yarn"'))
    with pytest.raises(JaxrapError, match="RoPE scaling type 'yarn' is not supported; jaxrap supports default, linear, llama3"):
        config_from_hf_dict(bad)


@given(st.lists(st.floats(-30, 30, width=32), min_size=1, max_size=16))
def test_swiglu_gradient_equals_autodiff(gates):
    """The written-out backward of silu(gate) * up against JAX's autodiff of the same formula,
    saturated gates included."""
    from jaxrap.model.llama import swiglu

    gate = jnp.asarray(gates, jnp.float32)
    up = jnp.linspace(-2.0, 3.0, gate.size, dtype=jnp.float32)
    weights = jnp.cos(jnp.arange(gate.size, dtype=jnp.float32))
    ours = jax.grad(lambda g, u: jnp.sum(swiglu(g, u) * weights), argnums=(0, 1))(gate, up)
    expected = jax.grad(lambda g, u: jnp.sum(jax.nn.silu(g) * u * weights), argnums=(0, 1))(gate, up)
    for a, b in zip(ours, expected):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-5)
