"""Memorisation: the longest run of words a text copies verbatim from the training lyrics.

Words are ``repetition.words_with_offsets``'s (case-folded runs of letters and digits), so
punctuation and line breaks do not hide a copy. ``TrainWordIndex`` hashes every word n-gram
of the training songs (n = 1..ANCHOR, never across two songs) into sorted 64-bit arrays, and
keeps where each ANCHOR-gram occurs. For a text of m words:

- a run of k < ANCHOR words is copied iff its k-gram is in the k-gram set (binary search);
- a run of ANCHOR or more words starts with a copied ANCHOR-gram: each match is checked word
  for word at the training positions holding that gram, then extended word by word as long
  as text and training song agree.

Lookups cost O(m log N) for N training words plus the extensions of actual matches, instead
of comparing the text with every position of the corpus. Hash collisions (64-bit polynomial
hashes) could only make a run under ANCHOR words look copied; longer runs are verified.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np

from jaxrap.evaluate.repetition import words_with_offsets

ANCHOR = 8  # words; also the "copies 8 or more words in a row" threshold
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant of the polynomial hash
_UNKNOWN = -1  # a text word absent from the training lyrics: no n-gram through it matches


def text_words(text: str) -> list[str]:
    return [word for word, _ in words_with_offsets(text)]


def _gram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """(len(ids) - n + 1,) uint64 hash of each n-gram of ``ids`` (wrapping arithmetic)."""
    count = len(ids) - n + 1
    hashes = np.zeros(max(count, 0), np.uint64)
    if count <= 0:
        return hashes
    power = np.uint64(1)
    with np.errstate(over="ignore"):
        for t in range(n):
            hashes = hashes + (ids[t : t + count].astype(np.uint64) + np.uint64(1)) * power
            power = power * _MULTIPLIER
    return hashes


def _valid_windows(bad: np.ndarray, n: int) -> np.ndarray:
    """(len - n + 1,) bool: the n-word window starting there holds no ``bad`` position."""
    bad_before = np.concatenate([[0], np.cumsum(bad)])  # (len + 1,)
    return (bad_before[n:] - bad_before[:-n]) == 0 if len(bad) >= n else np.zeros(0, bool)


class TrainWordIndex:
    """Every word n-gram (n <= ANCHOR) of the training songs, for ``longest_copied_run``."""

    def __init__(self, songs: Iterable[str], anchor: int = ANCHOR):
        self.anchor = anchor
        self.vocabulary: dict[str, int] = {}
        stream: list[int] = []
        song_starts: list[int] = []
        for song in songs:
            song_starts.append(len(stream))
            stream.extend(self.vocabulary.setdefault(word, len(self.vocabulary)) for word in text_words(song))
        self.stream = np.asarray(stream, np.int64)  # (N,) word ids, songs back to back
        song_of_word = np.zeros(len(stream), np.int64)
        song_of_word[np.asarray(song_starts[1:], np.int64)] = 1
        self._song_of_word = song_of_word = np.cumsum(song_of_word)  # (N,)
        # boundary[j]: word j starts a new song, so a window over j and j - 1 spans two songs.
        boundary = np.concatenate([[False], song_of_word[1:] != song_of_word[:-1]])
        self._grams: list[np.ndarray] = []  # n - 1 -> sorted unique hashes of n-grams, n < anchor
        for n in range(1, anchor + 1):
            valid = _valid_windows(boundary[1:], n - 1) if n > 1 else np.ones(len(stream), np.bool_)
            valid = valid[: max(len(stream) - n + 1, 0)]
            hashes = _gram_hashes(self.stream, n)[valid]
            if n < anchor:
                self._grams.append(np.unique(hashes))
            else:
                order = np.argsort(hashes, kind="stable")
                self._anchor_hashes = hashes[order]  # sorted
                self._anchor_starts = np.flatnonzero(valid)[order]  # stream position of each

    @property
    def num_words(self) -> int:
        return len(self.stream)

    def longest_copied_run(self, text: str) -> int:
        """The most consecutive words of ``text`` found, in order, inside one training song."""
        ids = np.asarray([self.vocabulary.get(word, _UNKNOWN) for word in text_words(text)], np.int64)  # (m,)
        unknown = ids == _UNKNOWN
        longest = 0
        for n in range(1, self.anchor):
            valid = _valid_windows(unknown, n)
            if not valid.any():
                break
            hashes = _gram_hashes(ids, n)[valid]
            grams = self._grams[n - 1]  # sorted
            where = np.minimum(np.searchsorted(grams, hashes), len(grams) - 1)
            if not len(grams) or not np.any(grams[where] == hashes):
                return longest
            longest = n
        valid = _valid_windows(unknown, self.anchor)
        hashes = _gram_hashes(ids, self.anchor)
        for start in np.flatnonzero(valid):
            if len(ids) - start <= longest:
                break  # no run starting here or later can be longer
            low, high = np.searchsorted(self._anchor_hashes, hashes[start], side="left"), np.searchsorted(
                self._anchor_hashes, hashes[start], side="right"
            )
            if low == high:
                continue
            positions = self._anchor_starts[low:high]  # candidate training positions (K,)
            window = self.stream[positions[:, None] + np.arange(self.anchor)]  # (K, anchor)
            positions = positions[(window == ids[start : start + self.anchor]).all(axis=1)]  # no collisions
            length = self.anchor
            while len(positions) and start + length < len(ids):
                positions = positions[positions + length < len(self.stream)]
                ahead = positions + length  # the next word, in the same song
                keep = (self.stream[ahead] == ids[start + length]) & (self._song_of_word[ahead] == self._song_of_word[positions])
                if not keep.any():
                    break
                positions, length = positions[keep], length + 1
            if len(positions):
                longest = max(longest, length)
        return longest


@dataclasses.dataclass(frozen=True)
class MemorisationStats:
    texts: int
    mean_longest_run: float  # words, mean over texts of each one's longest copied run
    max_longest_run: int
    copy_rate: float  # share of texts that copy ANCHOR (8) or more words in a row

    def as_dict(self) -> dict[str, float | int]:
        return dataclasses.asdict(self)


def memorisation_stats(index: TrainWordIndex, texts: Sequence[str]) -> MemorisationStats:
    runs = [index.longest_copied_run(text) for text in texts]
    if not runs:
        return MemorisationStats(0, 0.0, 0, 0.0)
    return MemorisationStats(len(runs), sum(runs) / len(runs), max(runs), sum(run >= index.anchor for run in runs) / len(runs))
