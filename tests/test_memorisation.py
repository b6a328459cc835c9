"""Longest run copied from the train lyrics: a copied verse found exactly, runs that cross two
songs refused, and the hashed index equal to a brute-force scan on random texts."""

from __future__ import annotations

import random

import pytest
from invented_lyrics import invented_song

from jaxrap.evaluate.memorisation import ANCHOR, TrainWordIndex, memorisation_stats, text_words

TRAIN = [invented_song(seed) for seed in range(20)]


@pytest.fixture(scope="module")
def index() -> TrainWordIndex:
    return TrainWordIndex(TRAIN)


def brute_force_longest(train: list[str], text: str) -> int:
    """The O(n * m) definition: the longest word run of ``text`` inside one train song."""
    words = text_words(text)
    best = 0
    for song in map(text_words, train):
        for i in range(len(words)):
            for j in range(len(song)):
                k = 0
                while i + k < len(words) and j + k < len(song) and words[i + k] == song[j + k]:
                    k += 1
                best = max(best, k)
    return best


def test_a_copied_verse_is_found_whole_despite_case_punctuation_and_line_breaks(index):
    source = text_words(TRAIN[7])
    copied = " ".join(source[10:23])  # 13 words of song 7
    text = f"Zyglor vrombit\n{copied.upper()}, qu'on se le dise !\nFin zyglor"
    assert brute_force_longest(TRAIN, text) == 13
    assert index.longest_copied_run(text) == 13


def test_runs_never_join_two_songs(index):
    end_of_one, start_of_next = text_words(TRAIN[3])[-5:], text_words(TRAIN[4])[:5]
    text = " ".join(end_of_one + start_of_next)
    assert index.longest_copied_run(text) == brute_force_longest(TRAIN, text) < 10


def test_unknown_words_break_runs_and_short_texts_work(index):
    assert index.longest_copied_run("") == 0
    assert index.longest_copied_run("zyglor vrombit") == 0
    words = text_words(TRAIN[0])
    assert index.longest_copied_run(" ".join(words[:4] + ["zyglor"] + words[4:9])) == 5
    assert index.longest_copied_run(" ".join(words[:5])) == 5  # shorter than the anchor, all copied


@pytest.mark.parametrize("seed", range(5))
def test_equals_brute_force_on_random_mixtures(seed):
    """Texts stitched from pieces of train songs and invented words, over a tiny vocabulary so
    that short runs recur everywhere: every length, under and over the anchor, must match."""
    rng = random.Random(seed)
    vocabulary = "la nuit le jour mon frère ma rue on tient".split()
    train = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(5, 60))) for _ in range(8)]
    index = TrainWordIndex(train)
    for _ in range(10):
        pieces = []
        for _ in range(rng.randint(1, 4)):
            song = text_words(rng.choice(train))
            start = rng.randrange(len(song))
            pieces += song[start : start + rng.randint(1, 15)] + [rng.choice(vocabulary + ["zyglor"])]
        text = " ".join(pieces)
        assert index.longest_copied_run(text) == brute_force_longest(train, text), text


def test_stats_share_of_texts_copying_eight_words(index):
    words = text_words(TRAIN[2])
    texts = [" ".join(words[:ANCHOR]), " ".join(words[:ANCHOR - 1]) + " zyglor", "zyglor"]
    stats = memorisation_stats(index, texts)
    assert (stats.texts, stats.max_longest_run, stats.copy_rate) == (3, ANCHOR, pytest.approx(1 / 3))
    assert stats.mean_longest_run == pytest.approx((ANCHOR + ANCHOR - 1 + 0) / 3)
