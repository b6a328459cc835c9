"""Pure training and evaluation steps (MaxText style): the loop is plain Python around them.

The trainer knows the model only as ``forward(params, input_ids, dropout_key) -> logits``:
``input_ids`` (B, T) int32, ``dropout_key`` a PRNG key or None (deterministic), logits
(B, T, V) float32. Compute dtype (float32 or bfloat16 matmuls over float32 master weights)
is the forward's business. The params come in two disjoint trees (``jaxrap.model.partition``):
the trainable ones, in the train state, and the frozen ones (a LoRA run's base; ``{}`` in full
fine-tuning), an argument of every step that is never differentiated, updated, donated or
saved. The forward sees them joined.

A batch is a dict of same-shape int32 arrays, as ``jaxrap.data.batches`` makes them:
``input_ids`` (.., T), ``targets`` (.., T) (the next token of each input position) and
``loss_mask`` (.., T) (1 for a target that counts, 0 for padding). Train batches carry a
leading micro-batch axis: (A, B, T) for A accumulation steps.

The train state is a plain dict pytree (what Orbax saves):
``step`` () int32 updates done, ``params``, ``opt_state``, ``rng`` (2,) uint32 base key.

The step's metrics (``loss``, ``grad_norm``, ``lr``, ``tokens``, ``finite``) stay on the devices
until the loop syncs; ``finite`` says the loss, the gradient norm and the whole new state
(params and optimizer state) hold no inf or NaN, so that the loop never saves a state that does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxrap.model.partition import join
from jaxrap.model.xla_cpu import train_step_compiler_options

Params = Any
Batch = dict[str, jax.Array]
TrainState = dict[str, Any]
Forward = Callable[[Params, jax.Array, jax.Array | None], jax.Array]

def init_state(params: Params, optimizer: optax.GradientTransformation, seed: int) -> TrainState:
    return {
        "step": jnp.zeros((), jnp.int32),
        "params": params,
        "opt_state": optimizer.init(params),
        "rng": jax.random.PRNGKey(seed),  # raw uint32 key data: plain arrays for Orbax
    }


def loss_sums(forward: Forward, params: Params, batch: Batch, dropout_key: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """(sum of token cross-entropies, number of counted targets), both float32 scalars.

    Sums, not means, so that micro-batches, devices and eval batches add up exactly and the
    mean is taken once over every counted token (token-weighted, padding excluded).
    """
    logits = forward(params, batch["input_ids"], dropout_key)  # (B, T, V) float32
    losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), batch["targets"])  # (B, T)
    weights = batch["loss_mask"].astype(jnp.float32)
    return jnp.sum(losses * weights), jnp.sum(weights)


def train_step(
    state: TrainState,
    batch: Batch,
    frozen: Params | None = None,
    *,
    forward: Forward,
    optimizer: optax.GradientTransformation,
    schedule: optax.Schedule,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimizer update from A micro-batches (batch leaves are (A, B, T)).

    Gradients of the summed loss are accumulated over micro-batches with ``lax.scan`` and
    divided once by the total token count, so A x B rows equal one batch of A*B rows exactly
    (up to float summation order). Dropout keys: fold_in(fold_in(rng, step), micro-batch).
    Only ``state["params"]`` get gradients; ``frozen`` (None: none) joins them in the forward.
    """
    params = state["params"]
    step_key = jax.random.fold_in(state["rng"], state["step"])

    def joined_loss_sums(trainable: Params, micro_batch: Batch, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        return loss_sums(forward, join(trainable, frozen or {}), micro_batch, key)

    grad_fn = jax.value_and_grad(joined_loss_sums, has_aux=True)

    def accumulate(carry, micro):
        grad_sum, loss_sum, count = carry
        index, micro_batch = micro
        (micro_loss, micro_count), grads = grad_fn(params, micro_batch, jax.random.fold_in(step_key, index))
        grad_sum = jax.tree.map(jnp.add, grad_sum, grads)
        return (grad_sum, loss_sum + micro_loss, count + micro_count), None

    num_micro = jax.tree.leaves(batch)[0].shape[0]
    zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), params)
    init = (zeros, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))
    (grad_sum, loss_sum, count), _ = jax.lax.scan(accumulate, init, (jnp.arange(num_micro), batch))

    denominator = jnp.maximum(count, 1.0)
    grads = jax.tree.map(lambda g: g / denominator, grad_sum)
    updates, opt_state = optimizer.update(grads, state["opt_state"], params)
    new_state = {
        "step": state["step"] + 1,
        "params": optax.apply_updates(params, updates),
        "opt_state": opt_state,
        "rng": state["rng"],
    }
    loss, grad_norm = loss_sum / denominator, optax.tree.norm(grads)  # grad_norm: before clipping
    metrics = {
        "loss": loss,
        "grad_norm": grad_norm,
        "lr": schedule(state["step"]),
        "tokens": count,
        # The loss is computed before the update: an inf or NaN gradient (clipping turns inf
        # into NaN) leaves it finite while it poisons the new params and Adam's moments.
        "finite": all_finite((loss, grad_norm, new_state["params"], opt_state)),
    }
    return new_state, metrics


