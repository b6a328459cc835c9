"""Logit processors equal transformers' processors of the same name on the same logits."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch
from transformers.generation import logits_process as hf

from jaxrap.sample import processors
from jaxrap.sample.params import SamplingParams
from jaxrap.sample.processors import SamplingArrays, TokenHistory

B, V, S = 4, 300, 40  # V > CANDIDATES, so both the fast path and the exact fallback run
EOS = 7
# (B, S) contexts with repeats: 24 prompt tokens drawn from a small range, slots beyond unused.
PROMPT = np.random.default_rng(0).integers(0, 50, size=(B, 24)).astype(np.int32)


def arrays(**changes) -> SamplingArrays:
    return SamplingArrays.from_params(SamplingParams(seed=0).replace(**changes), eos_token_id=EOS)


def history(params: SamplingArrays, prompt: np.ndarray = PROMPT) -> TokenHistory:
    tokens = np.zeros((prompt.shape[0], S), np.int32)
    tokens[:, : prompt.shape[1]] = prompt
    return TokenHistory.start(tokens, np.int32(prompt.shape[1]), V, params)


def apply(name: str, logits: np.ndarray, params: SamplingArrays, context: TokenHistory | None = None) -> np.ndarray:
    context = history(params) if context is None else context
    return np.asarray(jax.jit(getattr(processors, name))(logits, context, params))


def random_logits(scale: float, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((B, V)) * scale).astype(np.float32)


def reference(processor, logits: np.ndarray, input_ids: np.ndarray = PROMPT) -> np.ndarray:
    return processor(torch.from_numpy(input_ids).long(), torch.from_numpy(logits.copy())).numpy()


@pytest.mark.parametrize("temperature", [0.7, 1.0, 1.6])
def test_temperature(temperature):
    logits = random_logits(3.0)
    ours = apply("apply_temperature", logits, arrays(temperature=temperature))
    np.testing.assert_array_equal(ours, reference(hf.TemperatureLogitsWarper(temperature), logits))


@pytest.mark.parametrize("top_k", [1, 5, 64, 100, V])  # 100 > CANDIDATES: the bisection path
def test_top_k(top_k):
    logits = random_logits(2.0)
    ours = apply("apply_top_k", logits, arrays(top_k=top_k))
    np.testing.assert_array_equal(ours, reference(hf.TopKLogitsWarper(top_k), logits))


@pytest.mark.parametrize("scale", [0.3, 4.0])  # flat logits cut beyond the candidates, peaked within
@pytest.mark.parametrize("top_p", [0.05, 0.5, 0.9, 0.99])
def test_top_p(scale, top_p):
    logits = random_logits(scale)
    ours = apply("apply_top_p", logits, arrays(top_p=top_p))
    expected = reference(hf.TopPLogitsWarper(top_p), logits)
    np.testing.assert_array_equal(ours, expected)
    assert np.isfinite(ours).sum(-1).min() >= 1


def test_top_p_one_is_identity():
    logits = random_logits(2.0)
    np.testing.assert_array_equal(apply("apply_top_p", logits, arrays(top_p=1.0)), logits)


@pytest.mark.parametrize("min_p", [0.0, 0.05, 0.3, 1.0])
def test_min_p(min_p):
    logits = random_logits(3.0)
    ours = apply("apply_min_p", logits, arrays(min_p=min_p))
    np.testing.assert_array_equal(ours, reference(hf.MinPLogitsWarper(min_p), logits))


@pytest.mark.parametrize("penalty", [0.8, 1.0, 1.3, 2.0])
def test_repetition_penalty_over_the_whole_context(penalty):
    logits = random_logits(3.0)
    ours = apply("apply_repetition_penalty", logits, arrays(repetition_penalty=penalty, repetition_window=0))
    np.testing.assert_array_equal(ours, reference(hf.RepetitionPenaltyLogitsProcessor(penalty), logits))


def test_repetition_window_counts_only_the_last_tokens_and_slides():
    logits = random_logits(3.0)
    params = arrays(repetition_penalty=1.5, repetition_window=5)
    context = history(params, PROMPT[:, :20])
    # Append the prompt's last 4 tokens one by one: the window must slide as it would from scratch.
    for position in range(20, 24):
        context = jax.jit(TokenHistory.append)(context, PROMPT[:, position], params)
    ours = apply("apply_repetition_penalty", logits, params, context)
    expected = reference(hf.RepetitionPenaltyLogitsProcessor(1.5), logits, PROMPT[:, -5:])
    np.testing.assert_array_equal(ours, expected)
    np.testing.assert_array_equal(context.window_counts, history(params).window_counts)


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_no_repeat_ngram(size):
    logits = random_logits(1.0)
    prompt = np.random.default_rng(size).integers(0, 6, size=(B, 24)).astype(np.int32)  # many repeats
    params = arrays(no_repeat_ngram_size=size)
    ours = apply("apply_no_repeat_ngram", logits, params, history(params, prompt))
    expected = reference(hf.NoRepeatNGramLogitsProcessor(size), logits, prompt)
    np.testing.assert_array_equal(ours, expected)
    if size <= 2:  # short n-grams of a 6-token alphabet always repeat
        assert np.isinf(ours).any()


def test_frequency_and_presence_penalties_count_generated_tokens_only():
    logits = random_logits(3.0)
    params = arrays(frequency_penalty=0.5, presence_penalty=0.25)
    context = history(params)
    generated = np.array([[3, 3, 9], [4, 5, 6], [3, 4, 3], [60, 60, 60]], np.int32)
    for step in range(3):
        context = jax.jit(TokenHistory.append)(context, generated[:, step], params)
    counts = np.zeros((B, V))
    for row, tokens in enumerate(generated):
        np.add.at(counts[row], tokens, 1)
    expected = logits - 0.5 * counts - 0.25 * (counts > 0)
    ours = apply("apply_frequency_presence_penalties", logits, params, context)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)


def test_min_new_tokens_bans_eos_until_reached():
    logits = random_logits(3.0)
    params = arrays(min_new_tokens=2)
    context = history(params)
    assert np.isneginf(apply("ban_early_end_of_song", logits, params, context)[:, EOS]).all()
    for _ in range(2):
        context = jax.jit(TokenHistory.append)(context, np.full(B, 3, np.int32), params)
    np.testing.assert_array_equal(apply("ban_early_end_of_song", logits, params, context), logits)


def test_sampler_follows_the_distribution_and_never_picks_removed_tokens():
    logits = np.log(np.array([[0.5, 0.0, 0.2, 0.3] + [0.0] * (V - 4)], np.float32) + 1e-30)
    logits[0, 1] = -np.inf
    params = arrays(temperature=1.0)
    keys = jax.random.split(jax.random.key(0), 4000)
    draws = np.asarray(jax.jit(jax.vmap(lambda k: processors.sample_tokens(logits, k, params)))(keys))[:, 0]
    frequencies = np.bincount(draws, minlength=V)[:4] / len(draws)
    np.testing.assert_allclose(frequencies, [0.5, 0.0, 0.2, 0.3], atol=0.03)
    assert set(np.unique(draws)) <= {0, 2, 3}
    greedy = processors.sample_tokens(logits, keys[0], arrays(temperature=0.0))
    assert int(greedy[0]) == 0


# --- precision on accelerators ------------------------------------------------------------
# A TPU runs a float32 matmul at JAX's default precision as one bfloat16 pass (an NVIDIA GPU
# as TF32); the sampler's prefix and suffix sums are matmuls, so they must ask for HIGHEST.
# XLA:CPU computes float32 exactly whatever the precision says, so on CPU the lowered program
# is what can be checked; the numerical comparisons below run the same way on an accelerator.


def _sampler(logits, key, params, context):
    return processors.sample_tokens(processors.process_logits(logits, context, params), key, params)


def test_every_matmul_of_the_sampler_asks_for_highest_precision():
    params = arrays(temperature=1.0, top_k=100, top_p=0.9, min_p=0.05)
    with jax.default_matmul_precision("bfloat16"):
        text = jax.jit(_sampler).lower(random_logits(2.0), jax.random.key(0), params, history(params)).as_text()
    dots = [line for line in text.splitlines() if "dot_general" in line]
    assert len(dots) >= 3  # top-p's suffix sums, the draw's block and within-block prefix sums
    for dot in dots:
        assert "precision = [HIGHEST, HIGHEST]" in dot, dot


@pytest.mark.parametrize("top_p", [0.5, 0.9, 0.99])
def test_top_p_equals_transformers_under_bfloat16_default_precision(top_p):
    logits = random_logits(4.0, seed=3)
    with jax.default_matmul_precision("bfloat16"):
        ours = apply("apply_top_p", logits, arrays(top_p=top_p))
    np.testing.assert_array_equal(ours, reference(hf.TopPLogitsWarper(top_p), logits))


def test_draw_is_the_exact_inverse_cdf_under_bfloat16_default_precision():
    """Each draw is the token whose float64 CDF interval holds the same uniform number."""
    logits = np.random.default_rng(5).standard_normal((1, V)).astype(np.float32) * 2.0
    params = arrays(temperature=1.0)
    keys = jax.random.split(jax.random.key(1), 2000)
    with jax.default_matmul_precision("bfloat16"):
        draws = np.asarray(jax.jit(jax.vmap(lambda k: processors.sample_tokens(logits, k, params)))(keys))[:, 0]
    uniforms = np.asarray(jax.vmap(lambda k: jax.random.uniform(k, (1, 1)))(keys), np.float64).reshape(-1)
    probs = np.exp(logits[0].astype(np.float64) - logits.max())
    cdf = np.cumsum(probs)
    expected = np.searchsorted(cdf, uniforms * cdf[-1], side="right")
    np.testing.assert_array_equal(draws, expected)
