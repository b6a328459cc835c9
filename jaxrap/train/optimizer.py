"""AdamW with linear warmup then linear or cosine decay, a weight-decay mask and clipping.

Weight decay applies to matmul weights (every ``kernel``) only. Biases and LayerNorm scales
and biases are not decayed (decay would pull LayerNorm gains towards 0, not towards the
identity). The token and position embeddings are not decayed either: decoupled decay
shrinks every row at every step while only the rows of tokens in the batch get gradient, so
the rows of rare tokens would drift towards zero. With the LM head tied to the token
embedding, that erodes exactly the pretrained knowledge a fine-tune on a small corpus (many
of BelGPT-2's 50k tokens never occur in rap lyrics) should keep. An untied LM head's
``lm_head`` kernel is a matmul kernel like any other, and is decayed.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxrap.config import OptimConfig


def learning_rate_schedule(optim: OptimConfig, total_steps: int) -> optax.Schedule:
    """lr at optimizer update ``count`` (0-based): warmup to ``optim.lr``, then decay.

    Warmup is ``lr * (count + 1) / warmup_steps`` so the first update already moves (optax's
    own warmup starts at 0, a wasted step). Decay runs from the end of warmup to ``total_steps``,
    where the last update uses ``lr * end_lr_ratio``.
    """
    peak, end = optim.lr, optim.lr * optim.end_lr_ratio
    warmup = min(optim.warmup_steps, total_steps)
    decay_steps = max(total_steps - warmup, 1)

    def schedule(count: jax.Array) -> jax.Array:
        step = jnp.asarray(count, jnp.float32) + 1.0  # 1-based number of the update being made
        warm = peak * step / max(warmup, 1)
        progress = jnp.clip((step - warmup) / decay_steps, 0.0, 1.0)
        if optim.schedule == "linear":
            decayed = peak + (end - peak) * progress
        elif optim.schedule == "cosine":
            decayed = end + 0.5 * (peak - end) * (1.0 + jnp.cos(math.pi * progress))
        else:
            decayed = jnp.full_like(progress, peak)
        return jnp.where(step <= warmup, warm, decayed)

    return schedule


def decay_mask(params: Any) -> Any:
    """True for the leaves AdamW decays: matmul kernels; False for biases, norms, embeddings."""
    return jax.tree_util.tree_map_with_path(lambda path, _: path[-1].key == "kernel", params)


def make_optimizer(optim: OptimConfig, total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """(optax transformation, its learning-rate schedule) for ``total_steps`` updates."""
    schedule = learning_rate_schedule(optim, total_steps)
    adamw = optax.adamw(
        schedule, b1=optim.b1, b2=optim.b2, eps=optim.eps, weight_decay=optim.weight_decay, mask=decay_mask
    )
    if optim.clip_norm is None:
        return adamw, schedule
    return optax.chain(optax.clip_by_global_norm(optim.clip_norm), adamw), schedule
