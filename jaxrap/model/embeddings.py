"""Growing a pretrained model's token embedding for tokens added to its tokenizer.

New rows are the mean of the existing rows plus a little Gaussian noise (1% of each
dimension's spread). Why the mean (Hewitt, "Initializing New Word Embeddings for Pretrained
Language Models", 2021; transformers' ``resize_token_embeddings`` does the same by default):
GPT-2's LM head is the embedding itself, so a new token's logit is ``h . e_new``. With
``e_new`` the mean row, that logit is the average of the old logits at every position, so
the new tokens start out unlikely and the pretrained distribution over the old tokens barely
moves (a random row, or the mean of the artist name's subword rows, can take a large logit
where the name's pieces are likely and make the model emit control tokens mid-song). The
noise makes each artist's row distinct from the start, so the artist token changes the
logits before any training; fine-tuning then moves the rows apart.

Host numpy only: runs once, before the params go to the devices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

NOISE_SCALE = 1e-2  # noise std as a fraction of each dimension's std over the existing rows


def grow_token_embeddings(params: dict[str, Any], vocab_size: int, new_ids: Sequence[int], *, seed: int) -> dict[str, Any]:
    """``params`` with ``wte`` grown to ``vocab_size`` rows; rows ``new_ids`` (and any row past
    the old end) set to the mean of the other rows plus noise. Other leaves are shared."""
    wte = np.asarray(params["wte"]["embedding"], np.float32)  # (V0, C)
    old_size, width = wte.shape
    if vocab_size < old_size:
        raise ValueError(f"cannot shrink the embedding from {old_size} to {vocab_size} rows")
    fresh = np.zeros(vocab_size, bool)
    fresh[list(new_ids)] = True
    fresh[old_size:] = True
    kept = wte[~fresh[:old_size]]  # (V_kept, C)
    rng = np.random.default_rng(seed)
    grown = np.zeros((vocab_size, width), np.float32)
    grown[:old_size] = wte
    noise = rng.standard_normal((int(fresh.sum()), width)) * (NOISE_SCALE * kept.std(axis=0))
    grown[fresh] = kept.mean(axis=0) + noise
    return {**params, "wte": {**params["wte"], "embedding": grown}}
