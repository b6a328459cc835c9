"""The token cache: right tokens and boundaries, hits when nothing changed, misses when anything did."""

from __future__ import annotations

import datasets
import numpy as np
import pytest

from jaxrap.data import tokens as tokens_module
from jaxrap.data.tokenizer import load_tokenizer, train_tokenizer
from jaxrap.data.tokens import tokenize_split
from jaxrap.errors import JaxrapError


@pytest.fixture(scope="module")
def tokenizer(tiny_tokenizer_dir):
    return load_tokenizer(tiny_tokenizer_dir)


def test_songs_are_their_tokens_then_eos(tiny_corpus_dir, tokenizer, tmp_path):
    split = tokenize_split(tiny_corpus_dir, "validation", tokenizer, cache_dir=tmp_path)
    texts = datasets.load_from_disk(str(tiny_corpus_dir))["validation"]["text"]
    assert split.num_songs == len(texts) == 6
    assert split.tokens.dtype == np.uint16 and isinstance(split.tokens, np.memmap)
    assert split.offsets[0] == 0 and split.offsets[-1] == split.num_tokens
    for index, text in enumerate(texts):
        song = split.song(index).tolist()
        assert song == tokenizer(text, add_special_tokens=False)["input_ids"] + [0]
        assert tokenizer.decode(song[:-1]) == text
    assert split.path.parent == tmp_path and (split.path / "meta.json").is_file()


def test_default_cache_lives_in_the_corpus(tiny_corpus_dir, tokenizer):
    split = tokenize_split(tiny_corpus_dir, "test", tokenizer)
    assert split.path.parent == tiny_corpus_dir / "token_cache"
    assert datasets.load_from_disk(str(tiny_corpus_dir))["test"].num_rows == 6  # corpus still loads


def test_unchanged_inputs_hit_the_cache_without_tokenizing(tiny_corpus_dir, tmp_path, tiny_tokenizer_dir, monkeypatch):
    first = tokenize_split(tiny_corpus_dir, "train", load_tokenizer(tiny_tokenizer_dir), cache_dir=tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("tokenized again although nothing changed")

    monkeypatch.setattr(tokens_module, "encode_texts", refuse)
    again = tokenize_split(tiny_corpus_dir, "train", load_tokenizer(tiny_tokenizer_dir), cache_dir=tmp_path)
    assert again.key == first.key and again.path == first.path
    np.testing.assert_array_equal(again.tokens, first.tokens)


def test_changed_tokenizer_or_options_miss_the_cache(tiny_corpus_dir, tokenizer, tmp_path):
    base = tokenize_split(tiny_corpus_dir, "train", tokenizer, cache_dir=tmp_path)
    smaller = train_tokenizer(tiny_corpus_dir, 280, tmp_path / "tok280")
    other_tokenizer = tokenize_split(tiny_corpus_dir, "train", smaller, cache_dir=tmp_path)
    no_eos = tokenize_split(tiny_corpus_dir, "train", tokenizer, cache_dir=tmp_path, append_eos=False)
    keys = {base.key, other_tokenizer.key, no_eos.key}
    assert len(keys) == 3 and len(list(tmp_path.glob("train-*"))) == 3
    assert other_tokenizer.num_tokens > base.num_tokens  # fewer merges, more tokens
    assert no_eos.num_tokens == base.num_tokens - base.num_songs
    assert 0 not in no_eos.tokens


def test_changed_corpus_misses_the_cache(tiny_corpus_dir, tokenizer, tmp_path):
    corpus = datasets.load_from_disk(str(tiny_corpus_dir))
    corpus["validation"] = corpus["validation"].map(lambda row: {"text": row["text"] + "\nUne barre de plus"})
    corpus.save_to_disk(str(tmp_path / "edited"))
    base = tokenize_split(tiny_corpus_dir, "validation", tokenizer, cache_dir=tmp_path / "cache")
    edited = tokenize_split(tmp_path / "edited", "validation", tokenizer, cache_dir=tmp_path / "cache")
    assert edited.key != base.key and edited.num_tokens > base.num_tokens


def test_song_prefix_hook_puts_ids_first_and_keys_the_cache(tiny_corpus_dir, tmp_path):
    artists = ["<|artist:Médine|>", "<|artist:Shurik'n|>"]
    tokenizer = train_tokenizer(tiny_corpus_dir, 300, tmp_path / "tok", extra_special_tokens=artists)

    def artist_token(row):
        return [tokenizer.convert_tokens_to_ids(f"<|artist:{row['artist']}|>")]

    plain = tokenize_split(tiny_corpus_dir, "validation", tokenizer, cache_dir=tmp_path)
    prefixed = tokenize_split(tiny_corpus_dir, "validation", tokenizer, cache_dir=tmp_path, song_prefix=artist_token)
    rows = datasets.load_from_disk(str(tiny_corpus_dir))["validation"]
    assert prefixed.key != plain.key
    for index, row in enumerate(rows):
        assert prefixed.song(index).tolist() == artist_token(row) + plain.song(index).tolist()


def test_bad_prefix_ids_and_split_are_refused(tiny_corpus_dir, tokenizer, tmp_path):
    with pytest.raises(JaxrapError, match="validation row 0: song prefix .* outside"):
        tokenize_split(tiny_corpus_dir, "validation", tokenizer, cache_dir=tmp_path, song_prefix=lambda row: [10_000])
    with pytest.raises(JaxrapError, match="unknown split 'dev'"):
        tokenize_split(tiny_corpus_dir, "dev", tokenizer, cache_dir=tmp_path)
    with pytest.raises(JaxrapError, match="not a prepared corpus"):
        tokenize_split(tmp_path / "nope", "train", tokenizer)


class _LargeVocabulary:
    """The tiny tokenizer, claiming a vocabulary past uint16's range."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)

    def __call__(self, *args, **kwargs):
        return self._tokenizer(*args, **kwargs)

    def __len__(self):
        return 70_000


def test_large_vocabularies_are_stored_as_uint32(tiny_corpus_dir, tokenizer, tmp_path):
    small = tokenize_split(tiny_corpus_dir, "test", tokenizer, cache_dir=tmp_path)
    large = tokenize_split(tiny_corpus_dir, "test", _LargeVocabulary(tokenizer), cache_dir=tmp_path)
    assert large.tokens.dtype == np.uint32
    np.testing.assert_array_equal(large.tokens, small.tokens)
