"""train_step / eval_step: the loss against transformers, exact accumulation, the decay mask, bf16."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxrap.config import OptimConfig
from jaxrap.model import gpt2
from jaxrap.model.gpt2 import make_forward
from jaxrap.train.optimizer import decay_mask, learning_rate_schedule, make_optimizer
from jaxrap.train.step import eval_step, init_state, loss_sums, train_step

T = 16


def _windows(config, rows: int, seed: int, masked_tail: list[int]) -> dict[str, np.ndarray]:
    """Batches as jaxrap.data.batches makes them: (rows, T+1) windows, tail targets masked."""
    tokens = np.random.default_rng(seed).integers(2, config.vocab_size, (rows, T + 1)).astype(np.int32)
    mask = np.ones((rows, T), np.int32)
    for row, masked in enumerate(masked_tail):
        if masked:
            mask[row, -masked:] = 0
    return {"input_ids": tokens[:, :-1], "targets": tokens[:, 1:], "loss_mask": mask}


@pytest.fixture(scope="module")
def deterministic_config(tiny_config):
    return tiny_config.replace(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)


def test_loss_is_transformers_token_weighted_mean(tiny_config, torch_reference):
    import torch

    from jaxrap.model import hf

    model, directory = torch_reference
    config, params = hf.load_pretrained(directory)
    batch = _windows(config, 3, seed=0, masked_tail=[0, 5, 11])
    loss_sum, count = jax.jit(lambda p, b: loss_sums(make_forward(config, "float32"), p, b, None))(params, batch)

    # transformers shifts labels itself: feed it the (T+1)-token windows, -100 on masked targets.
    window = np.concatenate([batch["input_ids"], batch["targets"][:, -1:]], axis=1)
    labels = window.copy()
    labels[:, 1:][batch["loss_mask"] == 0] = -100
    with torch.no_grad():
        expected = model(torch.tensor(window, dtype=torch.long), labels=torch.tensor(labels, dtype=torch.long)).loss
    assert float(count) == batch["loss_mask"].sum()
    np.testing.assert_allclose(float(loss_sum / count), expected.item(), rtol=1e-5)


def test_gradients_are_transformers_gradients(torch_reference):
    """Through the model's CPU gradient boundaries (one conditional per block), unchanged."""
    import torch

    from jaxrap.model import hf

    model, directory = torch_reference
    config, params = hf.load_pretrained(directory)
    batch = _windows(config, 2, seed=5, masked_tail=[0, 4])
    forward = make_forward(config, "float32")
    grad_fn = jax.jit(jax.grad(lambda p, b: (lambda s, c: s / c)(*loss_sums(forward, p, b, None))))
    grads = grad_fn(params, batch)
    assert grad_fn.lower(params, batch).compile().as_text().count(" conditional(") == config.n_layer

    window = np.concatenate([batch["input_ids"], batch["targets"][:, -1:]], axis=1)
    labels = window.copy()
    labels[:, 1:][batch["loss_mask"] == 0] = -100
    model.zero_grad()
    model(torch.tensor(window, dtype=torch.long), labels=torch.tensor(labels, dtype=torch.long)).loss.backward()
    expected = {name: p.grad.numpy() for name, p in model.named_parameters()}
    for path, grad in jax.tree_util.tree_flatten_with_path(grads)[0]:
        name = hf.hf_name(config, tuple(key.key for key in path))
        np.testing.assert_allclose(np.asarray(grad), expected[name], atol=2e-6, rtol=1e-4, err_msg=name)


def test_eval_step_counts_real_targets_only(deterministic_config):
    _, params = gpt2.build(deterministic_config)
    forward = make_forward(deterministic_config, "float32")
    evaluate = jax.jit(lambda p, b: eval_step(p, b, forward=forward))
    row = _windows(deterministic_config, 1, seed=1, masked_tail=[0])
    padded = {k: np.concatenate([v, v]) for k, v in row.items()}
    padded["loss_mask"][1] = 0  # a padding row, as EvalBatches fills the last batch
    doubled = {k: np.concatenate([v, v]) for k, v in row.items()}
    (padded_sum, padded_count), (doubled_sum, doubled_count) = evaluate(params, padded), evaluate(params, doubled)
    assert float(padded_count) == T and float(doubled_count) == 2 * T
    np.testing.assert_allclose(float(doubled_sum), 2 * float(padded_sum), rtol=1e-6)


def test_accumulating_k_micro_batches_equals_one_batch_of_k_times_b(deterministic_config):
    """Micro-batches with unequal token counts: a mean of per-micro-batch means would differ.

    Plain SGD, so parameters move linearly in the gradient (Adam's first step, g / |g|, would
    turn float rounding in near-zero gradients into full-size sign flips).
    """
    optimizer, schedule = optax.sgd(0.5), optax.constant_schedule(0.5)
    _, params = gpt2.build(deterministic_config)
    forward = make_forward(deterministic_config, "float32")
    step = jax.jit(lambda s, b: train_step(s, b, forward=forward, optimizer=optimizer, schedule=schedule))
    rows = _windows(deterministic_config, 6, seed=2, masked_tail=[0, 15, 3, 0, 12, 9])

    one = step(init_state(params, optimizer, seed=0), {k: v[None] for k, v in rows.items()})  # (1, 6, T)
    three = step(init_state(params, optimizer, seed=0), {k: v.reshape(3, 2, T) for k, v in rows.items()})  # (3, 2, T)

    (state_1, metrics_1), (state_3, metrics_3) = one, three
    np.testing.assert_allclose(metrics_3["loss"], metrics_1["loss"], rtol=1e-6)
    np.testing.assert_allclose(metrics_3["grad_norm"], metrics_1["grad_norm"], rtol=1e-5)
    assert float(metrics_3["tokens"]) == float(metrics_1["tokens"]) == rows["loss_mask"].sum()
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), state_3["params"], state_1["params"])
    assert int(state_3["step"]) == 1


