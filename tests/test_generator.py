"""Generator.stream: deltas add up to the decoded tokens, per sample; cancel stops between chunks."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from jaxrap.errors import JaxrapError
from jaxrap.sample.decode import token_chunks
from jaxrap.sample.generator import Generator
from jaxrap.sample.params import SamplingParams
from jaxrap.sample.processors import SamplingArrays

PROMPT = "Mon cœur bat"


@pytest.fixture(scope="module")
def generator(tiny_lyrics_model_dir):
    return Generator.load(tiny_lyrics_model_dir)


def test_deltas_add_up_to_the_decoded_tokens_of_each_sample(generator):
    # temperature 1 over a random model: bytes in any order, so characters split over tokens.
    params = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=60, min_new_tokens=60, num_samples=2, seed=3)
    texts = ["", ""]
    for delta in generator.stream(PROMPT, params):
        texts[delta.sample] += delta.text
    sampling = SamplingArrays.from_params(params, generator.tokenizer.eos_token_id)
    ids = np.concatenate(list(token_chunks(generator.model, generator.encode_prompt(PROMPT), sampling, num_samples=2)), 1)
    assert texts == [generator.tokenizer.decode(row[row >= 0]) for row in ids]
    assert texts == generator.generate(PROMPT, params)


def test_cancel_stops_every_sample_between_chunks(generator):
    params = SamplingParams(max_new_tokens=100, min_new_tokens=100, num_samples=2, seed=4)
    full = generator.generate(PROMPT, params)
    cancel = threading.Event()
    texts, reasons = ["", ""], {}
    for delta in generator.stream(PROMPT, params, cancel=cancel):
        cancel.set()
        texts[delta.sample] += delta.text
        if delta.finish_reason:
            reasons[delta.sample] = delta.finish_reason
    assert reasons == {0: "cancelled", 1: "cancelled"}
    for text, whole in zip(texts, full):
        assert whole.startswith(text) and len(text) < len(whole) / 4


# --- prompt fitting, property-based (Hypothesis) -----------------------------------------------


@pytest.fixture(scope="module")
def generator_with_context(tiny_lyrics_model_dir):
    """context -> a Generator of the tiny model with that n_positions (built once each)."""
    import dataclasses
    import functools

    from jaxrap.load import load_model

    loaded = load_model(tiny_lyrics_model_dir)
    return functools.cache(lambda context: Generator(dataclasses.replace(loaded, config=loaded.config.replace(n_positions=context))))


@settings(max_examples=300)
@given(
    context=st.one_of(st.integers(1, 5), st.sampled_from([16, 31, 128, 1024])),
    max_new_tokens=st.integers(1, 1100),
    prompt=st.lists(st.integers(2, 290), max_size=1100),
    keep=st.integers(0, 3),
)
@example(context=1, max_new_tokens=1, prompt=[], keep=0)  # was an empty prompt (token_chunks' ValueError)
def test_a_fitted_prompt_and_its_budget_always_fit_the_context(generator_with_context, context, max_new_tokens, prompt, keep):
    """Whatever the context, prompt and budget: at least one prompt token (bos for an empty
    prompt), a budget of at least one token, the two within n_positions; a prompt that fits
    is untouched, a cut one keeps its last tokens, at least half the context of them, and its
    first ``keep`` (the song prefix) when they leave room for one more."""
    generator = generator_with_context(context)
    keep = min(keep, len(prompt))
    try:
        fitted, budget = generator.fitted_prompt(prompt, max_new_tokens, keep=keep)
    except JaxrapError as error:
        assert context == 1 and "context of 1 token" in str(error)
        return
    assert len(fitted) >= 1 and budget >= 1 and len(fitted) + budget <= context
    assert budget == min(max_new_tokens, context - len(fitted))
    if not prompt:
        assert fitted == [generator.tokenizer.bos_token_id]
    elif len(prompt) <= max(context - max_new_tokens, context // 2):
        assert fitted == prompt
    else:
        assert len(fitted) >= min(len(prompt), context // 2)
        tail = len(fitted) - (keep if keep < len(fitted) else 0)
        assert fitted[len(fitted) - tail:] == prompt[len(prompt) - tail:]
        if keep < len(fitted):
            assert fitted[:keep] == prompt[:keep]
