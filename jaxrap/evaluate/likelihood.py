"""Log-likelihood of continuations given contexts, batched through one jitted forward.

``ContinuationScorer.score(contexts, continuations)`` returns, for each pair, the model's
log-probability of every continuation token given the context and the continuation tokens
before it. Pairs are packed into (B, T) rows, right-padded (causal attention keeps real
positions from seeing the pads), T a power of two up to the model's context and B fixed, so
a whole evaluation compiles once or twice. Used for the model's perplexity of its own
samples and for artist attribution (the same sample under every artist token).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxrap.data.batches import bucket_length
from jaxrap.load import LoadedModel

LOGITS_BYTES = 2**28  # rows per call are capped so that the (B, T, V) float32 logits stay under this


class ContinuationScorer:
    def __init__(self, loaded: LoadedModel, *, dtype: str = "float32"):
        import jax
        import jax.numpy as jnp

        from jaxrap.model.lm import make_forward

        self.context = loaded.config.n_positions
        self.vocab_size = loaded.config.vocab_size
        self.params = jax.device_put(loaded.params)
        forward = make_forward(loaded.config, dtype)

        def target_log_probs(params, input_ids, targets):  # (B, T) log p(targets[b, t] | input_ids[b, :t+1])
            logits = forward(params, input_ids, None)  # (B, T, V) float32
            log_probs = jax.nn.log_softmax(logits, axis=-1)
            return jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]

        self._score = jax.jit(target_log_probs)

    def score(self, contexts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Per-token log-probabilities (float64, one array per pair, len(continuation) long).

        Each context needs at least one token; a pair longer than the model's context keeps
        the context and loses the continuation's end (its array is then shorter)."""
        sequences, spans = [], []
        for context, continuation in zip(contexts, continuations, strict=True):
            if not context:
                raise ValueError("every continuation needs a context of at least one token")
            sequence = [*context, *continuation][: self.context]
            sequences.append(sequence)
            spans.append((len(context), len(sequence)))  # continuation tokens sit at [start, end)
        if not sequences:
            return []
        length = bucket_length(max(len(s) for s in sequences), self.context)
        rows = max(1, min(16, LOGITS_BYTES // (4 * length * self.vocab_size)))
        ids = np.zeros((-(-len(sequences) // rows) * rows, length), np.int32)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = sequence
        inputs, targets = ids[:, :-1], ids[:, 1:]  # position t predicts token t + 1
        log_probs = np.concatenate([
            np.asarray(self._score(self.params, inputs[i : i + rows], targets[i : i + rows]), np.float64)
            for i in range(0, len(ids), rows)
        ])  # (R, length - 1)
        return [log_probs[row, start - 1 : end - 1] for row, (start, end) in enumerate(spans)]
