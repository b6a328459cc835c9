"""Classifier-free guidance on the artist token (Sanchez et al. 2023, "Stay on topic with
Classifier-Free Guidance"): at every step the logits conditioned on the artist are pushed away
from the logits conditioned on ``<|artist:unknown|>``,

    l = l_unknown + w * (l_artist - l_unknown)        (w = ``SamplingParams.artist_guidance``)

so w = 1 is plain conditioned decoding and w > 1 amplifies what the artist token changes. The
paper, and transformers' ``UnbatchedClassifierFreeGuidanceLogitsProcessor``, mix each branch's
log-softmax instead: that differs by a constant per row, so the distribution, and every
processor but one, are the same. The exception is the repetition penalty, which divides
positive logits and multiplies negative ones: on log-probabilities (all negative) it acts as a
different, weaker penalty, so with transformers' form every w != 1 would jump away from w = 1's
text even as w -> 1 (measured: on the 900-step tiny model, W = 1.5 to 5 all gave sample
perplexities near 72 against 106 at W = 1, with the shipped penalty 1.1). Mixing the logits
themselves keeps guidance continuous at w = 1 for every processor. Guidance comes first and
the processors see the guided logits, in transformers' order.

**Rows.** Each sample row of the decoder is a guidance pair in the model's batch: row 2b is
sample b conditioned on the artist, row 2b + 1 the same tokens after the unknown token. Both
prompts start with a one-token prefix (end-of-song, then the artist or unknown token), so they
are the same length, share the prompt bucket, the KV cache layout and its write index, and
every step feeds both rows the token sampled for their sample. The pair is the innermost axis
of the model's rows (``model_rows``), so a layout of samples (x candidates, ``rows``) keeps its
order with the pairs inside it. Only the model sees 2B rows: the token history, the processors,
the sampler and the output see B, the conditioned prompt and the guided logits (the processors
run on the guided logits, in transformers' order, as they would on a model's).

w is a traced scalar: changing it never recompiles. Guidance on or off is static (the model's
batch doubles), so w = 1 runs today's programs, with no unconditioned row computed at all.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

GUIDED = 2  # model rows per sample row with guidance: conditioned, unconditioned


def model_rows(x: jax.Array, branches: int) -> jax.Array:
    """(B, ...) per-sample values -> (B * branches, ...) per model row (each sample's pair)."""
    return x if branches == 1 else jnp.repeat(x, branches, axis=0)


def guide(logits: jax.Array, weight: jax.Array, branches: int) -> jax.Array:
    """(B * branches, V) logits of the model's rows -> (B, V): each pair's guided logits, or
    ``logits`` themselves without guidance (``branches`` 1)."""
    if branches == 1:
        return logits
    pairs = logits.reshape(-1, branches, logits.shape[-1])  # (B, 2, V)
    conditioned, unconditioned = pairs[:, 0], pairs[:, 1]
    return unconditioned + weight * (conditioned - unconditioned)
