"""Loop detection and repetition scores on invented looping and non-looping lyrics."""

from __future__ import annotations

import pytest

from jaxrap.evaluate.repetition import detect_loop, distinct_n, repeated_ngram_share

VERSE = """J'traîne au quartier, l'été brûle le béton
Mon cœur bat en œuvre d'art, j'ai l'âme en chantier

Ni Dieu ni maître, juste ma plume et mon cahier
Frère, écoute : la rue n'pardonne à personne"""

WORD_LOOP = """Je monte sur la scène, le mic dans la main
J'm'arrache, j'm'arrache, j'm'arrache, j'm'arrache, j'm'arrache"""

LINE_LOOP = """Le bitume a des yeux
On roule toute la nuit
On roule toute la nuit

On roule toute la nuit
Fin"""


def test_a_verse_without_repetition_has_no_loop():
    assert detect_loop(VERSE) is None
    assert repeated_ngram_share(VERSE) == 0.0


def test_a_repeated_word_group_is_a_loop_starting_at_its_first_occurrence():
    loop = detect_loop(WORD_LOOP)
    assert loop is not None
    assert loop.kind == "ngram"
    assert loop.unit == "j m arrache"
    assert loop.repeats == 5
    assert loop.line == 1
    assert WORD_LOOP[loop.start :].startswith("J'm'arrache")


def test_a_bar_repeated_three_times_is_a_loop_even_across_a_blank_line():
    loop = detect_loop(LINE_LOOP)
    assert loop is not None and loop.kind == "line"
    assert (loop.line, loop.repeats, loop.unit) == (1, 3, "on roule toute la nuit")
    assert LINE_LOOP[loop.start :].startswith("On roule")


def test_choruses_and_short_repeats_stay_below_the_thresholds():
    assert detect_loop("Non, non, non\nJe reste debout") is None
    assert detect_loop("On roule toute la nuit\nOn roule toute la nuit\nFin") is None


@pytest.mark.parametrize("repeats,looping", [(3, False), (4, True)])
def test_ngram_threshold_is_a_parameter(repeats, looping):
    text = " ".join(["la rue"] * repeats)
    assert (detect_loop(text) is not None) is looping
    assert detect_loop(text, min_ngram_repeats=repeats) is not None


def test_the_earliest_loop_is_reported():
    text = "ok " * 5 + "\n" + "yo\n" * 4
    loop = detect_loop(text)
    assert (loop.kind, loop.unit, loop.start) == ("ngram", "ok", 0)


def test_repeated_ngram_share_counts_n_grams_seen_before():
    assert repeated_ngram_share("a b a b a b", n=2) == pytest.approx(1 - 2 / 5)
    assert repeated_ngram_share(WORD_LOOP, n=4) > 0.4
    assert repeated_ngram_share("trop court", n=4) == 0.0


def test_distinct_n_pools_texts_without_joining_them():
    assert distinct_n(["a b", "a b"], 2) == 0.5
    assert distinct_n(["a b", "c d"], 2) == 1.0
    assert distinct_n(["a", "b"], 2) == 0.0  # no bigram spans two texts
    assert distinct_n([VERSE], 1) > distinct_n([WORD_LOOP], 1)
