"""A Llama-style decoder in Flax NNX: numerically transformers' LlamaForCausalLM, and with
``LlamaConfig``'s flags its Mistral, Qwen2 and Qwen3 classes.

The block: pre-RMSNorm (``rms_norm_eps``), grouped-query attention with an explicit head
width (K key/value heads serve H query heads, H / K each), HF's non-interleaved RoPE (the two
halves of each head rotate together, ``rotate_half``) with θ and a ``linear`` or ``llama3``
frequency scaling, optional q/k/v(/o) biases, optional RMSNorm over each head's queries and
keys (Qwen3), and a SwiGLU MLP ``down(silu(gate(x)) * up(x))``. Module names mirror HF's
(``layers.3.self_attn.q_proj.kernel`` is ``model.layers.3.self_attn.q_proj.weight``, stored
transposed), so checkpoint I/O is a name map and a transpose of every kernel (``hf_names``).

Precision: the residual stream, norms, RoPE angles and softmax are float32; the matmuls run
in the compute dtype (``dtype``), over float32 master weights. Plain causal attention without a
cache goes through ``jax.nn.dot_product_attention`` on a GPU in bfloat16 (cuDNN's fused
kernel), through explicit einsums and a float32 softmax
elsewhere: ``jaxrap.model.attention``); with a cache, through ``attention.cached_attention``,
laid out for decoding.

Shapes: B batch, T new tokens, S key/value slots, H query heads, K key/value heads, D head
dim, C hidden size, F intermediate size, V vocab, L layers.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxrap.model.attention import (
    attention_allowed,
    attention_within,
    cached_attention,
    fused_causal_attention,
    fused_implementation,
)
from jaxrap.model.kv_cache import KVCache
from jaxrap.model.llama_config import LlamaConfig
from jaxrap.model.remat import rematerialised
from jaxrap.model.xla_cpu import gradient_boundary, on_rows

Params = dict[str, Any]  # nnx pure dict: {"embed_tokens": {"embedding": ...}, "layers": {0: {...}}, ...}


def rope_frequencies(config: LlamaConfig) -> np.ndarray:
    """(D / 2,) float32 inverse frequencies, scaled as ``rope_scaling`` says (transformers'
    ``ROPE_INIT_FUNCTIONS``: ``linear`` divides all by the factor; ``llama3`` divides those
    with a wavelength past ``original / low_freq_factor`` by it, keeps those under
    ``original / high_freq_factor`` and blends the band between)."""
    D = config.dim_per_head
    inv_freq = 1.0 / (np.float32(config.rope_theta) ** (np.arange(0, D, 2, dtype=np.float32) / np.float32(D)))
    scaling = config.rope_scaling
    if scaling is None:
        return inv_freq.astype(np.float32)
    if scaling.rope_type == "linear":
        return (inv_freq / np.float32(scaling.factor)).astype(np.float32)
    assert scaling.low_freq_factor is not None and scaling.high_freq_factor is not None  # llama3 has them (read_rope)
    assert scaling.original_max_position_embeddings is not None
    original, low, high = scaling.original_max_position_embeddings, scaling.low_freq_factor, scaling.high_freq_factor
    wavelength = 2 * math.pi / inv_freq
    scaled = np.where(wavelength > original / low, inv_freq / scaling.factor, inv_freq)
    smooth = (original / wavelength - low) / (high - low)
    blended = (1 - smooth) * scaled / scaling.factor + smooth * scaled
    medium = (wavelength >= original / high) & (wavelength <= original / low)
    return np.where(medium, blended, scaled).astype(np.float32)


def rope_table(inv_freq: tuple[float, ...], length: int) -> tuple[jax.Array, jax.Array]:
    """cos, sin (1, length, D/2) of positions 0..length-1, computed on the host when traced:
    constants XLA reads. Angles computed in the graph from an iota get their cosines and sines
    recomputed inside each fused RoPE, forward and backward (on XLA:CPU, most of RoPE's time)."""
    angles = np.arange(length, dtype=np.float32)[:, None] * np.asarray(inv_freq, np.float32)  # (T, D/2), as in the graph
    return jnp.asarray(np.cos(angles))[None], jnp.asarray(np.sin(angles))[None]


def apply_rope(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """Rotate (B, T, N, D) by angles (B or 1, T, D/2): dimension i pairs with i + D/2 (HF's
    ``rotate_half``, not interleaved pairs). float32 in, float32 out."""
    first, second = jnp.split(x, 2, axis=-1)  # 2 x (B, T, N, D/2)
    cos, sin = cos[:, :, None], sin[:, :, None]  # (B, T, 1, D/2)
    return jnp.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)


class RMSNorm(nnx.Module):
    """HF's LlamaRMSNorm: x / sqrt(mean(x^2) + eps) in float32, times a learned scale."""

    def __init__(self, dim: int, eps: float):
        self.scale = nnx.Param(jnp.ones((dim,), jnp.float32))
        self.eps = eps

    def __call__(self, x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + self.eps)
        return self.scale[...] * normed.astype(x.dtype)


def _linear(d_in: int, d_out: int, bias: bool, config: LlamaConfig, dtype: Any, rngs: nnx.Rngs) -> nnx.Linear:
    return nnx.Linear(
        d_in, d_out, use_bias=bias, dtype=dtype, kernel_init=nnx.initializers.normal(config.initializer_range), rngs=rngs
    )


class Attention(nnx.Module):
    def __init__(self, config: LlamaConfig, *, dtype: Any, rngs: nnx.Rngs):
        C, H, K, D = config.hidden_size, config.num_attention_heads, config.kv_heads, config.dim_per_head
        self.q_proj = _linear(C, H * D, config.qkv_bias, config, dtype, rngs)
        self.k_proj = _linear(C, K * D, config.qkv_bias, config, dtype, rngs)
        self.v_proj = _linear(C, K * D, config.qkv_bias, config, dtype, rngs)
        self.o_proj = _linear(H * D, C, config.o_bias, config, dtype, rngs)
        if config.variant.qk_norm:
            self.q_norm = RMSNorm(D, config.rms_norm_eps)
            self.k_norm = RMSNorm(D, config.rms_norm_eps)
        self.qk_norm = config.variant.qk_norm
        self.dropout = nnx.Dropout(config.attention_dropout)
        self.heads, self.kv_heads, self.head_dim, self.dtype = H, K, D, dtype

    def __call__(
        self,
        x: jax.Array,  # (B, T, C) float32
        rope: tuple[jax.Array, jax.Array],  # cos, sin (B or 1, T, D/2) of each token's position
        allowed: jax.Array | None,  # (B, 1, T, S) bool; None: causal within x, no padding
        kv: tuple[jax.Array, jax.Array] | None,  # cached keys (B*K, D, S) and values (B*K, S, D), KVCache's layout
        index: jax.Array,  # () slot of x's first token in the cache
        dropout_key: jax.Array | None,
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array] | None]:
        B, T, _ = x.shape
        H, K, D = self.heads, self.kv_heads, self.head_dim
        q = on_rows(self.q_proj, x).reshape(B, T, H, D)
        k = on_rows(self.k_proj, x).reshape(B, T, K, D)
        v = on_rows(self.v_proj, x).reshape(B, T, K, D)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q = apply_rope(q.astype(jnp.float32), *rope).astype(v.dtype)  # (B, T, H, D)
        k = apply_rope(k.astype(jnp.float32), *rope).astype(v.dtype)  # (B, T, K, D)
        scale = D**-0.5
        dropping = dropout_key is not None and self.dropout.rate > 0.0
        implementation = fused_implementation(v.dtype, D)

        def probs(scores: jax.Array, allowed: jax.Array, key: jax.Array | None, dtype: Any) -> jax.Array:
            """Raw scores (B, H, T, S) -> softmax over the allowed slots, in float32, then dtype."""
            scores = jnp.where(allowed, scores.astype(jnp.float32) * scale, jnp.finfo(jnp.float32).min)
            weights = jax.nn.softmax(scores, axis=-1).astype(dtype)
            if not dropping:
                return weights
            return self.dropout(weights, deterministic=False, rngs=key)

        if kv is None and allowed is None and not dropping and implementation is not None:  # training on a GPU
            y = fused_causal_attention(q, k, v, scale, implementation)  # (B, T, H, D)
        elif kv is None:  # training and scoring: attend within x
            y = attention_within(q, k, v, allowed, dropout_key, lambda s, a, key: probs(s, a, key, v.dtype))
        else:  # decoding: write the keys and values at index, attend over the cache (in the cache's dtype)
            assert allowed is not None  # with a cache, the model passes the cache's mask
            cache_allowed, cache_dtype = allowed, kv[1].dtype
            y, kv = cached_attention(q, k, v, kv, index, lambda s: probs(s, cache_allowed, dropout_key, cache_dtype))
        return on_rows(self.o_proj, y.reshape(B, T, H * D)), kv


