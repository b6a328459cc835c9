"""Logit processors and the token sampler: pure functions over (B, V) logits, jit-friendly.

Each processor is ``apply_x(logits (B, V), history, params) -> logits (B, V)`` (the warpers do
not read ``history``, but take it so the pipeline is uniform). Every setting is a traced array
of ``SamplingArrays``, so moving a slider never recompiles; a filter that is off is skipped
with ``lax.cond`` (or is an exact identity: x * 1, x / 1 and x - 0 are x in IEEE arithmetic).

Semantics are transformers' (``transformers.generation.logits_process``), and so is the order
``process_logits`` applies them in: repetition penalty, (frequency and presence penalties,
which transformers lacks), no-repeat-ngram, min-new-tokens; then, when sampling, temperature,
top-k, top-p, min-p. Tokens a filter removes get -inf.

Speed: a full sort of GPT-2's 50k logits would be a large share of a CPU decode step (README,
Benchmarks — sampling), so nothing here sorts the vocabulary. Top-k and top-p look at the
``CANDIDATES`` likeliest tokens (``lax.top_k``, a partial sort) and fall back to an exact
32-step bisection over the float bit patterns when the answer lies beyond them; sampling is an
inverse CDF with one uniform number per row (a Gumbel draw would need a number per token).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrap.sample.params import SamplingParams

CANDIDATES = 64  # tokens the top-k / top-p fast path looks at; settings beyond it take the exact fallback
NEG_INF = -jnp.inf


@struct.dataclass
class SamplingArrays:
    """SamplingParams as traced scalars (plus the model's end-of-song id): the jit's inputs."""

    temperature: jax.Array  # () float32; 0 means greedy
    top_k: jax.Array  # () int32; 0 is off
    top_p: jax.Array  # () float32; 1 is off
    min_p: jax.Array  # () float32; 0 is off
    repetition_penalty: jax.Array  # () float32; 1 is off
    repetition_window: jax.Array  # () int32; 0 means the whole context
    frequency_penalty: jax.Array  # () float32
    presence_penalty: jax.Array  # () float32
    no_repeat_ngram_size: jax.Array  # () int32; 0 is off
    min_new_tokens: jax.Array  # () int32
    max_new_tokens: jax.Array  # () int32
    seed: jax.Array  # () uint32
    eos_token_id: jax.Array  # () int32; -1 when the model has none
    artist_guidance: jax.Array  # () float32: w of the guided rows (jaxrap.sample.guidance); read only when guided

    @classmethod
    def from_params(cls, params: SamplingParams, eos_token_id: int | None) -> SamplingArrays:
        """Host (numpy) scalars of fixed dtypes, so every call hits the same compiled program."""
        params = params.with_seed()
        f32, i32 = np.float32, np.int32
        return cls(
            temperature=f32(params.temperature), top_k=i32(params.top_k), top_p=f32(params.top_p),
            min_p=f32(params.min_p), repetition_penalty=f32(params.repetition_penalty),
            repetition_window=i32(params.repetition_window),
            frequency_penalty=f32(params.frequency_penalty), presence_penalty=f32(params.presence_penalty),
            no_repeat_ngram_size=i32(params.no_repeat_ngram_size), min_new_tokens=i32(params.min_new_tokens),
            max_new_tokens=i32(params.new_tokens_cap), seed=np.uint32(params.seed),  # type: ignore[arg-type]  # with_seed()
            eos_token_id=i32(-1 if eos_token_id is None else eos_token_id),
            artist_guidance=f32(params.artist_guidance),
        )


@struct.dataclass
class TokenHistory:
    """The context so far and per-row token counts, kept incrementally (no rescans per step).

    Each row has its own length: plain decoding grows every row together, but a bar-by-bar
    decode (``jaxrap.sample.bar_decode``) stops rows at the end of their bar while others go on.
    """

    tokens: jax.Array  # (B, S) int32: row b's prompt, then its generated tokens, in slots 0..length[b]-1
    length: jax.Array  # (B,) int32: tokens in each row's context (prompt + generated)
    prompt_length: jax.Array  # () int32: the prompt, shared by every row
    window_counts: jax.Array  # (B, V) int32: occurrences in the repetition window (last n tokens, or all)
    generated_counts: jax.Array  # (B, V) int32: occurrences among generated tokens

    @property
    def num_generated(self) -> jax.Array:
        return self.length - self.prompt_length  # (B,)

    @property
    def newest(self) -> jax.Array:
        """(B, 1) each row's last token."""
        return jnp.take_along_axis(self.tokens, self.length[:, None] - 1, axis=1)

    @classmethod
    def start(cls, tokens: jax.Array, prompt_length: jax.Array, vocab_size: int, params: SamplingArrays) -> TokenHistory:
        """History of a prompt held in ``tokens[:, :prompt_length]`` (B, S)."""
        B, S = tokens.shape
        position = jnp.arange(S)
        window = params.repetition_window
        in_window = (position < prompt_length) & ((window == 0) | (position >= prompt_length - window))  # (S,)
        counts = jnp.zeros((B, vocab_size), jnp.int32)
        window_counts = counts.at[jnp.arange(B)[:, None], tokens].add(
            jnp.broadcast_to(in_window, (B, S)).astype(jnp.int32)
        )
        length = jnp.full((B,), prompt_length, jnp.int32)
        return cls(tokens, length, prompt_length, window_counts, counts)

    def append(self, new_tokens: jax.Array, params: SamplingArrays, active: jax.Array | None = None) -> TokenHistory:
        """Add one token per row (B,) at slot ``length``; the token ``window`` slots back leaves the
        window. Rows where ``active`` (B,) is false are left as they are."""
        rows = jnp.arange(new_tokens.shape[0])
        added = jnp.int32(1) if active is None else active.astype(jnp.int32)  # () or (B,)
        tokens = self.tokens.at[rows, self.length].set(new_tokens)  # past an inactive row's end: unused slot
        leaving = self.length - params.repetition_window  # (B,)
        drops = ((params.repetition_window > 0) & (leaving >= 0)).astype(jnp.int32) * added
        window_counts = self.window_counts.at[rows, new_tokens].add(added)
        window_counts = window_counts.at[rows, tokens[rows, jnp.maximum(leaving, 0)]].add(-drops)
        return self.replace(  # type: ignore[attr-defined]  # flax.struct adds replace()
            tokens=tokens,
            length=self.length + added,
            window_counts=window_counts,
            generated_counts=self.generated_counts.at[rows, new_tokens].add(added),
        )


# --- processors (always applied) ----------------------------------------------------------

def apply_repetition_penalty(logits: jax.Array, history: TokenHistory, params: SamplingArrays) -> jax.Array:
    """transformers' RepetitionPenaltyLogitsProcessor over the window: once per seen token,
    positive logits are divided by the penalty and negative ones multiplied by it."""
    penalty = params.repetition_penalty
    penalized = jnp.where(logits < 0, logits * penalty, _divide(logits, penalty))
    return jnp.where(history.window_counts > 0, penalized, logits)


def apply_frequency_presence_penalties(logits: jax.Array, history: TokenHistory, params: SamplingArrays) -> jax.Array:
    """OpenAI's: logit - count * frequency_penalty - (count > 0) * presence_penalty, where count
    is how often the token was generated so far (the prompt does not count)."""
    counts = history.generated_counts.astype(jnp.float32)  # (B, V)
    return logits - counts * params.frequency_penalty - (counts > 0) * params.presence_penalty


def apply_no_repeat_ngram(logits: jax.Array, history: TokenHistory, params: SamplingArrays) -> jax.Array:
    """transformers' NoRepeatNGramLogitsProcessor: ban each token that would complete an n-gram
    already present in the context (prompt and generated tokens)."""
    n = params.no_repeat_ngram_size

    def ban(logits: jax.Array) -> jax.Array:
        tokens, length = history.tokens, history.length[:, None]  # (B, S), (B, 1)
        B, S = tokens.shape

        def match_position(j, match):  # n-grams starting at i whose j-th token equals the tail's
            tail_token = jnp.take_along_axis(tokens, jnp.maximum(length - n + 1 + j, 0), axis=1)  # (B, 1)
            return match & (jnp.roll(tokens, -j, axis=1) == tail_token)

        # Complete n-grams of the context start at i <= length - n; roll wraps only beyond that.
        starts = jnp.arange(S)[None] <= length - n  # (B, S)
        match = jax.lax.fori_loop(0, n - 1, match_position, starts)  # (B, S)
        completions = jnp.roll(tokens, -(n - 1), axis=1)  # (B, S): each n-gram's last token
        banned = jnp.zeros(logits.shape, bool).at[jnp.arange(B)[:, None], completions].max(match)
        return jnp.where(banned, NEG_INF, logits)

    return jax.lax.cond((n > 0) & (jnp.max(history.length) >= n), ban, lambda x: x, logits)


def ban_early_end_of_song(logits: jax.Array, history: TokenHistory, params: SamplingArrays) -> jax.Array:
    """transformers' MinNewTokensLengthLogitsProcessor: no eos before min_new_tokens."""
    is_eos = jnp.arange(logits.shape[-1]) == params.eos_token_id  # (V,)
    return jnp.where(is_eos & (history.num_generated[:, None] < params.min_new_tokens), NEG_INF, logits)


# --- warpers (applied when sampling) ----------------------------------------------------

def apply_temperature(logits: jax.Array, history: TokenHistory, params: SamplingArrays) -> jax.Array:
    """transformers' TemperatureLogitsWarper; temperature 0 (greedy) leaves logits as they are."""
    return _divide(logits, jnp.where(params.temperature > 0, params.temperature, 1.0))


def apply_top_k(logits: jax.Array, history: TokenHistory, params: SamplingArrays) -> jax.Array:
    """transformers' TopKLogitsWarper: drop logits below the k-th largest (ties with it stay)."""
    V = logits.shape[-1]
    k = jnp.clip(params.top_k, 1, V)

    def from_candidates(logits):  # (B,): the k-th largest value among the likeliest CANDIDATES
        return jax.lax.top_k(logits, min(CANDIDATES, V))[0][:, k - 1]

    def by_bisection(logits):  # (B,): the largest key with at least k keys >= it
        keys = _order_keys(logits)
        found = _largest_key_where(lambda t: jnp.sum(keys >= t, axis=-1) >= k, logits.shape[0])
        return _key_to_float(found)

    def drop_below_kth(logits):
        kth = jax.lax.cond(k <= CANDIDATES, from_candidates, by_bisection, logits)  # (B,)
        return jnp.where(logits < kth[:, None], NEG_INF, logits)

    return jax.lax.cond(params.top_k > 0, drop_below_kth, lambda x: x, logits)


def apply_top_p(logits: jax.Array, history: TokenHistory, params: SamplingArrays) -> jax.Array:
    """transformers' TopPLogitsWarper: sorted ascending, a token goes when the cumulative
    probability up to and including it is <= 1 - top_p; the likeliest token always stays."""
    dropped_mass = 1.0 - params.top_p

    def drop_tail(logits):
        largest = jnp.max(logits, -1, keepdims=True)  # (B, 1)
        probs = jnp.exp(logits - largest)
        probs = probs / jnp.sum(probs, -1, keepdims=True)  # softmax, (B, V)
        top = jax.lax.top_k(probs, min(CANDIDATES, logits.shape[-1]))[0]  # (B, K) descending
        below = jnp.sum(probs, -1, keepdims=True) - jnp.sum(top, -1, keepdims=True)  # mass outside
        cumulative = below + _suffix_sums(top)  # (B, K): transformers' ascending cumsum
        kept = cumulative > dropped_mass
        # When the smallest candidate goes, so does everything below it: the cut is among them.
        cut_in_candidates = jnp.all(~kept[:, -1])

        def from_candidates(_):  # (B,): smallest kept probability
            return jnp.min(jnp.where(kept, top, jnp.inf), axis=-1)

        def by_bisection(_):  # (B,): the key cut, as the probability of the token just above it
            keys = _order_keys(logits)
            cut = _largest_key_where(
                lambda t: jnp.sum(jnp.where(keys <= t, probs, 0.0), -1) <= dropped_mass, logits.shape[0]
            )
            return jnp.min(jnp.where(keys > cut[:, None], probs, jnp.inf), axis=-1)

        smallest_kept = jax.lax.cond(cut_in_candidates, from_candidates, by_bisection, None)  # (B,)
        keep = (probs >= smallest_kept[:, None]) | (logits == largest)
        return jnp.where(keep, logits, NEG_INF)

    return jax.lax.cond(params.top_p < 1.0, drop_tail, lambda x: x, logits)


def apply_min_p(logits: jax.Array, history: TokenHistory, params: SamplingArrays) -> jax.Array:
    """transformers' MinPLogitsWarper: drop tokens whose probability is below min_p times the
    likeliest token's."""

    def drop_unlikely(logits):
        probs = jax.nn.softmax(logits, axis=-1)
        return jnp.where(probs < params.min_p * jnp.max(probs, -1, keepdims=True), NEG_INF, logits)

    return jax.lax.cond(params.min_p > 0.0, drop_unlikely, lambda x: x, logits)


Processor = Callable[[jax.Array, TokenHistory, SamplingArrays], jax.Array]
PROCESSORS = (apply_repetition_penalty, apply_frequency_presence_penalties, apply_no_repeat_ngram, ban_early_end_of_song)
WARPERS = (apply_temperature, apply_top_k, apply_top_p, apply_min_p)


def process_logits(
    logits: jax.Array, history: TokenHistory, params: SamplingArrays, extra: Sequence[Processor] = ()
) -> jax.Array:
    """All processors, then ``extra`` ones (the bar steering of ``jaxrap.sample.steering``),
    then (unless greedy, where they cannot change the argmax) all warpers: the filters see
    the logits the extra processors leave, so top-k and top-p keep tokens they allow."""
    for processor in (*PROCESSORS, *extra):
        logits = processor(logits, history, params)

    def warp(logits):
        for warper in WARPERS:
            logits = warper(logits, history, params)
        return logits

    return jax.lax.cond(params.temperature > 0, warp, lambda x: x, logits)


def sample_tokens(logits: jax.Array, key: jax.Array, params: SamplingArrays) -> jax.Array:
    """(B,) int32 tokens: argmax when temperature is 0, else a draw from softmax(logits).

    The draw is an inverse CDF with one uniform number per row, in two levels (blocks of
    ~sqrt(V) tokens, then tokens within the chosen block), so no length-V prefix sum is needed.
    """
    B, V = logits.shape

    def draw(logits):
        width = int(np.ceil(np.sqrt(V)))
        num_blocks = -(-V // width)
        probs = jnp.exp(logits - jnp.max(logits, -1, keepdims=True))  # unnormalised, (B, V)
        probs = jnp.pad(probs, ((0, 0), (0, num_blocks * width - V))).reshape(B, num_blocks, width)
        block_mass = jnp.sum(probs, -1)  # (B, num_blocks)
        block_cdf = _prefix_sums(block_mass)
        u = jax.random.uniform(key, (B, 1)) * block_cdf[:, -1:]  # (B, 1) in [0, total mass)
        # Rounding can put u at or past an edge; the clamps keep the pick on a token of mass > 0.
        block = jnp.minimum(jnp.sum(block_cdf <= u, -1), _last_positive(block_mass))  # (B,)
        before = jnp.take_along_axis(block_cdf - block_mass, block[:, None], -1)  # (B, 1)
        within = jnp.take_along_axis(probs, block[:, None, None], 1)[:, 0]  # (B, width)
        index = jnp.minimum(jnp.sum(_prefix_sums(within) <= u - before, -1), _last_positive(within))
        return (block * width + index).astype(jnp.int32)

    def greedy(logits):  # the first largest logit, as argmax, with two plain reductions
        largest = jnp.max(logits, -1, keepdims=True)
        return jnp.min(jnp.where(logits == largest, jnp.arange(V), V), -1).astype(jnp.int32)

    return jax.lax.cond(params.temperature > 0, draw, greedy, logits)


def _prefix_sums(x: jax.Array) -> jax.Array:
    """Cumulative sums along the last (short) axis as one matmul: XLA:CPU lowers jnp.cumsum
    to a log-depth scan that takes longer to compile than the rest of a decode step.

    HIGHEST precision: at the default, a TPU runs a float32 matmul as one bfloat16 pass (an
    NVIDIA GPU as TF32), which would round every probability to 3 significant digits before
    summing and move the draw and the top-p cut. XLA:CPU compiles the same program either way.
    """
    n = x.shape[-1]
    return jnp.matmul(x, jnp.triu(jnp.ones((n, n), x.dtype)), precision=jax.lax.Precision.HIGHEST)


def _suffix_sums(x: jax.Array) -> jax.Array:
    """out[..., i] = sum of x[..., i:], see _prefix_sums."""
    n = x.shape[-1]
    return jnp.matmul(x, jnp.tril(jnp.ones((n, n), x.dtype)), precision=jax.lax.Precision.HIGHEST)


def _last_positive(x: jax.Array) -> jax.Array:
    """(B,) index of the last entry > 0 along the last axis of x (B, N)."""
    return jnp.max(jnp.where(x > 0, jnp.arange(x.shape[-1]), 0), axis=-1)


def _divide(x: jax.Array, scalar: jax.Array) -> jax.Array:
    """x / scalar, correctly rounded as torch does it. XLA rewrites a division by a broadcast
    scalar into a multiplication by its reciprocal (1 ulp off); the barrier hides the broadcast."""
    return x / jax.lax.optimization_barrier(jnp.broadcast_to(scalar, x.shape))


# --- exact order statistics without sorting ---------------------------------------------

def _order_keys(x: jax.Array) -> jax.Array:
    """uint32 keys that order like the float32 values (-inf lowest, +inf highest)."""
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    return jnp.where(bits >> 31 == 1, ~bits, bits | jnp.uint32(1 << 31))


def _key_to_float(keys: jax.Array) -> jax.Array:
    bits = jnp.where(keys >> 31 == 1, keys & jnp.uint32(0x7FFFFFFF), ~keys)
    return jax.lax.bitcast_convert_type(bits, jnp.float32)


def _largest_key_where(holds, batch: int) -> jax.Array:
    """(B,) the largest uint32 key t with ``holds(t[:, None])`` true, for a predicate that is
    true up to some key and false after it: binary search, one key bit per step."""
    def set_bit(bit, found):  # found (B,)
        candidate = found | (jnp.uint32(1) << (31 - bit).astype(jnp.uint32))
        return jnp.where(holds(candidate[:, None]), candidate, found)

    return jax.lax.fori_loop(0, 32, set_bit, jnp.zeros((batch,), jnp.uint32))
