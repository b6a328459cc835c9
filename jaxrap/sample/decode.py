"""Jitted decoding: one prefill pass over the prompt, then chunks of tokens from a KV cache.

Shapes never depend on what a user can change between calls, so nothing recompiles:

- the KV cache and the token history have one slot per position of the context
  (``DecodeModel.context``: ``n_positions``, at most ``MAX_CONTEXT``), S of them, whatever
  ``max_new_tokens`` is;
- the prompt is padded on the right to a bucket (16, 32, 64, ... capped at S): one prefill
  program per bucket. Right padding, not left: every row holds the same prompt, so its tokens
  sit in slots 0..n-1 and decoding continues at slot n, and a prompt of n tokens leaves
  exactly S - n slots to generate into. Pad slots are masked out and later overwritten;
- every sampling setting, the seed and the number of steps per chunk are traced; only the
  batch size (``num_samples``) is static, and whether guidance is on (``jaxrap.sample.guidance``:
  a second prompt row, the unconditioned one, doubles the model's batch; its weight is traced).

``prefill`` caches the prompt and returns the logits of the token after it; ``first_token``
samples from them (the time to first token is one prompt pass, not a decode step more);
``decode_chunk`` runs a ``lax.while_loop`` of up to ``steps`` decode steps, each feeding the
newest token through the model's own cache path (the network's ``hidden_states`` with a
``KVCache``, laid out for this loop; any family, ``jaxrap.model.lm``) and sampling the next, and returns the carried state (donated, so
the cache is updated in place) with the chunk's tokens, so the host streams text while the
next chunk computes. Randomness: step t uses ``fold_in(key(seed), t)``, so tokens do not depend on
chunk lengths, the process or the machine's load.

Shapes: B samples, G model rows per sample (1, or 2 with guidance), P prompt bucket, S cache
slots (the context), V vocab, K MAX_CHUNK.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Generator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct

from jaxrap.data.batches import bucket_length
from jaxrap.errors import JaxrapError
from jaxrap.model import lm
from jaxrap.model.kv_cache import KVCache
from jaxrap.model.registry import LMConfig
from jaxrap.sample.guidance import guide, model_rows
from jaxrap.sample.processors import SamplingArrays, TokenHistory, process_logits, sample_tokens

SMALLEST_BUCKET = 16
CHUNK = 8  # tokens per jitted call after the first: a host round trip per chunk, not per token
MAX_CHUNK = 16  # static size of a chunk's token buffer; the steps per call are traced
NO_TOKEN = -1  # in a chunk's tokens: the row had already finished
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# The longest context the sampler decodes in (KV cache and history slots). Models made for long
# contexts (Llama 3.2: 131,072 positions) would otherwise allocate gigabytes of cache per row
# for lyrics that use a few hundred tokens.
MAX_CONTEXT = 4096


@struct.dataclass
class DecodeState:
    cache: KVCache  # B*G rows; slots 0..length-2 filled (index = length - 1); the newest token is fed at the next step
    history: TokenHistory  # B rows: the conditioned prompt, then the sampled tokens
    done: jax.Array  # (B,) bool: the row sampled end-of-song or reached max_new_tokens

    @property
    def branches(self) -> int:
        """G: model rows per sample row (2 with guidance, see ``jaxrap.sample.guidance``)."""
        return self.cache.mask.shape[0] // self.done.shape[0]


def prompt_bucket(length: int, cache_length: int) -> int:
    """Padded prompt length: the smallest power of two >= length (at least 16), capped at S."""
    return bucket_length(length, cache_length, SMALLEST_BUCKET)


def context_length(config: LMConfig) -> int:
    """S: the slots of the sampler's cache and history, ``n_positions`` up to MAX_CONTEXT."""
    return min(config.n_positions, MAX_CONTEXT)


def lm_logits(hidden: jax.Array, head: jax.Array) -> jax.Array:
    """(B, C) final hidden states -> (B, V) float32 logits, as the networks' ``logits`` compute
    them, with the (C, V) head of ``lm.head_kernel``."""
    return (hidden.astype(head.dtype) @ head).astype(jnp.float32)


def _generate_one(state: DecodeState, logits: jax.Array, params: SamplingArrays) -> tuple[DecodeState, jax.Array]:
    """Process logits (B, V), sample, append: (new state, (B,) tokens, NO_TOKEN for finished rows)."""
    history = state.history
    key = jax.random.fold_in(jax.random.key(params.seed), history.num_generated[0])  # rows advance together
    token = sample_tokens(process_logits(logits, history, params), key, params)  # (B,)
    emitted = jnp.where(state.done, NO_TOKEN, token)
    history = history.append(jnp.where(state.done, 0, token), params)
    done = state.done | (token == params.eos_token_id) | (history.num_generated >= params.max_new_tokens)
    return DecodeState(state.cache, history, done), emitted