@jax.custom_vjp
def swiglu(gate: jax.Array, up: jax.Array) -> jax.Array:
    """silu(gate) * up, with its gradient written out: one fused pass each way that keeps only
    gate and up (autodiff also keeps sigmoid(gate) and silu(gate); on XLA:CPU the written-out
    gradient made the MLP's forward and backward a fifth faster, the llama-tiny step 3%)."""
    return jax.nn.silu(gate) * up


def _swiglu_forward(gate: jax.Array, up: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    return swiglu(gate, up), (gate, up)


def _swiglu_backward(residuals: tuple[jax.Array, jax.Array], grad: jax.Array) -> tuple[jax.Array, jax.Array]:
    gate, up = residuals
    sigmoid = jax.nn.sigmoid(gate)
    # d silu(g) / dg = sigmoid(g) * (1 + g * (1 - sigmoid(g)))
    return grad * up * sigmoid * (1 + gate * (1 - sigmoid)), grad * gate * sigmoid


swiglu.defvjp(_swiglu_forward, _swiglu_backward)


class MLP(nnx.Module):
    def __init__(self, config: LlamaConfig, *, dtype: Any, rngs: nnx.Rngs):
        C, F = config.hidden_size, config.intermediate_size
        self.gate_proj = _linear(C, F, config.mlp_bias, config, dtype, rngs)
        self.up_proj = _linear(C, F, config.mlp_bias, config, dtype, rngs)
        self.down_proj = _linear(F, C, config.mlp_bias, config, dtype, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return on_rows(lambda rows: self.down_proj(swiglu(self.gate_proj(rows), self.up_proj(rows))), x)  # (B*T, F) inside


class Block(nnx.Module):
    def __init__(self, config: LlamaConfig, *, dtype: Any, rngs: nnx.Rngs):
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Attention(config, dtype=dtype, rngs=rngs)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = MLP(config, dtype=dtype, rngs=rngs)

    def __call__(self, x, rope, allowed, kv, index, dropout_key):
        attn_out, kv = self.self_attn(self.input_layernorm(x), rope, allowed, kv, index, dropout_key)
        x = x + attn_out.astype(jnp.float32)  # pre-norm residual: x + f(RMSNorm(x)), kept in float32
        x = x + self.mlp(self.post_attention_layernorm(x)).astype(jnp.float32)
        return x, kv


class Llama(nnx.Module):
    """LlamaForCausalLM (and its Mistral / Qwen2 / Qwen3 variants): token embedding, L blocks,
    a final RMSNorm, and an LM head tied to the embedding or its own ``lm_head`` kernel (C, V)."""

    def __init__(self, config: LlamaConfig, *, dtype: Any = jnp.float32, remat: bool = False, rngs: nnx.Rngs):
        init = nnx.initializers.normal(config.initializer_range)
        self.remat = remat
        self.embed_tokens = nnx.Embed(config.vocab_size, config.hidden_size, dtype=dtype, embedding_init=init, rngs=rngs)
        self.layers = nnx.List([Block(config, dtype=dtype, rngs=rngs) for _ in range(config.num_hidden_layers)])
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = None if config.tie_word_embeddings else nnx.Linear(
            config.hidden_size, config.vocab_size, use_bias=False, dtype=dtype, kernel_init=init, rngs=rngs
        )
        # RoPE's (D/2,) inverse frequencies: a constant of the structure (graphdef), not a parameter.
        self.inv_freq = tuple(float(f) for f in rope_frequencies(config))

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
            input_ids, attention_mask=attention_mask, positions=positions, cache=cache, dropout_key=dropout_key
        )
        return self.logits(hidden), cache

    def hidden_states(
        self, input_ids, *, attention_mask=None, positions=None, cache=None, dropout_key=None
    ) -> tuple[jax.Array, KVCache | None]:
        """Final-RMSNorm hidden states (B, T, C): callers that need only some positions'
        logits (the sampler wants the last one) apply ``logits`` to those alone. RoPE turns by
        each row's own ``positions``."""
        slots = positions is None and cache is None  # positions 0..T-1 in every row (training, scoring)
        allowed, key_valid, index, positions = attention_allowed(attention_mask, positions, cache, input_ids.shape)
        causal_only = cache is None and attention_mask is None  # plain causal: the fused kernel's case
        if slots:
            rope = rope_table(self.inv_freq, input_ids.shape[1])  # (1, T, D/2) constants
        else:
            angles = positions[..., None].astype(jnp.float32) * jnp.asarray(self.inv_freq, jnp.float32)  # (B, T, D/2)
            rope = (jnp.cos(angles), jnp.sin(angles))
        x = self.embed_tokens(input_ids).astype(jnp.float32)  # (B, T, C)
        keys, values = [], []
        for i, block in enumerate(self.layers):
            kv = None if cache is None else (cache.keys[i], cache.values[i])
            layer_key = None if dropout_key is None else jax.random.fold_in(dropout_key, 16 + i)
            call = rematerialised(block) if self.remat and cache is None else block  # lm's remat
            x, kv = call(gradient_boundary(x), rope, None if causal_only else allowed, kv, index, layer_key)
            if kv is not None:
                keys.append(kv[0])
                values.append(kv[1])
        if cache is not None:
            cache = KVCache(keys=tuple(keys), values=tuple(values), mask=key_valid, index=index + input_ids.shape[1])
        return self.norm(x), cache

    def logits(self, hidden: jax.Array) -> jax.Array:
        """LM head: hidden (..., C) @ embedding^T (tied) or @ lm_head kernel -> logits (..., V), float32."""
        return on_rows(self.embed_tokens.attend if self.lm_head is None else self.lm_head, hidden).astype(jnp.float32)


NETWORK = Llama
