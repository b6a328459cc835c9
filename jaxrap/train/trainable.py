"""What a run trains, as the loop's ``Model``: every parameter (full fine-tuning), or LoRA's
adapters over a frozen base (``model.lora``).

``training_model`` is the one place that turns a run config and a model config into the loop's
model, for ``jaxrap train`` (``pipeline``) and for the memory plan (``memory_plan``) alike, so
that the plan measures the step that will run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxrap.config import RunConfig
from jaxrap.model import lm, lora
from jaxrap.model.partition import partition
from jaxrap.model.registry import LMConfig
from jaxrap.train.loop import Model

Params = dict[Any, Any]
LoadParams = Callable[[Any], Params]  # shardings (or None) -> the pretrained or random params


def training_model(
    config: RunConfig,
    model_config: LMConfig,
    load: LoadParams,
    *,
    new_ids: Sequence[int] = (),
    base_fingerprint: str | None = None,
) -> Model:
    """The loop's model for ``config``: ``load`` gives the network's params (a pretrained
    checkpoint, or a scratch model's init). With ``model.lora`` they are the frozen base (in
    ``model.base_dtype``) and the adapters train, with the rows of ``new_ids`` (the artist
    tokens the run added); every checkpoint then records the base (``model.init`` and
    ``base_fingerprint``, ``lora.checkpoint_fingerprint``) and the adapters' spec."""
    dtype, remat = config.model.dtype, config.train.remat == "block"
    flops = model_config.flops_per_token(config.data.block_size)
    if config.model.lora is None:
        return Model(
            forward=lm.make_forward(model_config, dtype, remat=remat),
            abstract_params=lm.abstract(model_config)[1],
            init_params=lambda shardings, frozen: load(shardings),
            flops_per_token=flops,
        )
    spec = lora_spec(config, model_config, new_ids)
    trainable, frozen = partition(lora.abstract(model_config, spec)[1], lora.is_trainable)
    base_dtype = jnp.dtype(config.model.base_dtype)
    seed = config.train.seed
    adapter_params = sum(leaf.size for leaf in jax.tree.leaves(trainable))
    return Model(
        forward=lora.make_forward(model_config, spec, dtype, remat=remat),
        abstract_params=trainable,
        init_params=lambda shardings, frozen: lora.init_trainable(model_config, spec, frozen, seed=seed, shardings=shardings),
        # The frozen kernels get no weight gradient: a third of the matmul FLOPs
        # (flops_per_token(0) is 6 x the matmul parameters) are never done; the adapters' are.
        flops_per_token=flops - model_config.flops_per_token(0) / 3 + 6 * adapter_params,
        abstract_frozen=jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, base_dtype), frozen),
        load_frozen=load,
        record={"lora": {"base": config.model.init, "base_fingerprint": base_fingerprint, **spec.record(model_config)}},
    )


def lora_spec(config: RunConfig, model_config: LMConfig, new_ids: Sequence[int] = ()) -> lora.LoraSpec:
    """The adapters ``model.lora`` asks for on ``model_config`` (JaxrapError for targets that
    match nothing, or a rank above a target's smaller side)."""
    settings = config.model.lora
    assert settings is not None  # callers check model.lora
    return lora.make_spec(
        model_config, rank=settings.rank, alpha=settings.alpha, dropout=settings.dropout, targets=settings.targets,
        new_ids=new_ids,
    )