LR, WD = 0.1, 0.5


@pytest.fixture(scope="module")
def adamw_step(deterministic_config):
    """A jitted AdamW train_step (constant lr, strong decay), shared by the tests below."""
    optimizer, schedule = make_optimizer(OptimConfig(lr=LR, warmup_steps=0, schedule="constant", weight_decay=WD), 10)
    steps = {
        dtype: jax.jit(partial(train_step, forward=make_forward(deterministic_config, dtype), optimizer=optimizer, schedule=schedule))
        for dtype in ("float32", "bfloat16")
    }

    def run(params, batch, dtype):
        return steps[dtype](init_state(params, optimizer, seed=0), {k: v[None] for k, v in batch.items()})

    return run


def test_weight_decay_applies_to_kernels_only(deterministic_config, adamw_step):
    _, params = gpt2.build(deterministic_config)
    mask = decay_mask(params)
    decayed = {jax.tree_util.keystr(path) for path, flag in jax.tree_util.tree_leaves_with_path(mask) if flag}
    assert decayed and all(name.endswith("['kernel']") for name in decayed)
    assert "['wte']['embedding']" not in decayed and "['ln_f']['scale']" not in decayed

    # With every target masked the gradient is zero, so Adam moves nothing and only decoupled
    # weight decay acts: kernels shrink by lr * wd, everything else stays put.
    state, _ = adamw_step(params, _windows(deterministic_config, 2, seed=3, masked_tail=[T, T]), "float32")

    def check(path, before, after, decays):
        expected = before * (1 - LR * WD) if decays else before
        np.testing.assert_allclose(after, expected, rtol=1e-6, err_msg=jax.tree_util.keystr(path))

    jax.tree_util.tree_map_with_path(check, params, state["params"], mask)


def test_schedule_warms_up_linearly_then_decays_to_the_end_ratio():
    cosine = learning_rate_schedule(OptimConfig(lr=1.0, warmup_steps=4, schedule="cosine", end_lr_ratio=0.1), 12)
    linear = learning_rate_schedule(OptimConfig(lr=1.0, warmup_steps=4, schedule="linear", end_lr_ratio=0.0), 12)
    # update count 0 is the first update: it already moves at lr / warmup.
    np.testing.assert_allclose([float(cosine(c)) for c in range(4)], [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(float(cosine(7)), 0.1 + 0.9 * 0.5, rtol=1e-6)  # halfway through decay
    np.testing.assert_allclose(float(cosine(11)), 0.1, rtol=1e-6)  # the last update
    np.testing.assert_allclose(float(linear(7)), 0.5, rtol=1e-6)
    np.testing.assert_allclose(float(linear(11)), 0.0, atol=1e-7)
    short = learning_rate_schedule(OptimConfig(lr=1.0, warmup_steps=100), 10)  # warmup capped at the run
    np.testing.assert_allclose(float(short(9)), 1.0, rtol=1e-6)


def test_bfloat16_compute_keeps_float32_master_weights(deterministic_config, adamw_step):
    _, params = gpt2.build(deterministic_config)
    batch = _windows(deterministic_config, 2, seed=4, masked_tail=[0, 3])
    losses = {}
    for dtype in ("float32", "bfloat16"):
        state, metrics = adamw_step(params, batch, dtype)
        assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state["params"]))
        losses[dtype] = float(metrics["loss"])
    assert np.isfinite(losses["bfloat16"])
    assert losses["bfloat16"] == pytest.approx(losses["float32"], rel=2e-2)


def test_loss_gradient_norm_clipping_and_adamw_add_no_matmul():
    """Only the model's own matmuls run at JAX's default precision (one bfloat16 pass on a TPU,
    TF32 on recent NVIDIA GPUs): the loss, the gradient norm, clipping and AdamW are reductions
    and elementwise ops, exact in float32 on every backend. A forward without matmuls (a
    lookup of (V, V) logits) leaves none in the lowered step."""
    vocab = 11
    optimizer, schedule = make_optimizer(OptimConfig(clip_norm=1.0, weight_decay=0.1), 10)
    step = partial(train_step, forward=lambda p, ids, key: p["logits"][ids], optimizer=optimizer, schedule=schedule)
    params = {"logits": jnp.zeros((vocab, vocab)), "head": {"kernel": jnp.ones((vocab, 2))}}
    tokens = np.random.default_rng(0).integers(0, vocab, (1, 2, T + 1)).astype(np.int32)
    batch = {"input_ids": tokens[..., :-1], "targets": tokens[..., 1:], "loss_mask": np.ones((1, 2, T), np.int32)}
    text = jax.jit(step).lower(init_state(params, optimizer, seed=0), batch).as_text()
    assert "dot_general" not in text and "stablehlo.dot" not in text
