"""Generator.stream: deltas add up to the decoded tokens, per sample; cancel stops between chunks."""

from __future__ import annotations

import threading

import numpy as np
import pytest

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
