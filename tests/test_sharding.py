"""Sharding: 4 forced CPU devices (tests/conftest.py) give the losses of 1 device at the same
global batch, with data parallelism and with FSDP; the leaf rule shards what it can."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jaxrap.config import MeshConfig, OptimConfig, load_config
from jaxrap.errors import JaxrapError
from jaxrap.sharding import leaf_spec, make_mesh
from jaxrap.train.pipeline import run_training
from jaxrap.train.trackers import MemoryTracker

GLOBAL_BATCH = 8


def test_the_session_has_four_cpu_devices():
    assert len(jax.devices()) == 4, "tests/conftest.py must force 4 host devices before jax is imported"


@pytest.mark.parametrize(
    ("shape", "fsdp", "spec"),
    [
        ((300, 16), 1, P()),
        ((300, 16), 2, P("fsdp")),  # the vocab rows of an embedding
        ((64, 192), 4, P(None, "fsdp")),  # the 3C output columns of c_attn
        ((8192,), 4, P("fsdp")),
        ((1025, 5), 2, P()),  # nothing divides: replicated
        ((), 2, P()),  # scalars (Adam's count, the step)
        ((2,), 2, P()),  # the RNG key: under MIN_SHARDED_SIZE, whole on every device
        ((48,), 4, P()),  # a small bias
        ((16, 48), 4, P()),  # a small kernel
    ],
)
def test_leaf_rule_splits_the_largest_divisible_dimension(shape, fsdp, spec):
    assert leaf_spec(shape, fsdp) == spec


def test_mesh_must_cover_the_devices():
    assert make_mesh(MeshConfig()).shape == {"data": 4, "fsdp": 1}
    assert make_mesh(MeshConfig(fsdp=2)).shape == {"data": 2, "fsdp": 2}
    assert make_mesh(MeshConfig(), jax.devices()[:1]).shape == {"data": 1, "fsdp": 1}
    with pytest.raises(JaxrapError, match=r"mesh.data \(3\) x mesh.fsdp \(1\) must equal the number of devices \(4\)"):
        make_mesh(MeshConfig(data=3))
    with pytest.raises(JaxrapError, match="must equal the number of devices"):
        make_mesh(MeshConfig(fsdp=3))


def _config(corpus, tokenizer, per_device, overrides=()):
    return load_config(None, [
        f"data.path={corpus}", f"model.tokenizer={tokenizer}", "data.block_size=16",
        "model.shape.n_layer=1", "model.shape.n_head=2", "model.shape.n_embd=16", "model.shape.n_positions=16",
        "model.shape.dropout=0.1",  # threefry keys are partitionable: same masks however the batch is split
        f"train.per_device_batch_size={per_device}", "train.steps=4", "train.log_every=1",
        "train.eval_every=4", "optim.lr=3e-3", "optim.warmup_steps=1", *overrides,
    ])


def _losses(corpus, tokenizer, run_dir, devices, mesh_overrides):
    config = _config(corpus, tokenizer, GLOBAL_BATCH // len(devices), mesh_overrides)
    memory = MemoryTracker()
    run_training(config, run_dir, trackers=[memory], say=memory.messages.append,
                 mesh=make_mesh(config.mesh, devices), async_checkpoints=False)
    return [metrics["loss"] for _, metrics in memory.records], memory.records[-1][1]["eval_loss"]


def test_four_devices_give_the_losses_of_one(tiny_corpus_dir, tiny_tokenizer_dir, tmp_path):
    one = _losses(tiny_corpus_dir, tiny_tokenizer_dir, tmp_path / "one", jax.devices()[:1], [])
    data_parallel = _losses(tiny_corpus_dir, tiny_tokenizer_dir, tmp_path / "dp", jax.devices(), [])
    fsdp = _losses(tiny_corpus_dir, tiny_tokenizer_dir, tmp_path / "fsdp", jax.devices(), ["mesh.fsdp=2"])
    fsdp4 = _losses(tiny_corpus_dir, tiny_tokenizer_dir, tmp_path / "fsdp4", jax.devices(), ["mesh.fsdp=4"])
    for losses, eval_loss in (data_parallel, fsdp, fsdp4):
        np.testing.assert_allclose(losses, one[0], rtol=1e-5)
        np.testing.assert_allclose(eval_loss, one[1], rtol=1e-5)
    assert one[0][-1] < one[0][0]


def test_fsdp_shards_gpt2_params_and_adam_moments_alike(tiny_config):
    import optax

    from jaxrap.model import gpt2
    from jaxrap.sharding import state_shardings

    mesh = make_mesh(MeshConfig(fsdp=2))
    _, abstract = gpt2.abstract(tiny_config.replace(n_embd=64))
    state = jax.eval_shape(lambda p: {"params": p, "opt": optax.adam(1e-3).init(p)}, abstract)
    specs = jax.tree.map(lambda s: s.spec, state_shardings(mesh, state))
    assert specs["params"]["wte"]["embedding"] == P(None, "fsdp")  # (97, 64): 97 is odd, 64 splits
    assert specs["params"]["h"][0]["attn"]["c_attn"]["kernel"] == P(None, "fsdp")  # (64, 192)
    assert specs["params"]["h"][0]["attn"]["c_attn"]["bias"] == P()  # (192,): too small to split
    assert specs["opt"][0].mu == specs["params"] and specs["opt"][0].nu == specs["params"]


@pytest.mark.parametrize("fsdp", [2, 4])
def test_rng_key_scalars_and_small_leaves_stay_whole_on_every_device(tiny_tokenizer_dir, fsdp):
    """The train state of the model above, as the loop shards it: on their shapes alone, the
    (2,) RNG key would split with mesh.fsdp 2, and the (16,) biases and LayerNorms with 4."""
    from jaxrap.data.tokenizer import load_tokenizer
    from jaxrap.model import gpt2
    from jaxrap.model.config import GPT2Config
    from jaxrap.sharding import MIN_SHARDED_SIZE, state_shardings
    from jaxrap.train.optimizer import make_optimizer
    from jaxrap.train.step import init_state

    model_config = GPT2Config(n_layer=1, n_head=2, n_embd=16, n_positions=16).for_tokenizer(load_tokenizer(tiny_tokenizer_dir))
    optimizer, _ = make_optimizer(OptimConfig(), 4)
    state = jax.eval_shape(lambda p: init_state(p, optimizer, 0), gpt2.abstract(model_config)[1])
    shardings = state_shardings(make_mesh(MeshConfig(fsdp=fsdp)), state)
    assert shardings["rng"].spec == P() and shardings["step"].spec == P()
    assert shardings["params"]["wte"]["embedding"].spec != P()  # (300, 16): split
    for (path, leaf), sharding in zip(jax.tree_util.tree_leaves_with_path(state), jax.tree.leaves(shardings), strict=True):
        if leaf.size < MIN_SHARDED_SIZE:
            assert sharding.is_fully_replicated, (jax.tree_util.keystr(path), leaf.shape, sharding.spec)
