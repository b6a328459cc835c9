"""XLA:CPU workarounds: what jaxrap does differently for XLA's CPU backend, and why.

All three leave values and gradients as they are and only change how XLA:CPU compiles a
training step; other backends skip the first and the last. How much each saves, measured
when: docs/benchmarks.md (Training), docs/models.md (Speed against transformers' PyTorch
classes).

- ``gradient_boundary`` (applied by the model to the residual stream between blocks, and by
  LoRA to each adapted layer's output, whose gradient feeds three dots): on CPU,
  XLA fuses the chain of residual-gradient additions (one per block) into every
  weight-gradient transpose that reads it, recomputing the chain in each: O(L^2) work. Passing
  the gradient through a ``lax.cond`` makes XLA:CPU materialise it once per block (it drops
  ``optimization_barrier``, which would say the same).
- ``on_rows`` (applied by both families to their linear layers and LM heads): a layer's
  input flattened to rows, (B*T, C), and its result reshaped back. A weight's gradient then
  contracts one dimension, which XLA:CPU's dot reads in place; from a (B, T, C) input it
  contracts two, and XLA:CPU first copies the output's gradient transposed (for the LM head
  a (V, B*T) copy of the logits' gradient). Same numbers on every backend.
- ``train_step_compiler_options`` (applied by ``jaxrap.train.step.jit_train_step``): XLA:CPU
  hands dots to YNNPACK fusions by default, and YNNPACK's float32 matmuls in the training step
  are slower than XLA's own dots, so on CPU only reductions stay YNNPACK fusions. Sampling keeps
  the defaults: there, turning YNNPACK off made decoding slower.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

# Dots compiled by XLA itself, reductions still by YNNPACK (see the module docstring).
CPU_TRAIN_STEP_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE"}


def train_step_compiler_options() -> dict[str, str] | None:
    """XLA options for the training step on the default backend (None: XLA's defaults)."""
    return CPU_TRAIN_STEP_OPTIONS if jax.default_backend() == "cpu" else None


def on_rows(layer: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
    """``layer`` applied to x (..., C) as rows (N, C), its result reshaped to (..., C'): 2-D dots
    (see the module docstring). Reshapes only, so the same numbers on every backend."""
    rows = layer(x.reshape(-1, x.shape[-1]))
    return rows.reshape(*x.shape[:-1], rows.shape[-1])


@jax.custom_vjp
def gradient_boundary(x: jax.Array) -> jax.Array:
    """Identity on the residual stream between blocks; only its gradient is special (on CPU:
    materialised once per block, see the module docstring)."""
    return x


def _boundary_backward(_: None, g: jax.Array) -> tuple[jax.Array]:
    if jax.default_backend() != "cpu":
        return (g,)
    return (jax.lax.cond(jnp.isfinite(g.ravel()[0]), lambda g: g, lambda g: g * 1.0, g),)


gradient_boundary.defvjp(lambda x: (x, None), _boundary_backward)
