"""LoRA on the model interface (jaxrap.model.lora): the adapted network starts as its base,
merging equals applying the adapters at run time, gradients and optimizer state exist for the
adapters only (and match the merged-kernel formulation's), targets by name or regex and their
errors, adapters sharded like their kernels on an fsdp mesh, dropout, rematerialisation, and
the PEFT target names."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxrap.config import MeshConfig
from jaxrap.errors import JaxrapError
from jaxrap.model import lm, lora
from jaxrap.model.config import GPT2Config
from jaxrap.model.llama_config import LlamaConfig
from jaxrap.model.partition import join, partition
from jaxrap.model.peft_adapter import target_modules
from jaxrap.sharding import make_mesh, state_shardings
from jaxrap.train.step import init_state, train_step

GPT2 = GPT2Config(vocab_size=97, n_positions=32, n_embd=32, n_layer=2, n_head=4, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
LLAMA = LlamaConfig(
    model_type="llama", vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=32, tie_word_embeddings=False,
)
CONFIGS = pytest.mark.parametrize("config", [GPT2, LLAMA], ids=["gpt2", "llama"])
IDS = jnp.asarray(np.random.default_rng(0).integers(0, 97, (2, 24)), jnp.int32).at[0, 5].set(96)


def _spec(config, **changes):
    settings = {"rank": 4, "alpha": 8.0, "dropout": 0.0, "targets": None, "new_ids": (), **changes}
    return lora.make_spec(config, **settings)


def _perturbed(trainable, seed=1):
    """The adapters after some training: every trainable leaf moved by noise."""
    leaves, tree = jax.tree.flatten(trainable)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return jax.tree.unflatten(tree, [leaf + 0.05 * jax.random.normal(key, leaf.shape) for leaf, key in zip(leaves, keys)])


@CONFIGS
def test_the_adapted_network_starts_as_its_base(config):
    _, base = lm.build(config, seed=0)
    spec = _spec(config)
    trainable = lora.init_trainable(config, spec, base, seed=0)
    b_leaves = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(trainable) if path[-1].key == "lora_b"]
    assert len(b_leaves) == len(spec.modules) and not any(np.any(leaf) for leaf in b_leaves)
    adapted = lora.make_forward(config, spec)(join(trainable, base), IDS, None)
    np.testing.assert_array_equal(adapted, lm.make_forward(config)(base, IDS, None))  # B = 0: exactly the base

    grown = _spec(config, new_ids=(95, 96))  # the new rows start as the base's own rows
    trainable = lora.init_trainable(config, grown, base, seed=0)
    adapted = lora.make_forward(config, grown)(join(trainable, base), IDS, None)
    np.testing.assert_allclose(adapted, lm.make_forward(config)(base, IDS, None), atol=1e-6)


@CONFIGS
def test_merged_params_give_the_adapted_logits(config):
    _, base = lm.build(config, seed=0)
    spec = _spec(config, new_ids=(3, 96))
    trainable = _perturbed(lora.init_trainable(config, spec, base, seed=0))
    params = join(trainable, base)
    merged = lora.merged(config, spec, params)
    assert jax.tree.structure(merged) == jax.tree.structure(base)
    np.testing.assert_allclose(
        lm.make_forward(config)(merged, IDS, None), lora.make_forward(config, spec)(params, IDS, None), atol=2e-5
    )
    # The merged kernel is W + (alpha / r) A B; other leaves are the base's.
    path = spec.modules[0]
    layer = lora.at_path(params, path)
    expected = layer["kernel"] + spec.scale * layer["lora_a"] @ layer["lora_b"]
    np.testing.assert_allclose(lora.at_path(merged, path)["kernel"], expected, atol=1e-6)


@CONFIGS
def test_only_the_adapters_get_gradients_and_they_match_the_merged_kernels(config):
    _, base = lm.build(config, seed=0)
    spec = _spec(config, new_ids=(96,))
    trainable = _perturbed(lora.init_trainable(config, spec, base, seed=0))
    forward = lora.make_forward(config, spec)
    batch = {"input_ids": IDS[None], "targets": jnp.roll(IDS, -1, axis=1)[None], "loss_mask": jnp.ones_like(IDS)[None]}

    # Reference: the loss of the base network with merged kernels, differentiated in A and B.
    def merged_loss(trainable):
        logits = lm.make_forward(config)(lora.merge(config, spec, join(trainable, base)), IDS, None)
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"][0]).mean()

    def adapted_loss(trainable):
        logits = forward(join(trainable, base), IDS, None)
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"][0]).mean()

    expected, got = jax.grad(merged_loss)(trainable), jax.grad(adapted_loss)(trainable)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), got, expected)

    # The train step: optimizer state for the trainable leaves only, the frozen base untouched.
    optimizer = optax.adam(1e-2)
    state = init_state(trainable, optimizer, seed=0)
    assert jax.tree.structure(state["opt_state"][0].mu) == jax.tree.structure(trainable)
    frozen_before = jax.tree.map(np.asarray, base)
    step = jax.jit(lambda s, b, f: train_step(s, b, f, forward=forward, optimizer=optimizer, schedule=lambda _: 1e-2))
    losses = []
    for _ in range(5):
        state, metrics = step(state, batch, base)
        losses.append(float(metrics["loss"]))
    assert losses[-1] < losses[0]
    jax.tree.map(np.testing.assert_array_equal, base, frozen_before)


def test_targets_by_name_list_and_regex():
    names = lambda targets: [t.name for t in lora.select_targets(LLAMA, targets, 4)]  # noqa: E731
    assert names(["q_proj", "v_proj"]) == [f"model.layers.{i}.self_attn.{m}" for i in (0, 1) for m in ("q_proj", "v_proj")]
    assert names("q_proj|v_proj") == names(["q_proj", "v_proj"])
    assert names(r"model\.layers\.1\..*_proj") == [t.name for t in lora.linear_layers(LLAMA) if ".layers.1." in t.name]
    assert names(["layers.0.mlp.down_proj"]) == ["model.layers.0.mlp.down_proj"]
    assert len(names(None)) == 14  # every linear layer of 2 blocks: q, k, v, o, gate, up, down
    assert [t.short_name for t in lora.select_targets(GPT2, None, 4)][:4] == ["c_attn", "c_proj", "c_fc", "c_proj"]


@pytest.mark.parametrize(
    ("config", "targets", "rank", "message"),
    [
        (GPT2, "q_proj|v_proj", 4, "model.lora.targets: 'q_proj|v_proj' matches no linear layer of GPT-2 2 layers x 32 wide,"
         " 4 heads; its linear layers are c_attn, c_proj, c_fc (e.g. transformer.h.0.attn.c_attn)"),
        (LLAMA, ["q_proj", "c_attn"], 4, "model.lora.targets: 'c_attn' matches no linear layer of Llama"),
        (LLAMA, ["lm_head"], 4, "its linear layers are down_proj, gate_proj, up_proj, k_proj, o_proj, q_proj, v_proj"),
        (LLAMA, "k_proj", 17, "model.lora.rank: 17 is above the smaller side of model.layers.0.self_attn.k_proj (32 x 16);"
         " use at most 16"),
    ],
)
def test_targets_that_match_nothing_and_ranks_too_large_are_refused(config, targets, rank, message):
    with pytest.raises(JaxrapError) as raised:
        lora.select_targets(config, targets, rank)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_adapters_are_sharded_like_the_kernels_they_adapt():
    """On a 4-device fsdp mesh: A split on its input axis, B on its output axis, the rank never."""
    config = GPT2Config(vocab_size=97, n_positions=32, n_embd=128, n_layer=1, n_head=4)
    spec = lora.make_spec(config, rank=128, alpha=8.0, dropout=0.0, targets=["c_attn", "c_fc"])  # A (128, 128): square
    trainable, frozen = partition(lora.abstract(config, spec)[1], lora.is_trainable)
    mesh = make_mesh(MeshConfig(fsdp=4))
    shardings = state_shardings(mesh, trainable)
    for module in ("attn", "mlp"):
        layer = shardings["h"][0][module]["c_attn" if module == "attn" else "c_fc"]
        assert tuple(layer["lora_a"].spec) == ("fsdp",)  # (in, r): the input axis, though r is as large
        assert tuple(layer["lora_b"].spec) == (None, "fsdp")  # (r, out)
    # Adam's moments follow their parameter.
    optimizer = optax.adam(1e-3)
    opt_shardings = state_shardings(mesh, jax.eval_shape(optimizer.init, trainable))
    assert tuple(opt_shardings[0].mu["h"][0]["attn"]["c_attn"]["lora_a"].spec) == ("fsdp",)


def test_dropout_applies_to_the_adapters_input_in_training_only():
    _, base = lm.build(GPT2, seed=0)
    spec = _spec(GPT2, dropout=0.5)
    params = join(_perturbed(lora.init_trainable(GPT2, spec, base, seed=0)), base)
    forward = jax.jit(lora.make_forward(GPT2, spec))
    key = jax.random.PRNGKey(7)
    plain = forward(params, IDS, None)
    np.testing.assert_array_equal(forward(params, IDS, key), forward(params, IDS, key))  # one mask per key
    assert not np.allclose(forward(params, IDS, key), plain, atol=1e-4)
    no_dropout = lora.make_forward(GPT2, _spec(GPT2))
    np.testing.assert_allclose(no_dropout(params, IDS, key), plain, atol=1e-6)  # the base has no dropout here


@CONFIGS
def test_remat_per_block_keeps_the_loss_and_gradients(config):
    _, base = lm.build(config, seed=0)
    targets = jnp.roll(IDS, -1, axis=1)

    def loss(forward):
        return lambda params: optax.softmax_cross_entropy_with_integer_labels(forward(params, IDS, None), targets).mean()

    for remat in (False, True):
        value, grads = jax.jit(jax.value_and_grad(loss(lm.make_forward(config, remat=remat))))(base)
        if not remat:
            reference = (value, grads)
    np.testing.assert_allclose(value, reference[0], rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), grads, reference[1])

    spec = _spec(config, dropout=0.2)
    trainable = _perturbed(lora.init_trainable(config, spec, base, seed=0))
    key = jax.random.PRNGKey(3)
    results = []
    for remat in (False, True):
        forward = lora.make_forward(config, spec, remat=remat)
        lossed = lambda t, forward=forward: optax.softmax_cross_entropy_with_integer_labels(  # noqa: E731
            forward(join(t, base), IDS, key), targets).mean()
        results.append(jax.jit(jax.value_and_grad(lossed))(trainable))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), results[0][1], results[1][1])


def test_peft_target_modules_are_short_names_when_they_say_exactly_which_layers():
    assert target_modules(LLAMA, _spec(LLAMA, targets="q_proj|v_proj")) == ["q_proj", "v_proj"]
    assert target_modules(GPT2, _spec(GPT2)) == ["c_attn", "c_fc", "c_proj"]
    # GPT-2's attention c_proj alone: "c_proj" would name the MLP's too, so full names.
    assert target_modules(GPT2, _spec(GPT2, targets=r".*attn\.c_proj")) == [
        "transformer.h.0.attn.c_proj", "transformer.h.1.attn.c_proj"
    ]


def test_a_spec_round_trips_through_its_record():
    spec = _spec(LLAMA, targets=["q_proj", "down_proj"], new_ids=(96, 95))
    record = spec.record(LLAMA)
    assert record["modules"][0] == "model.layers.0.mlp.down_proj" and record["new_ids"] == [95, 96]
    assert lora.LoraSpec.from_record(LLAMA, record) == spec
    with pytest.raises(JaxrapError, match="name model.layers.5.mlp.down_proj, which Llama"):
        lora.LoraSpec.from_record(LLAMA, {**record, "modules": ["model.layers.5.mlp.down_proj"]})