def prefill(
    graphdef: nnx.GraphDef,
    config: LMConfig,
    params: lm.Params,
    head: jax.Array,  # (C, V) lm.head_kernel(config, params)
    prompt: jax.Array,  # (G, P) int32, right-padded: the prompt, or its conditioned and unconditioned rows
    prompt_length: jax.Array,  # () int32, in 1..P
    sampling: SamplingArrays,
    *,
    num_samples: int,
) -> tuple[DecodeState, jax.Array]:
    """Cache the prompt (each of its G rows) once for every sample and start the token history
    from its first row: (state, (G, V) logits of the token after the prompt)."""
    model = lm.merge(graphdef, params)
    (G, P), S, B = prompt.shape, context_length(config), num_samples
    valid = jnp.arange(P)[None] < prompt_length  # (1, P)
    hidden, cache = model.hidden_states(
        prompt, attention_mask=jnp.broadcast_to(valid, (G, P)), cache=KVCache.empty(config, G, P, head.dtype)
    )  # (G, P, C); positions default to the slots
    assert cache is not None  # given a cache, hidden_states returns it updated
    last = jax.lax.dynamic_index_in_dim(hidden, prompt_length - 1, axis=1, keepdims=False)  # (G, C)
    tokens = jnp.zeros((B, S), jnp.int32).at[:, :P].set(jnp.where(valid, prompt[:1], 0))
    state = DecodeState(
        # Decoding continues at slot prompt_length: pad slots (masked) are rewritten by what follows.
        cache=dataclasses.replace(cache.grow(B, S), index=prompt_length),  # B*G rows, each sample's G innermost
        history=TokenHistory.start(tokens, prompt_length, config.vocab_size, sampling),
        done=jnp.zeros((B,), bool),
    )
    return state, lm_logits(last, head)


def first_token(state: DecodeState, logits: jax.Array, sampling: SamplingArrays) -> tuple[DecodeState, jax.Array, jax.Array]:
    """Each sample's first token from the prefill's logits (G, V): (state, tokens (B, 1), done (B,))."""
    logits = guide(logits, sampling.artist_guidance, state.branches)  # (1, V)
    logits = jnp.broadcast_to(logits, (state.done.shape[0], logits.shape[-1]))  # (B, V)
    state, token = _generate_one(state, logits, sampling)
    return state, token[:, None], state.done


def next_logits(
    graphdef: nnx.GraphDef, params: lm.Params, head: jax.Array, state: DecodeState, sampling: SamplingArrays
) -> tuple[jax.Array, KVCache]:
    """Feed each row's newest token (not yet in the cache; it goes to slot cache.index) through
    the model: ((B, V) logits of the next token, guided when the state has guidance rows; the
    cache holding the token)."""
    model = lm.merge(graphdef, params)
    hidden, cache = model.hidden_states(model_rows(state.history.newest, state.branches), cache=state.cache)  # (B*G, 1, C)
    assert cache is not None  # given a cache, hidden_states returns it updated
    return guide(lm_logits(hidden[:, 0], head), sampling.artist_guidance, state.branches), cache


def decode_chunk(
    graphdef: nnx.GraphDef,
    params: lm.Params,
    head: jax.Array,  # (C, V) lm.head_kernel(config, params)
    state: DecodeState,
    sampling: SamplingArrays,
    steps: jax.Array,  # () int32 in 1..MAX_CHUNK
) -> tuple[DecodeState, jax.Array, jax.Array]:
    """Up to ``steps`` more tokens per row: (state, tokens (B, MAX_CHUNK), done (B,)).

    Stops early once every row is done; unused columns hold NO_TOKEN.
    """
    B = state.done.shape[0]

    def not_finished(carry):
        step, state, _ = carry
        return (step < steps) & ~jnp.all(state.done)

    def step(carry):
        step, state, out = carry
        logits, cache = next_logits(graphdef, params, head, state, sampling)  # (B, V)
        state, token = _generate_one(state.replace(cache=cache), logits, sampling)
        return step + 1, state, out.at[:, step].set(token)

    out = jnp.full((B, MAX_CHUNK), NO_TOKEN, jnp.int32)
    _, state, out = jax.lax.while_loop(not_finished, step, (0, state, out))
    return state, out, state.done


