"""Activation rematerialisation per block (``train.remat: block``): the backward pass keeps only
each block's input and recomputes the block's activations from it, one block at a time.

On TPU and GPU this is ``jax.checkpoint``. XLA:CPU drops the optimization barriers that
``jax.checkpoint`` relies on to keep the recomputation in the backward pass, and then schedules
it early: the compiled step held more memory, not less (docs/lora.md has the figures). There,
``rematerialised`` is a custom VJP instead: the forward saves the block's input, the backward
recomputes the block once the cotangent of its output exists (the same ``lax.cond`` dependency
as ``xla_cpu.gradient_boundary``) and differentiates only what the caller differentiates (a
LoRA run's frozen kernels get no weight gradient here either).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx


def rematerialised(block: nnx.Module) -> Callable[..., Any]:
    """``block``'s call, ``block(x, *args) -> (x, cache)``, with its activations recomputed in
    the backward pass. ``args`` (masks, positions, keys) are never differentiated; Python bools
    among them (flags such as ``causal_only``) stay static."""

    def call(x: jax.Array, *args: Any) -> Any:
        static = tuple(arg if isinstance(arg, bool) else None for arg in args)
        dynamic = tuple(None if isinstance(arg, bool) else arg for arg in args)
        if jax.default_backend() != "cpu":
            return jax.checkpoint(lambda x, dynamic: block(x, *_joined(static, dynamic)))(x, dynamic)
        graphdef, state = nnx.split(block)
        return _recomputed(graphdef, static)(state, x, dynamic)

    return call


def _joined(static: tuple, dynamic: tuple) -> tuple:
    return tuple(flag if isinstance(flag, bool) else arg for flag, arg in zip(static, dynamic, strict=True))


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class _Perturbed:
    """Which leaves of the block's state the caller differentiates: static data of a residual."""

    flags: tuple[bool, ...]


def _recomputed(graphdef: nnx.GraphDef, static: tuple) -> Callable[..., Any]:
    def run(state: Any, x: jax.Array, args: tuple) -> Any:
        return nnx.merge(graphdef, state)(x, *_joined(static, args))

    call = jax.custom_vjp(run)

    def forward(state: Any, x: Any, args: Any) -> tuple[Any, Any]:
        values = jax.tree.map(lambda primal: primal.value, (state, x, args), is_leaf=_is_primal)
        flags = jax.tree.leaves(jax.tree.map(lambda primal: primal.perturbed, state, is_leaf=_is_primal))
        return run(*values), (values, _Perturbed(tuple(flags)))

    def backward(residuals: Any, cotangent: Any) -> tuple[Any, Any, Any]:
        (state, x, args), perturbed = residuals
        x_cotangent = _materialised(cotangent[0], x)
        # Recompute only once the output's cotangent exists: the block's activations are then
        # alive for this block alone. Everything the recompute reads goes through the cond, or
        # XLA shares with the forward pass what depends on the weights and keys alone and keeps
        # it for the whole step (a Llama-style step's temporaries, 2 -> 4 blocks 512 wide, 4 x 512
        # tokens with LoRA: 232 -> 264 MiB with only x through the cond, 216 -> 224 MiB so; with
        # LoRA's dropout 359 -> 506 MiB, 288 -> 432 MiB so: dropout still costs per block).
        first = x_cotangent.ravel()[0]
        state, x, args = jax.lax.cond(
            jnp.isfinite(first), lambda inputs: inputs, lambda inputs: jax.tree.map(lambda leaf: _touched(leaf, first), inputs),
            (state, x, args),
        )
        leaves, tree = jax.tree.flatten(state)
        trained = [leaf for leaf, flag in zip(leaves, perturbed.flags) if flag]

        def differentiated(trained: list, x: jax.Array) -> jax.Array:
            it = iter(trained)
            whole = jax.tree.unflatten(tree, [next(it) if flag else leaf for leaf, flag in zip(leaves, perturbed.flags)])
            return run(whole, x, args)[0]

        _, vjp = jax.vjp(differentiated, trained, x)
        trained_cotangents, dx = vjp(x_cotangent)
        it = iter(trained_cotangents)
        state_cotangent = jax.tree.unflatten(
            tree, [next(it) if flag else _zero(leaf) for leaf, flag in zip(leaves, perturbed.flags)]
        )
        return state_cotangent, dx, jax.tree.map(_zero, args)

    call.defvjp(forward, backward, symbolic_zeros=True)
    return call


def _touched(leaf: Any, first: jax.Array) -> Any:
    """``leaf`` again, by an operation rather than passed as it is (``first`` is not finite in
    this branch: inf or NaN, either way the select gives ``leaf``)."""
    if jnp.issubdtype(leaf.dtype, jnp.floating):
        return leaf * 1.0
    return jnp.where(first == first, leaf, leaf)  # first is inf or NaN here; either way, leaf


def _is_primal(node: Any) -> bool:
    return isinstance(node, jax.custom_derivatives.CustomVJPPrimal)


def _materialised(cotangent: Any, like: jax.Array) -> jax.Array:
    return jnp.zeros_like(like) if isinstance(cotangent, jax.custom_derivatives.SymbolicZero) else cotangent


def _zero(leaf: Any) -> Any:
    """A symbolic zero cotangent for ``leaf`` (nothing is computed for it)."""
    return None if leaf is None else jax.custom_derivatives.SymbolicZero(jax.typeof(leaf).to_tangent_aval())
