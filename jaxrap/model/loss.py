"""The language-model loss in the units jaxrap reports: mean cross-entropy in nats per token,
and its perplexity. Pure Python: training, evaluation and the CLI share it."""

from __future__ import annotations

import math

MAX_EXPONENT = 700.0  # math.exp overflows a float past ~709


def perplexity(loss: float) -> float:
    """exp(loss), capped so that a diverged loss gives a huge number, not an OverflowError."""
    return math.exp(min(loss, MAX_EXPONENT))
