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
logits before any training; fine-tuning then moves the rows apart. An untied LM head grows
its columns the same way, so a new token's logit there too starts at the average logit
(the same argument holds for a Llama-style model's embedding and head).

Host numpy only: runs once, before the params go to the devices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from jaxrap.model.registry import LMConfig

NOISE_SCALE = 1e-2  # noise std as a fraction of each dimension's std over the existing rows


def grow_token_embeddings(
    params: dict[str, Any], vocab_size: int, new_ids: Sequence[int], *, seed: int, embedding: tuple[str, str] = ("wte", "embedding")
) -> dict[str, Any]:
    """``params`` with the token embedding at path ``embedding`` (GPT-2's ``wte``; see
    ``hf_names.CheckpointLayout.token_embedding``) grown to ``vocab_size`` rows; rows ``new_ids``
    (and any row past the old end) set to the mean of the other rows plus noise. An untied
    ``lm_head`` kernel (C, V0) grows its columns alike. Other leaves are shared."""
    module, leaf = embedding
    grown = {**params, module: {**params[module], leaf: grow_rows(params[module][leaf], vocab_size, new_ids, seed=seed)}}
    if "lm_head" in params:
        head = grow_rows(np.asarray(params["lm_head"]["kernel"]).T, vocab_size, new_ids, seed=seed, draw=1)
        grown["lm_head"] = {**params["lm_head"], "kernel": head.T.copy()}
    return grown


def grow_rows(matrix: Any, vocab_size: int, new_ids: Sequence[int], *, seed: int, draw: int = 0) -> np.ndarray:
    """(V0, C) -> (V, C) float32: the old rows, then the fresh ones (``new_ids`` and every row
    from V0) as the mean kept row plus noise. The noise is the ``draw``-th draw of the seed's
    generator (the embedding 0, an untied head 1), so each matrix can be grown on its own, as
    the loader reads it."""
    matrix = np.asarray(matrix, np.float32)
    old_size, width = matrix.shape
    if vocab_size < old_size:
        raise ValueError(f"cannot shrink the embedding from {old_size} to {vocab_size} rows")
    fresh = np.zeros(vocab_size, bool)
    fresh[list(new_ids)] = True
    fresh[old_size:] = True
    rng = np.random.default_rng(seed)
    for _ in range(draw):
        rng.standard_normal((int(fresh.sum()), width))
    kept = matrix[~fresh[:old_size]]  # (V_kept, C)
    grown = np.zeros((vocab_size, width), np.float32)
    grown[:old_size] = matrix
    noise = rng.standard_normal((int(fresh.sum()), width)) * (NOISE_SCALE * kept.std(axis=0))
    grown[fresh] = kept.mean(axis=0) + noise
    return grown


def grow_as_loaded(config: LMConfig, new_ids: Sequence[int], *, seed: int) -> Callable[[tuple, np.ndarray], np.ndarray]:
    """The loader's ``adapt`` (``jaxrap.model.hf.load_pretrained``) that grows a pretrained
    (V0, C) embedding and untied (C, V0) head to ``config.vocab_size`` as ``grow_token_embeddings``
    would, each as it is read: the embedding is the seed's first draw, the head its second."""
    from jaxrap.model.hf_names import layout

    embedding = layout(config).token_embedding

    def adapt(path: tuple, array: np.ndarray) -> np.ndarray:
        if path == embedding:
            return grow_rows(array, config.vocab_size, new_ids, seed=seed)
        if path == ("lm_head", "kernel"):
            return grow_rows(array.T, config.vocab_size, new_ids, seed=seed, draw=1).T
        return array

    return adapt
