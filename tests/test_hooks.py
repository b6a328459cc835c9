"""The loop's hooks never save a non-finite state: one poisoned batch at a save step.

The loss is computed before the update, so a step whose gradient is NaN (or overflows) has a
finite loss while the state it produces does not. A model whose forward poisons the gradient
only for batches holding one chosen token is trained with a checkpoint every step; the run
must stop at that step, save nothing of it, and name a checkpoint that really is finite.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrap import sharding
from jaxrap.checkpoint import Checkpoints, abstract_like
from jaxrap.config import MeshConfig, load_config
from jaxrap.data.batches import PackedBlocks, TrainBatches
from jaxrap.errors import JaxrapError
from jaxrap.model import gpt2
from jaxrap.model.config import GPT2Config
from jaxrap.train import loop
from jaxrap.train.optimizer import make_optimizer
from jaxrap.train.step import all_finite, init_state
from jaxrap.train.trackers import MemoryTracker

VOCAB, BLOCK, BATCH = 40, 8, 2
POISON = VOCAB - 1  # the token that poisons a batch
POISONED_STEP = 5  # the 1-based step whose batch holds it


def _blocks() -> PackedBlocks:
    """30 blocks of random tokens; the block read at POISONED_STEP gets one POISON input."""
    tokens = np.random.default_rng(0).integers(2, POISON, size=30 * BLOCK).astype(np.uint16)
    blocks = PackedBlocks(tokens, BLOCK, eos_token_id=0, pad_token_id=1, data_key="poison-test")
    batches = TrainBatches(blocks, BATCH, seed=0)
    first_row = [next(batches) for _ in range(POISONED_STEP)][-1]["input_ids"][0]
    (block,) = [
        b for b in range(blocks.num_blocks) if np.array_equal(blocks.gather(np.array([b]))["input_ids"][0], first_row)
    ]
    tokens[block * BLOCK + 2] = POISON  # stream position block*T + 3: an input of that block only
    return blocks


def _poisoned_forward(config: GPT2Config, kind: str):
    forward = gpt2.make_forward(config)

    def poisoned(params, input_ids, dropout_key):
        logits = forward(params, input_ids, dropout_key)  # (B, T, V)
        poisoned_batch = jnp.any(input_ids == POISON)
        bias = params["wpe"]["embedding"][0, 0]
        if kind == "inf_gradient":
            # sqrt(b - stop_gradient(b) + c) added to the logit of the pad token (never a target
            # of a full row, so its loss gradient is > 0 everywhere): the value is sqrt(c), the
            # gradient for b 1/(2 sqrt(c)) times it: finite for c = 1, +inf for c = 0.
            shift = jnp.sqrt(bias - jax.lax.stop_gradient(bias) + jnp.where(poisoned_batch, 0.0, 1.0))
            return logits.at[..., 1].add(shift)
        # "overflowing_gradient": the logits' value as is, their gradient scaled by 1e20 on that
        # batch: the loss stays finite, the squared gradient norm and Adam's second moment
        # overflow float32 (the update m / sqrt(v) is then 0: the params stay finite).
        scale = jnp.where(poisoned_batch, 1e20, 1.0)
        return logits + (scale - 1.0) * (logits - jax.lax.stop_gradient(logits))

    return poisoned


@pytest.mark.parametrize(
    ("kind", "overrides", "problem"),
    [
        # clipping turns the inf into NaN params
        ("inf_gradient", [], "the gradient norm is inf"),
        # params stay finite, Adam's moments do not
        ("overflowing_gradient", ["optim.clip_norm=null"], "the gradient norm is inf"),
    ],
)
def test_a_poisoned_batch_at_a_save_step_stops_before_saving(kind, overrides, problem, tmp_path):
    config = load_config(
        None,
        [
            "train.steps=8",
            f"train.per_device_batch_size={BATCH}",
            "train.save_every=1",
            "train.log_every=4",
            "train.eval_every=100",
            "train.keep_checkpoints=20",
            "optim.warmup_steps=0",
            f"data.block_size={BLOCK}",
            *overrides,
        ],
    )
    model_config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=BLOCK,
        n_embd=16,
        n_layer=1,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=1,
    )
    model = loop.Model(
        forward=_poisoned_forward(model_config, kind),
        abstract_params=gpt2.abstract(model_config)[1],
        init_params=lambda shardings, frozen: gpt2.build(model_config, seed=0)[1],
        flops_per_token=1.0,
    )
    blocks = _blocks()
    mesh = sharding.make_mesh(MeshConfig(), jax.devices()[:1])
    with pytest.raises(JaxrapError) as raised:
        loop.train(config, model, blocks, blocks, tmp_path, [MemoryTracker()], mesh=mesh)
    message = str(raised.value)
    assert f"{problem} at step {POISONED_STEP} (loss " in message and "stopped without saving" in message
    assert f"the last good checkpoint is step {POISONED_STEP - 1}" in message

    optimizer, _ = make_optimizer(config.optim, config.train.steps)
    abstract_state = jax.eval_shape(lambda p: init_state(p, optimizer, 0), model.abstract_params)
    target = abstract_like(abstract_state, sharding.state_shardings(mesh, abstract_state))
    with Checkpoints(tmp_path, read_only=True) as checkpoints:
        assert checkpoints.steps() == list(range(1, POISONED_STEP))
        for step in checkpoints.steps():
            state, _ = checkpoints.restore(step, target)
            assert bool(all_finite(state)), f"checkpoint {step} holds inf or NaN"


def test_all_finite_looks_at_every_float_leaf():
    tree = {"a": jnp.ones((3,)), "b": {"c": jnp.zeros((2, 2)), "step": jnp.int32(7)}}
    assert bool(all_finite(tree))
    assert not bool(all_finite({**tree, "a": jnp.array([1.0, jnp.inf, 0.0])}))
    assert not bool(all_finite({**tree, "b": {"c": jnp.full((2, 2), jnp.nan), "step": jnp.int32(7)}}))
