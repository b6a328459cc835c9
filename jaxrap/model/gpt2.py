"""GPT-2 in Flax NNX, numerically the same network as transformers' GPT2LMHeadModel.

Why NNX: it is Flax's current API, modules are plain Python objects whose attribute names
mirror Hugging Face's (``h.3.attn.c_attn.kernel`` is ``transformer.h.3.attn.c_attn.weight``),
which keeps checkpoint I/O a name mapping, and ``nnx.split`` / ``nnx.merge`` give the pure
functional form that ``jax.jit``, ``optax`` and Orbax want. Outside this file the model is the
family-blind interface of ``jaxrap.model.lm`` (``forward(graphdef, params, ...)``: params is a
plain nested dict of arrays, graphdef is the static structure). No sharding annotations live
here: the trainer decides placement.

Shapes: B batch, T new tokens, S key/value slots (cache length, or T without a cache),
H heads, D head dim, C = n_embd, V vocab, L layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrap.model.attention import (
    attention_allowed,
    attention_within,
    cached_attention,
    fused_causal_attention,
    fused_implementation,
)
from jaxrap.model.config import ACTIVATIONS, GPT2Config
from jaxrap.model.kv_cache import KVCache
from jaxrap.model.remat import rematerialised
from jaxrap.model.xla_cpu import gradient_boundary, on_rows

Params = dict[str, Any]  # nnx pure dict: {"wte": {"embedding": ...}, "h": {0: {...}}, ...}

# The functions jaxrap.model.config.ACTIVATIONS names.
_FUNCTIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "gelu_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "relu": jax.nn.relu,
}


def _linear(d_in: int, d_out: int, std: float, dtype: Any, rngs: nnx.Rngs) -> nnx.Linear:
    # HF's Conv1D stores weight as (in, out), exactly nnx.Linear's kernel layout.
    return nnx.Linear(
        d_in, d_out, dtype=dtype, kernel_init=nnx.initializers.normal(std), rngs=rngs
    )


def _layer_norm(config: GPT2Config, rngs: nnx.Rngs) -> nnx.LayerNorm:
    # Statistics in float32 whatever the compute dtype; output stays float32 (the residual
    # stream's dtype) and each Linear casts to the compute dtype itself.
    return nnx.LayerNorm(
        config.n_embd, epsilon=config.layer_norm_epsilon, use_fast_variance=False, rngs=rngs
    )


class Attention(nnx.Module):
    def __init__(self, config: GPT2Config, layer_idx: int, *, dtype: Any, rngs: nnx.Rngs):
        std, proj_std = config.initializer_range, config.initializer_range / math.sqrt(2 * config.n_layer)
        self.c_attn = _linear(config.n_embd, 3 * config.n_embd, std, dtype, rngs)
        self.c_proj = _linear(config.n_embd, config.n_embd, proj_std, dtype, rngs)
        self.attn_dropout = nnx.Dropout(config.attn_pdrop)
        self.resid_dropout = nnx.Dropout(config.resid_pdrop)
        self.n_head = config.n_head
        self.scale = (config.head_dim**-0.5 if config.scale_attn_weights else 1.0) / (
            layer_idx + 1 if config.scale_attn_by_inverse_layer_idx else 1
        )

    def __call__(
        self,
        x: jax.Array,  # (B, T, C)
        allowed: jax.Array,  # (B, 1, T, S) bool
        kv: tuple[jax.Array, jax.Array] | None,  # cached keys (B*H, D, S) and values (B*H, S, D), KVCache's layout
        index: jax.Array,  # () slot of x's first token in the cache
        dropout_key: jax.Array | None,
        causal_only: bool = False,  # allowed is plain causal attention (no cache, no padding)
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array] | None]:
        B, T, C = x.shape
        H, D = self.n_head, C // self.n_head
        q, k, v = (t.reshape(B, T, H, D) for t in jnp.split(on_rows(self.c_attn, x), 3, axis=-1))  # 3 x (B, T, H, D)
        implementation = fused_implementation(v.dtype, D)
        dropping = dropout_key is not None and self.attn_dropout.rate > 0.0
        if kv is None and causal_only and not dropping and implementation is not None:  # training on a GPU
            y = fused_causal_attention(q, k, v, self.scale, implementation)  # (B, T, H, D)
        elif kv is None:  # training and scoring: attend within x
            y = attention_within(
                q, k, v, None if causal_only else allowed, dropout_key,
                lambda scores, block_allowed, key: self._attention_probs(scores, block_allowed, v.dtype, key),
            )  # (B, T, H, D)
        else:  # decoding: write x's keys and values at index, attend over the cache (KVCache's layout)
            cache_dtype = kv[1].dtype
            y, kv = cached_attention(
                q, k, v, kv, index, lambda scores: self._attention_probs(scores, allowed, cache_dtype, dropout_key)
            )  # (B, T, H, D)
        y = self._dropout(self.resid_dropout, on_rows(self.c_proj, y.reshape(B, T, C)), dropout_key, 1)
        return y, kv

    def _attention_probs(self, scores: jax.Array, allowed: jax.Array, dtype: Any, dropout_key: jax.Array | None) -> jax.Array:
        """Raw scores (B, H, T, S) -> softmax over the allowed slots (in float32, then ``dtype``), with dropout."""
        scores = jnp.where(allowed, scores.astype(jnp.float32) * self.scale, jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(scores, axis=-1).astype(dtype)
        return self._dropout(self.attn_dropout, probs, dropout_key, 0)

    @staticmethod
    def _dropout(layer: nnx.Dropout, x: jax.Array, key: jax.Array | None, site: int) -> jax.Array:
        if key is None or layer.rate == 0.0:
            return x
        return layer(x, deterministic=False, rngs=jax.random.fold_in(key, site))


class MLP(nnx.Module):
    def __init__(self, config: GPT2Config, *, dtype: Any, rngs: nnx.Rngs):
        std, proj_std = config.initializer_range, config.initializer_range / math.sqrt(2 * config.n_layer)
        self.c_fc = _linear(config.n_embd, config.inner_dim, std, dtype, rngs)
        self.c_proj = _linear(config.inner_dim, config.n_embd, proj_std, dtype, rngs)
        self.dropout = nnx.Dropout(config.resid_pdrop)
        self.activation = ACTIVATIONS[config.activation_function]

    def __call__(self, x: jax.Array, dropout_key: jax.Array | None) -> jax.Array:
        y = on_rows(lambda rows: self.c_proj(_FUNCTIONS[self.activation](self.c_fc(rows))), x)  # (B*T, inner) inside
        return Attention._dropout(self.dropout, y, dropout_key, 2)


class Block(nnx.Module):
    def __init__(self, config: GPT2Config, layer_idx: int, *, dtype: Any, rngs: nnx.Rngs):
        self.ln_1 = _layer_norm(config, rngs)
        self.attn = Attention(config, layer_idx, dtype=dtype, rngs=rngs)
        self.ln_2 = _layer_norm(config, rngs)
        self.mlp = MLP(config, dtype=dtype, rngs=rngs)

    def __call__(self, x, allowed, kv, index, dropout_key, causal_only=False):
        attn_out, kv = self.attn(self.ln_1(x), allowed, kv, index, dropout_key, causal_only)
        x = x + attn_out  # pre-LayerNorm residual: x + f(LN(x))
        x = x + self.mlp(self.ln_2(x), dropout_key)
        return x, kv


class GPT2(nnx.Module):
    """GPT2LMHeadModel: token + learned position embeddings, pre-LN blocks, an LM head tied to
    the token embedding, or its own ``lm_head`` kernel (C, V) when the config unties them."""

    def __init__(self, config: GPT2Config, *, dtype: Any = jnp.float32, remat: bool = False, rngs: nnx.Rngs):
        init = nnx.initializers.normal(config.initializer_range)
        self.remat = remat
        self.wte = nnx.Embed(config.vocab_size, config.n_embd, dtype=dtype, embedding_init=init, rngs=rngs)
        self.wpe = nnx.Embed(config.n_positions, config.n_embd, dtype=dtype, embedding_init=init, rngs=rngs)
        self.drop = nnx.Dropout(config.embd_pdrop)
        self.h = nnx.List([Block(config, i, dtype=dtype, rngs=rngs) for i in range(config.n_layer)])
        self.ln_f = _layer_norm(config, rngs)
        self.lm_head = None if config.tie_word_embeddings else nnx.Linear(
            config.n_embd, config.vocab_size, use_bias=False, dtype=dtype, kernel_init=init, rngs=rngs
        )

    def __call__(
        self,
        input_ids: jax.Array,  # (B, T) int
        *,
        attention_mask: jax.Array | None = None,  # (B, T): 1 for real tokens, 0 for padding
        positions: jax.Array | None = None,  # (B, T) int; default: slot index (0.. without cache)
        cache: KVCache | None = None,
        dropout_key: jax.Array | None = None,  # None: deterministic (eval, sampling)
    ) -> tuple[jax.Array, KVCache | None]:
        """Logits (B, T, V) in float32, and the updated cache when one was given."""
        hidden, cache = self.hidden_states(
            input_ids,
            attention_mask=attention_mask,
            positions=positions,
            cache=cache,
            dropout_key=dropout_key,
        )
        return self.logits(hidden), cache

    def hidden_states(
        self, input_ids, *, attention_mask=None, positions=None, cache=None, dropout_key=None
    ) -> tuple[jax.Array, KVCache | None]:
        """Final-LayerNorm hidden states (B, T, C): callers that need only some positions'
        logits (the sampler wants the last one) apply ``logits`` to those alone."""
        allowed, key_valid, index, positions = attention_allowed(attention_mask, positions, cache, input_ids.shape)
        causal_only = cache is None and attention_mask is None
        x = self.wte(input_ids) + self.wpe(positions)  # (B, T, C)
        x = Attention._dropout(self.drop, x, dropout_key, 3)
        keys, values = [], []
        for i, block in enumerate(self.h):
            kv = None if cache is None else (cache.keys[i], cache.values[i])
            layer_key = None if dropout_key is None else jax.random.fold_in(dropout_key, 16 + i)
            call = rematerialised(block) if self.remat and cache is None else block  # lm's remat
            x, kv = call(gradient_boundary(x), allowed, kv, index, layer_key, causal_only)  # boundary: see xla_cpu
            if kv is not None:
                keys.append(kv[0])
                values.append(kv[1])
        if cache is not None:
            cache = KVCache(keys=tuple(keys), values=tuple(values), mask=key_valid, index=index + input_ids.shape[1])
        return self.ln_f(x), cache

    def logits(self, hidden: jax.Array) -> jax.Array:
        """LM head: hidden (..., C) @ wte^T (tied) or @ lm_head kernel -> logits (..., V), float32."""
        return on_rows(self.wte.attend if self.lm_head is None else self.lm_head, hidden).astype(jnp.float32)


NETWORK = GPT2

# GPT-2's functional form is the model interface's (jaxrap.model.lm), also reachable here.
from jaxrap.model.lm import abstract, build, forward, make_forward, merge  # noqa: E402, F401
