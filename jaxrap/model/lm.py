"""The one model interface: what training, sampling, evaluation and export call, whatever the
family (``jaxrap.model.registry`` maps a config's ``model_type`` to its network).

    graphdef, params = lm.build(config, seed=0)          # random init (float32 params)
    graphdef, shapes = lm.abstract(config, dtype=...)    # structure only, no weights allocated
    logits, cache = lm.forward(graphdef, params, ids, attention_mask=..., positions=..., cache=...)
    forward = lm.make_forward(config, "bfloat16")         # forward(params, ids, dropout_key) -> logits
    forward = lm.make_forward(config, remat=True)         # the same, each block rematerialised in the backward pass
    network = lm.merge(graphdef, params)                  # .hidden_states(...), .logits(hidden)
    cache = KVCache.empty(config, batch, slots, dtype)    # jaxrap.model.kv_cache: KV heads only

Every family's network takes the same call: token ids (B, T), an optional padding mask,
per-row position ids (B, T) (RoPE and learned positions both follow them: bar decoding and
guidance rows rely on that), an optional ``KVCache`` written from its ``index``, and a dropout
key; it returns float32 logits (B, T, V) and the updated cache. Built with ``remat=True``, each
block keeps only its input for the backward pass and recomputes the rest (``train.remat:
block``: activation memory of one block instead of all; decoding with a cache never does). Params are a plain nested dict
of arrays mirroring HF's module names (``jaxrap.model.hf_names``); graphdef is the hashable
static structure (shapes, compute dtype), closed over by jitted functions.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrap.model.hf_names import layout
from jaxrap.model.kv_cache import KVCache
from jaxrap.model.registry import MODULES, LMConfig

Params = dict[str, Any]  # nnx pure dict of arrays
Forward = Callable[[Params, jax.Array, jax.Array | None], jax.Array]


class Network(Protocol):
    """The module view every family's network gives (``merge``)."""

    def __call__(self, input_ids: jax.Array, **kwargs: Any) -> tuple[jax.Array, KVCache | None]: ...

    def hidden_states(self, input_ids: jax.Array, **kwargs: Any) -> tuple[jax.Array, KVCache | None]: ...

    def logits(self, hidden: jax.Array) -> jax.Array: ...


def network_class(config: LMConfig) -> type:
    """The NNX module class of ``config``'s family."""
    return importlib.import_module(f"jaxrap.model.{MODULES[config.model_type]}").NETWORK


def build(config: LMConfig, *, seed: int = 0, dtype: Any = jnp.float32) -> tuple[nnx.GraphDef, Params]:
    """A random-init network with transformers' init scheme: (graphdef, float32 params)."""
    model = network_class(config)(config, dtype=dtype, rngs=nnx.Rngs(seed))
    graphdef, state = nnx.split(model)
    return graphdef, nnx.to_pure_dict(state)


def abstract(config: LMConfig, *, dtype: Any = jnp.float32, remat: bool = False) -> tuple[nnx.GraphDef, Params]:
    """graphdef and a params tree of ShapeDtypeStructs, without allocating weights."""
    model = nnx.eval_shape(lambda: network_class(config)(config, dtype=dtype, remat=remat, rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(model)
    return graphdef, nnx.to_pure_dict(state)


def forward(graphdef: nnx.GraphDef, params: Params, input_ids: jax.Array, **kwargs: Any) -> tuple[jax.Array, KVCache | None]:
    """Pure form of the network's call: (logits (B, T, V), cache)."""
    return nnx.merge(graphdef, params)(input_ids, **kwargs)


def make_forward(config: LMConfig, dtype: str = "float32", *, remat: bool = False) -> Forward:
    """``forward(params, input_ids (B, T), dropout_key or None) -> logits (B, T, V)`` computing
    in ``dtype``: the model as training, scoring and evaluation see it (no cache)."""
    graphdef, _ = abstract(config, dtype=jnp.dtype(dtype), remat=remat)

    def logits(params: Params, input_ids: jax.Array, dropout_key: jax.Array | None) -> jax.Array:
        return forward(graphdef, params, input_ids, dropout_key=dropout_key)[0]

    return logits


def merge(graphdef: nnx.GraphDef, params: Params) -> Network:
    """The module view of (graphdef, params), for callers that need ``hidden_states``."""
    return nnx.merge(graphdef, params)


def head_kernel(config: LMConfig, params: Params) -> jax.Array:
    """The LM head as a (C, V) matrix: an untied head's own kernel, else the token embedding
    transposed. The networks' ``logits`` multiply by the transposed (V, C) embedding, which
    XLA:CPU copies at every call (154 MB for GPT-2 small, more than the matmul reads); decoding
    transposes it once."""
    if "lm_head" in params:
        return jnp.asarray(params["lm_head"]["kernel"])
    module, leaf = layout(config).token_embedding
    return jnp.asarray(params[module][leaf]).T.copy()
