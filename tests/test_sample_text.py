"""SampleText: UTF-8 safe deltas, stop strings held back until sure, bars, eos and length."""

from __future__ import annotations

import pytest

from jaxrap.data.tokenizer import load_tokenizer
from jaxrap.sample.sample_text import SampleText

TEXT = "Ça brûle, l’été 🔥🎤 « ouais », mon cœur\nDeux\nTrois\nQuatre"


@pytest.fixture(scope="module")
def tokenizer(tiny_tokenizer_dir):
    return load_tokenizer(tiny_tokenizer_dir)


def feed(sample: SampleText, ids, per_push: int = 1) -> list[str]:
    return [sample.push(ids[i:i + per_push]) for i in range(0, len(ids), per_push)]


def make(tokenizer, **options) -> SampleText:
    return SampleText(tokenizer, [], eos_token_id=tokenizer.eos_token_id, max_new_tokens=options.pop("max_new_tokens", 1000), **options)


def test_multibyte_characters_split_over_tokens_never_show_broken(tokenizer):
    ids = tokenizer(TEXT)["input_ids"]
    assert any("\ufffd" in tokenizer.decode([i]) for i in ids)  # some token holds half a character
    sample = make(tokenizer)
    deltas = feed(sample, ids)
    assert not any("\ufffd" in delta for delta in deltas)
    assert "".join(deltas) + sample.finish("length") == TEXT


def test_stop_string_split_across_chunks_never_shows(tokenizer):
    ids = tokenizer(TEXT)["input_ids"]
    sample = make(tokenizer, stop=("ouais",))
    deltas = feed(sample, ids)
    assert "".join(deltas) == TEXT[: TEXT.find("ouais")]
    assert all("o" not in delta for delta in deltas if "«" not in delta)  # the stop's "o" never leaked
    assert sample.finish_reason == "stop"


def test_text_held_for_a_stop_that_never_completes_is_flushed(tokenizer):
    sample = make(tokenizer, stop=("ouais!",))
    deltas = feed(sample, tokenizer(TEXT)["input_ids"], per_push=3)
    assert "".join(deltas) + sample.finish("length") == TEXT


def test_max_bars_ends_after_that_many_newlines(tokenizer):
    sample = make(tokenizer, max_bars=2)
    deltas = feed(sample, tokenizer(TEXT)["input_ids"], per_push=4)
    assert "".join(deltas) == "Ça brûle, l’été 🔥🎤 « ouais », mon cœur\nDeux\n"
    assert sample.finish_reason == "bars"


def test_end_of_song_and_length(tokenizer):
    ids = tokenizer("mon cœur bat")["input_ids"]
    sample = make(tokenizer)
    assert sample.push([*ids, tokenizer.eos_token_id, *ids]) == "mon cœur bat"
    assert (sample.finish_reason, sample.num_tokens) == ("end_of_song", len(ids) + 1)
    assert sample.push(ids) == ""

    sample = make(tokenizer, max_new_tokens=2)
    assert sample.push(ids) == tokenizer.decode(ids[:2])
    assert sample.finish_reason == "length"
