"""Token-weighted loss and perplexity of a model on a prepared corpus split, overall and per artist.

The quantity of the training loop's evaluation (``jaxrap.train.hooks.evaluate_loss`` over
``EvalBatches``): every real token of the split counted exactly once, padding masked,
deterministic, data-parallel over every device. Here each token's cross-entropy comes back to
the host, so the same pass also gives each artist's share (the tokens of their songs). A
model trained by jaxrap is scored on the stream it was trained on: each song after its
end-of-song token and, when conditioned, its artist token (``SongPrompt.row_prefix``); the
artist token is a target like any other, as in training.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jaxrap.errors import JaxrapError
from jaxrap.load import LoadedModel
from jaxrap.model.loss import perplexity
from jaxrap.shape_rules import block_size_problem

if TYPE_CHECKING:
    from jaxrap.model.registry import LMConfig


@dataclasses.dataclass(frozen=True)
class ArtistLoss:
    loss: float  # mean cross-entropy over the tokens of the artist's songs, nats
    tokens: int
    songs: int

    @property
    def perplexity(self) -> float:
        return perplexity(self.loss)


@dataclasses.dataclass(frozen=True)
class SplitPerplexity:
    split: str
    loss: float  # mean cross-entropy per target token, nats
    tokens: int  # target tokens counted
    block_size: int  # context length the tokens were scored with
    per_artist: dict[str, ArtistLoss] = dataclasses.field(default_factory=dict)  # by the corpus' artist column

    @property
    def perplexity(self) -> float:
        return perplexity(self.loss)

    def as_dict(self) -> dict:
        record = {name: getattr(self, name) for name in ("split", "loss", "tokens", "block_size")}
        record["perplexity"] = self.perplexity
        record["per_artist"] = {
            artist: {**dataclasses.asdict(value), "perplexity": value.perplexity} for artist, value in self.per_artist.items()
        }
        return record


# A Hugging Face model's default block when its context is longer (Llama 3.2's is 131,072).
MAX_DEFAULT_BLOCK = 2048


def default_block_size(loaded: LoadedModel) -> int:
    """A training run's block size (so eval matches its training-time eval), else the context
    (at most MAX_DEFAULT_BLOCK)."""
    if loaded.run_config is not None:
        return loaded.run_config.data.block_size
    return min(loaded.config.n_positions, MAX_DEFAULT_BLOCK)


def check_block_size(config: LMConfig, block_size: int) -> None:
    """A JaxrapError unless ``block_size`` fits the model's context (``n_positions``: for a
    sliding-window model, the window)."""
    if block_size < 1 or block_size_problem(block_size, config.n_positions, "the model's context"):
        raise JaxrapError(
            f"block size must be in 1..{config.n_positions} (the model's context, {config.context_name}), got {block_size}"
        )


def split_perplexity(
    loaded: LoadedModel,
    corpus_dir: str | Path,
    split: str = "validation",
    *,
    block_size: int | None = None,
    per_device_batch_size: int = 8,
    dtype: str = "float32",
) -> SplitPerplexity:
    """Loss and perplexity of every token of ``split``, and of each artist's songs."""
    import jax
    import optax

    from jaxrap import sharding
    from jaxrap.config import MeshConfig
    from jaxrap.data.batches import EvalBatches, pack_blocks
    from jaxrap.data.corpus import load_corpus
    from jaxrap.data.tokens import tokenize_split
    from jaxrap.dispatch import DispatchWindow
    from jaxrap.model.lm import make_forward

    block_size = block_size or default_block_size(loaded)
    check_block_size(loaded.config, block_size)
    if per_device_batch_size < 1:
        raise JaxrapError(f"batch size must be a positive integer, got {per_device_batch_size}")
    song_prompt = loaded.song_prompt
    prefix = song_prompt.row_prefix if song_prompt is not None and song_prompt.conditioned else None
    tokens = tokenize_split(corpus_dir, split, loaded.tokenizer, song_prefix=prefix)
    blocks = pack_blocks(tokens, block_size)

    mesh = sharding.make_mesh(MeshConfig(), jax.local_devices())
    batch_sharding = sharding.batch_sharding(mesh)
    params_sharding = sharding.state_shardings(mesh, loaded.params)
    params = jax.device_put(loaded.params, params_sharding)
    forward = make_forward(loaded.config, dtype)

    def token_losses(params, batch):  # (B, T) cross-entropy of each target, 0 where masked
        logits = forward(params, batch["input_ids"], None)  # (B, T, V) float32
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"]) * batch["loss_mask"]

    losses_fn = jax.jit(token_losses, in_shardings=(params_sharding, batch_sharding), out_shardings=batch_sharding)
    batches = EvalBatches(blocks, per_device_batch_size * mesh.size)
    shape = (batches.global_batch_size, block_size)
    # Batch k holds blocks kG..kG+G-1 in order, and target j of block b is stream token
    # b*T + j, so the rows laid end to end are the split's tokens in order (then padding).
    pending, window = [], DispatchWindow()
    for local in batches:
        pending.append(losses_fn(params, sharding.put_batch(local, batch_sharding, shape)))
        window.admit(pending[-1])
    per_token = np.concatenate([np.asarray(rows, np.float64).reshape(-1) for rows in pending])[: blocks.num_targets]  # (N,)

    artists = load_corpus(corpus_dir)[split]["artist"]
    song_of_token = np.repeat(np.arange(tokens.num_songs), np.diff(tokens.offsets))  # (N,)
    per_artist = {}
    for artist in sorted(set(artists)):
        songs = np.array([a == artist for a in artists])
        mine = songs[song_of_token]
        per_artist[artist] = ArtistLoss(float(per_token[mine].mean()), int(mine.sum()), int(songs.sum()))
    return SplitPerplexity(split, float(per_token.mean()), len(per_token), block_size, per_artist)