def all_finite(tree: Any) -> jax.Array:
    """() bool: no inf or NaN in any floating-point leaf of ``tree``, reduced on the devices.

    One sum over every element: an inf or NaN anywhere makes it inf or NaN, and a finite
    state's sum stays far inside float32's range (it would take elements near 1e31). Sums are
    the reductions XLA vectorises best: half the time of all(isfinite(leaf)) on XLA:CPU (README,
    Reliability, has the figures).
    """
    leaves = [leaf for leaf in jax.tree.leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.floating)]
    return jnp.isfinite(sum(jnp.sum(leaf, dtype=jnp.float32) for leaf in leaves))


def eval_step(params: Params, batch: Batch, frozen: Params | None = None, *, forward: Forward) -> jax.Array:
    """[sum of token cross-entropies, counted targets] of a (B, T) batch, deterministic."""
    return jnp.stack(loss_sums(forward, join(params, frozen or {}), batch, None))


def jit_train_step(
    forward: Forward,
    optimizer: optax.GradientTransformation,
    schedule: optax.Schedule,
    state_sharding: Any,
    batch_sharding: jax.sharding.NamedSharding,
    metrics_sharding: jax.sharding.NamedSharding,
    frozen_sharding: Any = None,
) -> Callable[..., tuple[TrainState, dict[str, jax.Array]]]:
    """``train_step`` compiled with explicit shardings; the input state's buffers are donated.
    Called ``(state, batch)``, or ``(state, batch, frozen)`` when ``frozen_sharding`` is given."""
    step = partial(train_step, forward=forward, optimizer=optimizer, schedule=schedule)
    in_shardings = (state_sharding, batch_sharding) + (() if frozen_sharding is None else (frozen_sharding,))
    return jax.jit(
        step,
        in_shardings=in_shardings,
        out_shardings=(state_sharding, metrics_sharding),
        donate_argnums=0,
        compiler_options=train_step_compiler_options(),  # XLA:CPU's, see jaxrap.model.xla_cpu
    )


def jit_eval_step(
    forward: Forward,
    params_sharding: Any,
    batch_sharding: jax.sharding.NamedSharding,
    metrics_sharding: jax.sharding.NamedSharding,
    frozen_sharding: Any = None,
) -> Callable[..., jax.Array]:
    """``eval_step`` compiled: called ``(params, batch)``, or ``(params, batch, frozen)``."""
    in_shardings = (params_sharding, batch_sharding) + (() if frozen_sharding is None else (frozen_sharding,))
    return jax.jit(partial(eval_step, forward=forward), in_shardings=in_shardings, out_shardings=metrics_sharding)
