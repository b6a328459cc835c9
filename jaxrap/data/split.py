"""Train / validation / test split by song: deterministic, per artist, leak-free.

The unit of the split is a *group* of related songs (see ``jaxrap.data.dedup``): a group
goes to one split whole, so no song shares its chorus with a song of another split. Each
group belongs to one artist (the artist with most songs in it; ties by name), and the
groups of each artist are split on their own, so every artist is in every split:

- the artist's groups are shuffled by a generator seeded with (seed, artist name): the
  same seed gives the same split, and adding another artist changes nothing for the rest;
- test takes groups until it holds ``round(test_fraction * songs)`` songs, at least one
  group; validation likewise; train keeps the rest, at least one group;
- an artist needs at least ``min_artist_songs`` (>= 3) groups for that; artists with fewer
  are dropped whole and counted (SMALL_ARTIST), rather than missing from a split.
"""

from __future__ import annotations

import zlib
from collections import Counter, defaultdict

import numpy as np

from jaxrap.data.corpus import SPLITS
from jaxrap.errors import JaxrapError

SMALL_ARTIST = "small_artist"
DROPPED = -1
TRAIN, VALIDATION, TEST = (SPLITS.index(name) for name in ("train", "validation", "test"))


def split_songs(
    artists: list[str],
    groups: list[int] | np.ndarray,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    min_artist_songs: int = 3,
) -> np.ndarray:
    """(n,) int: the index in SPLITS of each song's split, or DROPPED (artist too small).

    ``groups[i]`` is the id of the related-songs group of song i; songs of one group always
    land in the same split.
    """
    if min_artist_songs < len(SPLITS):
        raise JaxrapError(f"--min-artist-songs must be at least {len(SPLITS)} (one song per split), got {min_artist_songs}")
    if not (0 < val_fraction and 0 < test_fraction and val_fraction + test_fraction < 1):
        raise JaxrapError(
            f"--val-fraction ({val_fraction}) and --test-fraction ({test_fraction}) must be > 0 and sum to less than 1"
        )
    groups = np.asarray(groups)
    members: dict[int, list[int]] = defaultdict(list)
    for i, group in enumerate(groups.tolist()):
        members[group].append(i)
    owner = {group: _owner([artists[i] for i in songs]) for group, songs in members.items()}
    groups_of: dict[str, list[int]] = defaultdict(list)
    for group in members:  # insertion order: first appearance in the input
        groups_of[owner[group]].append(group)

    assignment = np.full(len(artists), DROPPED, dtype=np.int64)
    for artist in sorted(groups_of):
        artist_groups = groups_of[artist]
        if len(artist_groups) < min_artist_songs:
            continue
        rng = np.random.default_rng([seed, zlib.crc32(artist.encode())])  # per artist: independent of the others
        order = [artist_groups[k] for k in rng.permutation(len(artist_groups))]
        sizes = [len(members[group]) for group in order]
        for group, split in zip(order, _fill(sizes, val_fraction, test_fraction)):
            assignment[members[group]] = split
    # A small artist's song inside another artist's group would be its only split.
    small = {artist for artist, owned in groups_of.items() if len(owned) < min_artist_songs}
    small |= set(artists) - set(groups_of)
    assignment[[i for i, artist in enumerate(artists) if artist in small]] = DROPPED
    return assignment


def _owner(group_artists: list[str]) -> str:
    counts = Counter(group_artists)
    return min(counts, key=lambda artist: (-counts[artist], artist))


def _fill(sizes: list[int], val_fraction: float, test_fraction: float) -> list[int]:
    """The split of each group, in order: test first, then validation, then train.

    Each split gets at least one group; test and validation stop once they reach their
    share of the songs.
    """
    total = sum(sizes)
    splits: list[int] = []
    remaining = len(sizes)
    for split, fraction, groups_still_needed in ((TEST, test_fraction, 2), (VALIDATION, val_fraction, 1)):
        target, taken = max(1, round(fraction * total)), 0
        while remaining > groups_still_needed and taken < target:
            taken += sizes[len(splits)]
            splits.append(split)
            remaining -= 1
    return splits + [TRAIN] * remaining