@functools.cache
def _jitted(graphdef: nnx.GraphDef, config: LMConfig) -> tuple[Callable, Callable, Callable]:
    """prefill, first_token and decode_chunk jitted for one model structure, shared by every
    DecodeModel of it. Bound here rather than passed as static arguments: hashing a GraphDef
    at every call is slow next to a small model's decode step (README, Benchmarks — sampling)."""
    return (
        jax.jit(functools.partial(prefill, graphdef, config), static_argnames=("num_samples",)),
        jax.jit(first_token, donate_argnames=("state",)),
        jax.jit(functools.partial(decode_chunk, graphdef), donate_argnames=("state",)),
    )


@dataclasses.dataclass(frozen=True)
class DecodeModel:
    """The decoder's device state for a loaded model (``jaxrap.load.LoadedModel`` stays the
    record of the model itself): weights on device in the compute dtype, the (C, V) LM head,
    and the jitted programs."""

    graphdef: nnx.GraphDef
    config: LMConfig
    params: lm.Params
    head: jax.Array  # (C, V), see lm.head_kernel
    prefill: Callable  # prefill(params, head, prompt (G, P), prompt_length, sampling, *, num_samples)
    first_token: Callable  # first_token(state, logits, sampling)
    decode_chunk: Callable  # decode_chunk(params, head, state, sampling, steps)

    @property
    def context(self) -> int:
        """S: tokens of context the sampler decodes in (``context_length``)."""
        return context_length(self.config)

    @classmethod
    def from_params(cls, config: LMConfig, params: lm.Params, dtype: str = "float32") -> DecodeModel:
        """float32 params (host or device) -> a DecodeModel computing in ``dtype``.

        bfloat16 stores the matmul weights (and the KV cache) in bfloat16, halving the bytes a
        decode step reads; norm parameters and biases stay float32, logits are float32.
        """
        if dtype not in DTYPES:
            raise JaxrapError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        compute = DTYPES[dtype]
        graphdef = lm.abstract(config, dtype=compute)[0]
        params = jax.tree.map(lambda w: jnp.asarray(w, compute if np.ndim(w) >= 2 else jnp.float32), params)
        return cls(graphdef, config, params, lm.head_kernel(config, params), *_jitted(graphdef, config))


def prompt_rows(prompt_ids: Sequence[int], unconditioned_ids: Sequence[int] | None, cache_length: int) -> np.ndarray:
    """(G, P) int32 right-padded to the prompt's bucket: the prompt, and with guidance its
    unconditioned twin (``jaxrap.sample.guidance``), which must be as long."""
    rows = [prompt_ids] if unconditioned_ids is None else [prompt_ids, unconditioned_ids]
    if any(len(row) != len(prompt_ids) for row in rows):
        raise ValueError(f"the unconditioned prompt has {len(rows[-1])} tokens, the prompt {len(prompt_ids)}; they must match")
    prompt = np.zeros((len(rows), prompt_bucket(len(prompt_ids), cache_length)), np.int32)
    prompt[:, : len(prompt_ids)] = rows
    return prompt


def token_chunks(
    model: DecodeModel,
    prompt_ids: Sequence[int],
    sampling: SamplingArrays,
    *,
    num_samples: int,
    chunk: int = CHUNK,
    unconditioned_ids: Sequence[int] | None = None,
) -> Generator[np.ndarray, None, None]:
    """Generated tokens as host arrays (B, k): the first token, then ``chunk`` at a time.

    NO_TOKEN marks a finished row. The next chunk is dispatched before this one is read, so
    the device never waits on the host. The caller must keep prompt + max_new_tokens within
    the context (``model.context``); it may stop iterating at any time (the chunk in flight is dropped).
    ``unconditioned_ids``: the prompt conditioned on unknown (as long as ``prompt_ids``) to guide
    against with ``sampling.artist_guidance`` (``jaxrap.sample.guidance``); None decodes unguided.
    """
    length, S = len(prompt_ids), model.context
    if not 1 <= length <= S - int(sampling.max_new_tokens) or not 1 <= chunk <= MAX_CHUNK:
        raise ValueError(f"{length} prompt tokens + max_new_tokens must fit the context of {S}; chunk <= {MAX_CHUNK}")
    prompt = prompt_rows(prompt_ids, unconditioned_ids, S)
    state, logits = model.prefill(model.params, model.head, prompt, np.int32(length), sampling, num_samples=num_samples)
    state, tokens, done = model.first_token(state, logits, sampling)
    while True:
        pending = model.decode_chunk(model.params, model.head, state, sampling, np.int32(chunk))
        yield np.asarray(tokens)
        if np.asarray(done).all():
            return
        state, tokens, done = pending
        tokens = tokens[:, :chunk]
