"""Classifier-free guidance on the artist token (Sanchez et al. 2023, "Stay on topic with
Classifier-Free Guidance"): at every step the next-token distribution conditioned on the artist
is pushed away from the one conditioned on ``<|artist:unknown|>``,

    l = l_unknown + w * (l_artist - l_unknown)        (w = ``SamplingParams.artist_guidance``)

over log-probabilities (each branch's logits through a log-softmax), as the paper writes it and
as transformers' ``UnbatchedClassifierFreeGuidanceLogitsProcessor`` computes it (``generate(
guidance_scale=w, negative_prompt_ids=...)``, the reference of the tests). Mixing raw logits
instead would shift each row by a constant: the same distribution, but not the same input for
the processors that are not shift-invariant (the repetition penalty divides positive logits and
multiplies negative ones). w = 1 is plain conditioned decoding, w > 1 amplifies what the artist
token changes; like transformers, guidance comes first and the processors see the guided values.

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
    """(B * branches, V) logits of the model's rows -> (B, V): each pair's guided log-probabilities
    (unnormalised: they need not sum to 1), or ``logits`` themselves without guidance (``branches`` 1)."""
    if branches == 1:
        return logits
    pairs = jax.nn.log_softmax(logits.reshape(-1, branches, logits.shape[-1]), axis=-1)  # (B, 2, V)
    conditioned, unconditioned = pairs[:, 0], pairs[:, 1]
    return unconditioned + weight * (conditioned - unconditioned)
