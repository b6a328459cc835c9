"""Duplicate songs: exact and near copies dropped, related versions grouped (jaxrap.data.dedup)."""

from __future__ import annotations

import itertools
import random
import re

import numpy as np
import pytest
from invented_lyrics import invented_song

from jaxrap.data.dedup import (
    EXACT_DUPLICATE,
    NEAR_DUPLICATE,
    SHINGLE_WORDS,
    _Shingles,
    _similar_pairs,
    base_title,
    find_duplicates,
)


def run(songs, threshold=0.7):
    """songs: (text, title, artist, year) tuples."""
    texts, titles, artists, years = (list(column) for column in zip(*songs))
    return find_duplicates(texts, titles, artists, years, threshold=threshold)


def edited(text: str, fraction: float, seed: int) -> str:
    """``text`` with about ``fraction`` of its words replaced."""
    rng = random.Random(seed)
    words = text.split(" ")
    for k in rng.sample(range(len(words)), int(fraction * len(words))):
        words[k] = f"mot{rng.randrange(10**6)}"
    return " ".join(words)


def reference_jaccard(a: str, b: str) -> float:
    def shingles(text):
        words = re.findall(r"\w+", text.lower())
        return {tuple(words[i:i + SHINGLE_WORDS]) for i in range(max(1, len(words) - SHINGLE_WORDS + 1))}

    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def test_unrelated_songs_are_all_kept_in_their_own_groups():
    result = run([(invented_song(seed), f"Titre {seed}", "MC A", 2010) for seed in range(20)])
    assert result.kept.all()
    assert result.reason == [None] * 20
    assert len(set(result.group)) == 20


def test_exact_copy_under_another_artist_is_dropped_keeping_the_original():
    song = invented_song(1)
    copy = song.upper().replace(",", "").replace("\n\n", "\n")  # case and punctuation do not matter
    result = run([
        (copy, "Le Son (Live)", "MC B", 2012),
        (song, "Le Son", "MC A", 2015),
        (invented_song(2), "Autre", "MC A", 2015),
    ])
    assert result.reason == [EXACT_DUPLICATE, None, None]
    assert result.kept_copy.tolist() == [1, 1, 2]
    assert result.count(EXACT_DUPLICATE) == 1 and result.count(NEAR_DUPLICATE) == 0


def test_kept_copy_prefers_the_earliest_known_year_then_the_first_in_order():
    song = invented_song(3)
    result = run([(song, "Son", "MC A", -1), (song, "Son", "MC A", 2014), (song, "Son", "MC A", 2009), (song, "Son", "MC A", 2009)])
    assert result.kept_copy.tolist() == [2, 2, 2, 2]


def test_small_edits_are_near_duplicates_and_the_untagged_title_is_kept():
    song = invented_song(4, bars=30)
    remix = edited(song, 0.03, seed=0)
    assert 0.7 <= reference_jaccard(song, remix) < 1
    result = run([(remix, "Le Son (Remix)", "MC A", 2010), (song, "Le Son", "MC A", 2011)])
    assert result.reason == [NEAR_DUPLICATE, None]


def test_threshold_option_decides_what_is_near():
    song = invented_song(5, bars=30)
    variant = edited(song, 0.05, seed=1)
    similarity = reference_jaccard(song, variant)
    assert 0.5 < similarity < 0.9
    songs = [(song, "A", "MC A", 2000), (variant, "B", "MC A", 2001)]
    assert run(songs, threshold=similarity - 0.05).reason == [None, NEAR_DUPLICATE]
    kept_both = run(songs, threshold=1.0)
    assert kept_both.reason == [None, None]
    assert kept_both.group[0] == kept_both.group[1]  # still kept together for the split


def test_a_remix_sharing_the_chorus_is_kept_but_grouped_with_the_original():
    chorus = invented_song(6, bars=10)
    original = invented_song(7, bars=12) + "\n\n" + chorus
    remix = invented_song(8, bars=12) + "\n\n" + chorus
    assert 0.2 <= reference_jaccard(original, remix) < 0.7
    result = run([(original, "Nuit", "MC A", 2010), (remix, "Nuit", "MC B", 2011), (invented_song(9), "Jour", "MC A", 2010)])
    assert result.kept.all()
    assert result.group[0] == result.group[1] != result.group[2]


def test_versions_by_title_are_grouped_within_one_artist_only():
    songs = [
        (invented_song(10), "Crazy", "MC A", 2010),
        (invented_song(11), "Crazy - version radio", "MC A", 2010),
        (invented_song(12), "Crazy Remix (Ft. MC Z)", "MC A", 2011),
        (invented_song(13), "Crazy (Remix)", "MC B", 2011),  # another artist's song
        (invented_song(14), "Crazy Horse", "MC A", 2011),  # another song
    ]
    group = run(songs).group
    assert group[0] == group[1] == group[2]
    assert len({group[0], group[3], group[4]}) == 3


@pytest.mark.parametrize(
    ("title", "base"),
    [("Crazy - version radio", "crazy"), ("Crazy Remix (Ft. MC Z)", "crazy"), ("L'Été (Live à Paris)", "l ete"),
     ("Solitaire (DZ version)", "solitaire"), ("Réel {Remix} (Ft. X & Y)", "reel"), ("Nuit feat. MC Z", "nuit")],
)
def test_base_title(title, base):
    assert base_title(title) == base


def test_similar_pairs_match_brute_force_jaccard():
    # 40 songs in families of related versions with edits of 0-60% of the words.
    rng = random.Random(0)
    texts = []
    for family in range(8):
        song = invented_song(100 + family, bars=20)
        texts += [edited(song, rng.choice([0.0, 0.02, 0.1, 0.2, 0.35, 0.6]), seed=rng.randrange(10**6)) for _ in range(5)]
    words = [re.findall(r"\w+", t.lower()) for t in texts]
    pairs, similarity = _similar_pairs(_Shingles.of(words), (0.7, 0.2))
    found = dict(zip(map(tuple, pairs.tolist()), similarity))
    reference = {(i, j): reference_jaccard(texts[i], texts[j]) for i, j in itertools.combinations(range(len(texts)), 2)}
    # LSH finds a pair at Jaccard 0.2 with probability 0.93, from 0.35 on with > 0.9997.
    assert {pair for pair, s in reference.items() if s >= 0.35} <= set(found)
    assert len(found) >= 0.85 * sum(s >= 0.2 for s in reference.values())
    for pair, s in found.items():
        assert reference[pair] >= 0.2
        assert s == pytest.approx(reference[pair], abs=0.15)
        assert (s >= 0.7) == (reference[pair] >= 0.7)  # every decision is the exact one


def test_result_is_deterministic_and_short_songs_work():
    songs = [(invented_song(s, bars=1, words_per_bar=3), f"T{s}", "MC A", 2000) for s in range(5)]
    songs.append((songs[0][0], "T0 (Live)", "MC A", 2001))
    first, second = run(songs), run(songs)
    np.testing.assert_array_equal(first.kept_copy, second.kept_copy)
    np.testing.assert_array_equal(first.group, second.group)
    assert first.reason[-1] == EXACT_DUPLICATE
