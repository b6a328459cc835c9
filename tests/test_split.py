"""Train/validation/test split: per artist, by group, deterministic (jaxrap.data.split)."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest

from jaxrap.data.corpus import SPLITS
from jaxrap.data.split import DROPPED, TEST, TRAIN, VALIDATION, split_songs
from jaxrap.errors import JaxrapError

FRACTIONS = {"val_fraction": 0.1, "test_fraction": 0.1}


def corpus(songs_per_artist: dict[str, int]) -> tuple[list[str], list[int]]:
    """Artists interleaved (as in a multi-source corpus), each song its own group."""
    artists = [a for a, n in songs_per_artist.items() for _ in range(n)]
    artists = [artists[k] for k in np.random.default_rng(0).permutation(len(artists))]
    return artists, list(range(len(artists)))


def per_artist(artists, assignment) -> dict[str, Counter]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for artist, split in zip(artists, assignment):
        counts[artist][int(split)] += 1
    return counts


def test_every_artist_is_in_every_split_in_proportion():
    artists, groups = corpus({"MC A": 300, "MC B": 70, "MC C": 12, "MC D": 3})
    assignment = split_songs(artists, groups, seed=0, **FRACTIONS)
    counts = per_artist(artists, assignment)
    assert counts["MC A"] == {TRAIN: 240, VALIDATION: 30, TEST: 30}
    assert counts["MC B"] == {TRAIN: 56, VALIDATION: 7, TEST: 7}
    assert counts["MC C"] == {TRAIN: 10, VALIDATION: 1, TEST: 1}
    assert counts["MC D"] == {TRAIN: 1, VALIDATION: 1, TEST: 1}  # the minimum: one song each


def test_split_is_deterministic_by_seed():
    artists, groups = corpus({"MC A": 50, "MC B": 40})
    first = split_songs(artists, groups, seed=7, **FRACTIONS)
    np.testing.assert_array_equal(first, split_songs(artists, groups, seed=7, **FRACTIONS))
    assert not np.array_equal(first, split_songs(artists, groups, seed=8, **FRACTIONS))


def test_adding_an_artist_does_not_reshuffle_the_others():
    artists, groups = corpus({"MC A": 40})
    alone = split_songs(artists, groups, seed=0, **FRACTIONS)
    with_other = split_songs(artists + ["MC B"] * 10, groups + list(range(40, 50)), seed=0, **FRACTIONS)
    np.testing.assert_array_equal(alone, with_other[:40])


def test_artists_with_too_few_songs_are_dropped_whole():
    artists, groups = corpus({"MC A": 20, "MC B": 2, "MC C": 4})
    assignment = split_songs(artists, groups, seed=0, min_artist_songs=5, **FRACTIONS)
    counts = per_artist(artists, assignment)
    assert counts["MC B"] == {DROPPED: 2} and counts["MC C"] == {DROPPED: 4}
    assert set(counts["MC A"]) == {TRAIN, VALIDATION, TEST}


def test_related_songs_share_a_split_and_count_once_for_the_minimum():
    # MC A: 12 songs in 4 groups of 3 (say, an original with its remix and live take).
    artists = ["MC A"] * 12 + ["MC B"] * 3
    groups = [k // 3 for k in range(12)] + [100, 100, 101]
    for seed in range(20):
        assignment = split_songs(artists, groups, seed=seed, **FRACTIONS)
        for group in set(groups):
            assert len({int(assignment[i]) for i in range(15) if groups[i] == group}) == 1
        assert set(assignment[:12]) == {TRAIN, VALIDATION, TEST}
        assert set(assignment[12:]) == {DROPPED}  # MC B has only 2 independent songs


def test_a_group_spanning_artists_belongs_to_its_main_artist():
    # Group 0: MC A's song and two covers by MC B; MC C's single song sits in MC A's group 1.
    artists = ["MC A", "MC B", "MC B", "MC A", "MC C"] + ["MC A"] * 3 + ["MC B"] * 3
    groups = [0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7]
    assignment = split_songs(artists, groups, seed=0, **FRACTIONS)
    assert assignment[0] == assignment[1] == assignment[2]  # owned by MC B (2 songs of 3)
    assert assignment[4] == DROPPED  # MC C could not be in every split
    for artist in ("MC A", "MC B"):
        assert {int(s) for a, s in zip(artists, assignment) if a == artist} == {TRAIN, VALIDATION, TEST}


@pytest.mark.parametrize("seed", range(10))
def test_random_corpora_keep_groups_whole_and_artists_everywhere(seed):
    rng = np.random.default_rng(seed)
    n = 400
    artists = [f"MC {k}" for k in rng.integers(0, 12, n)]
    groups = rng.integers(0, 300, n).tolist()  # random related groups, some across artists
    assignment = split_songs(artists, groups, seed=seed, val_fraction=0.15, test_fraction=0.05)
    by_group = defaultdict(set)
    for group, split in zip(groups, assignment):
        by_group[group].add(int(split))
    assert all(len(splits) == 1 for splits in by_group.values())
    for artist, counts in per_artist(artists, assignment).items():
        assert set(counts) in ({TRAIN, VALIDATION, TEST}, {DROPPED}), artist


@pytest.mark.parametrize(
    ("options", "message"),
    [({"val_fraction": 0.5, "test_fraction": 0.5}, "sum to less than 1"),
     ({"val_fraction": 0.0, "test_fraction": 0.1}, "must be > 0"),
     ({"val_fraction": 0.1, "test_fraction": 0.1, "min_artist_songs": 2}, "--min-artist-songs must be at least 3")],
)
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(JaxrapError, match=message):
        split_songs(["MC A"] * 10, list(range(10)), seed=0, **options)


def test_split_indices_follow_the_corpus_splits():
    assert [SPLITS[k] for k in (TRAIN, VALIDATION, TEST)] == ["train", "validation", "test"]
