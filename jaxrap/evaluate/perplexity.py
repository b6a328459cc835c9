"""Token-weighted loss and perplexity of a model on a prepared corpus split.

The same computation as the training loop's evaluation (``jaxrap.train.loop.evaluate_loss``
over ``EvalBatches``): every real token of the split counted exactly once, padding masked,
deterministic, data-parallel over every device.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from jaxrap.errors import JaxrapError
from jaxrap.load import LoadedModel


@dataclasses.dataclass(frozen=True)
class SplitPerplexity:
    split: str
    loss: float  # mean cross-entropy per target token, nats
    tokens: int  # target tokens counted
    block_size: int  # context length the tokens were scored with

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.loss, 700.0))

    def as_dict(self) -> dict[str, float | int | str]:
        return {**dataclasses.asdict(self), "perplexity": self.perplexity}


def default_block_size(loaded: LoadedModel) -> int:
    """A training run's block size (so eval matches its training-time eval), else the context."""
    return loaded.run_config.data.block_size if loaded.run_config is not None else loaded.config.n_positions


def split_perplexity(
    loaded: LoadedModel,
    corpus_dir: str | Path,
    split: str = "validation",
    *,
    block_size: int | None = None,
    per_device_batch_size: int = 8,
    dtype: str = "float32",
) -> SplitPerplexity:
    import jax

    from jaxrap.config import MeshConfig
    from jaxrap.data.batches import EvalBatches, pack_blocks
    from jaxrap.data.tokens import tokenize_split
    from jaxrap.train import sharding
    from jaxrap.train.loop import evaluate_loss
    from jaxrap.train.pipeline import make_forward
    from jaxrap.train.step import jit_eval_step

    block_size = block_size or default_block_size(loaded)
    if not 1 <= block_size <= loaded.config.n_positions:
        raise JaxrapError(f"block size must be in 1..{loaded.config.n_positions} (the model's context), got {block_size}")
    if per_device_batch_size < 1:
        raise JaxrapError(f"batch size must be a positive integer, got {per_device_batch_size}")
    blocks = pack_blocks(tokenize_split(corpus_dir, split, loaded.tokenizer), block_size)

    mesh = sharding.make_mesh(MeshConfig())
    batch_sharding = sharding.batch_sharding(mesh)
    params_sharding = sharding.state_shardings(mesh, loaded.params)
    params = jax.device_put(loaded.params, params_sharding)
    eval_fn = jit_eval_step(make_forward(loaded.config, dtype), params_sharding, batch_sharding, sharding.replicated(mesh))
    batches = EvalBatches(
        blocks, per_device_batch_size * mesh.size,
        process_index=jax.process_index(), process_count=jax.process_count(),
    )
    loss, count = evaluate_loss(eval_fn, params, batches, batch_sharding)
    return SplitPerplexity(split=split, loss=loss, tokens=count, block_size=block_size)
