"""Duplicate songs: drop exact and near-exact copies, group related versions for the split.

A song is compared through its 5-word shingles, after lowercasing, folding accents and
dropping punctuation and ``[...]`` markers ("Le mystère féminin" and a copy typed
"Le mystre feminin" share almost all shingles). Two songs are
- *exact duplicates* when those word sequences are identical;
- *near duplicates* when the Jaccard similarity of their shingle sets is at least
  ``threshold`` (default 0.7: live takes, radio edits, the same text under two titles);
- *related* when their Jaccard is at least RELATED_THRESHOLD (a remix that keeps the
  chorus), or when one title is a version of the other's by the same artist
  ("Crazy - version radio", "Crazy Remix (Ft. X)" and "Crazy").
Duplicates are dropped, keeping one copy per cluster; related songs stay, but share a group
id so the split puts them in the same split (a remix in validation would leak its chorus).

The copy kept is the first by: a title without a version tag (the original rather than
the remix or live take), a known year, the earliest year, the longest text, the earliest
position in the sources. The result is deterministic.

Near-duplicate search is MinHash with LSH banding, vectorised in numpy: candidate pairs
come only from songs that collide in some band, so the cost grows with the number of
similar pairs, not with n^2. A pair is found with probability 0.93 at Jaccard 0.2 and
> 0.9997 from 0.35 on; the ones whose MinHash estimate lies near a threshold are settled
with their exact Jaccard.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from jaxrap.data.clean import bars

EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"

SHINGLE_WORDS = 5
RELATED_THRESHOLD = 0.2
# 128 hash functions in 64 bands of 2: a pair with Jaccard s becomes a candidate with
# probability 1 - (1 - s^2)^64, i.e. 0.93 at s = 0.2 and > 0.9999 from s = 0.4 on.
_BANDS, _ROWS = 64, 2
_NUM_HASHES = _BANDS * _ROWS
_HASH_SEED = 20240611  # fixed: the same corpus gives the same signatures in every run
_EXACT_MARGIN = 0.15  # > 3 standard deviations of the MinHash estimate

_VERSION_TAG = re.compile(
    r"\b(remix|rmx|mix|live|version|edit|acoustique|acoustic|unplugged|extended|radio|clip|"
    r"a ?capp?ella|bonus|reprise|session|instrumental)\b"
)
_TITLE_ASIDES = re.compile(r"\([^)]*\)|\[[^\]]*\]|\{[^}]*\}|\s+-\s+.*$|\b(?:ft|feat|featuring)\b.*$")
_COMBINING_MARKS = re.compile("[\u0300-\u036f]")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Duplicates:
    kept_copy: np.ndarray  # (n,) int: the kept song each song duplicates; itself when kept
    reason: list[str | None]  # EXACT_DUPLICATE / NEAR_DUPLICATE for dropped songs, None for kept
    group: np.ndarray  # (n,) int: related-songs group of kept songs (smallest member index); -1 if dropped

    @property
    def kept(self) -> np.ndarray:
        return self.kept_copy == np.arange(len(self.kept_copy))

    def count(self, reason: str) -> int:
        return sum(r == reason for r in self.reason)


def find_duplicates(
    texts: list[str], titles: list[str], artists: list[str], years: list[int], *, threshold: float = 0.7
) -> Duplicates:
    """Duplicates and related groups of the cleaned songs ``texts`` (parallel metadata lists)."""
    n = len(texts)
    words = [_comparable_words(text) for text in texts]
    tagged = [bool(_VERSION_TAG.search(_fold(title))) for title in titles]
    # Smaller is preferred as the copy to keep (see module doc).
    preference = sorted(range(n), key=lambda i: (tagged[i], years[i] < 0, years[i], -len(texts[i]), i))
    rank = np.empty(n, dtype=np.int64)
    rank[preference] = np.arange(n)

    # Exact duplicates: identical word sequences.
    exact = _UnionFind(n)
    first_with_key: dict[bytes, int] = {}
    for i in range(n):
        key = hashlib.blake2b(" ".join(words[i]).encode(), digest_size=16).digest()
        exact.union(first_with_key.setdefault(key, i), i)
    unique = np.array([i for i in range(n) if exact.find(i) == i], dtype=np.int64)

    # Near duplicates and related songs among the distinct texts.
    shingles = _Shingles.of([words[i] for i in unique])
    pairs, similarity = _similar_pairs(shingles, (threshold, RELATED_THRESHOLD))
    pairs = unique[pairs] if len(pairs) else pairs.reshape(0, 2)
    near = _UnionFind(n)
    for i in range(n):
        near.union(exact.find(i), i)
    for (i, j), s in zip(pairs, similarity):
        if s >= threshold:
            near.union(i, j)
    best: dict[int, int] = {}
    for i in range(n):
        root = near.find(i)
        if root not in best or rank[i] < rank[best[root]]:
            best[root] = i
    kept_copy = np.array([best[near.find(i)] for i in range(n)], dtype=np.int64)
    reason = [
        None if kept_copy[i] == i else EXACT_DUPLICATE if exact.find(i) == exact.find(kept_copy[i]) else NEAR_DUPLICATE
        for i in range(n)
    ]

    # Every pair found is related (s >= RELATED_THRESHOLD) or a near duplicate (one kept copy).
    related = _UnionFind(n)
    for i, j in [*pairs, *_version_title_pairs(titles, artists, tagged)]:
        related.union(kept_copy[i], kept_copy[j])
    group = np.array([related.find(i) if kept_copy[i] == i else -1 for i in range(n)], dtype=np.int64)
    return Duplicates(kept_copy, reason, group)


def _fold(text: str) -> str:
    """Lowercase without accents: "Été" -> "ete"."""
    return _COMBINING_MARKS.sub("", unicodedata.normalize("NFKD", text.lower()))


def _comparable_words(text: str) -> list[str]:
    return _WORD.findall(_fold("\n".join(bars(text))))


def base_title(title: str) -> str:
    """The title a version belongs to: "Crazy - version radio" and "Crazy Remix (Ft. X)" -> "crazy"."""
    folded = _TITLE_ASIDES.sub(" ", _fold(title))
    return " ".join(_WORD.findall(_VERSION_TAG.sub(" ", folded)))


def _version_title_pairs(titles: list[str], artists: list[str], tagged: list[bool]) -> list[tuple[int, int]]:
    """(version, song) pairs of one artist where the version's base title is the song's."""
    by_base: dict[tuple[str, str], int] = {}
    for i, title in enumerate(titles):
        base = base_title(title)
        if base:
            by_base.setdefault((artists[i], base), i)
    pairs = []
    for i, title in enumerate(titles):
        if tagged[i]:
            first = by_base.get((artists[i], base_title(title)))
            if first is not None and first != i:
                pairs.append((i, first))
    return pairs


def _word_hashes(words: list[str]) -> np.ndarray:
    """(W,) uint64 hashes of ``words``, stable across runs (unlike Python's salted hash())."""
    import pandas as pd  # factorize: a C hash table, far faster than a dict over millions of words

    codes, vocabulary = pd.factorize(np.array(words, dtype=object))
    table = np.fromiter(
        (int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little") for w in vocabulary),
        dtype=np.uint64, count=len(vocabulary),
    )
    return table[codes]


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the whole word."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


@dataclass(frozen=True)
class _Shingles:
    """The SHINGLE_WORDS-word windows of m songs as 64-bit hashes, flat: song k owns
    ``hashes[starts[k]:starts[k] + lengths[k]]`` (repeats included; a song shorter than a
    window is one shingle of all its words)."""

    hashes: np.ndarray  # (N,) uint64
    starts: np.ndarray  # (m,) int64
    lengths: np.ndarray  # (m,) int64, all >= 1

    @classmethod
    def of(cls, songs: list[list[str]]) -> _Shingles:
        word_counts = np.array([len(song) for song in songs], dtype=np.int64)  # (m,)
        word_hashes = _word_hashes([w for song in songs for w in song])  # (W,)
        word_starts = np.cumsum(word_counts) - word_counts
        lengths = np.maximum(1, word_counts - SHINGLE_WORDS + 1)
        song = np.repeat(np.arange(len(songs)), lengths)  # (N,) song of each shingle
        first_word = word_starts[song] + np.arange(len(song)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        word_end = (word_starts + word_counts)[song]
        padded = np.concatenate([word_hashes, np.zeros(SHINGLE_WORDS, np.uint64)])
        hashes = np.zeros(len(song), dtype=np.uint64)
        with np.errstate(over="ignore"):  # uint64 arithmetic wraps on purpose
            for offset in range(SHINGLE_WORDS):
                position = first_word + offset
                word = np.where(position < word_end, padded[np.minimum(position, len(padded) - 1)], np.uint64(0))
                hashes = (hashes * np.uint64(0x100000001B3)) ^ word
        return cls(_mix64(hashes), np.cumsum(lengths) - lengths, lengths)

    def distinct(self, k: int) -> np.ndarray:
        return np.unique(self.hashes[self.starts[k]:self.starts[k] + self.lengths[k]])


def minhash_signatures(shingles: _Shingles) -> np.ndarray:
    """(m, _NUM_HASHES) uint32 MinHash signatures of the m songs' shingle sets."""
    rng = np.random.default_rng(_HASH_SEED)
    multipliers = rng.integers(0, 2**63, _NUM_HASHES, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd
    offsets = rng.integers(0, 2**63, _NUM_HASHES, dtype=np.uint64)
    signatures = np.empty((len(shingles.starts), _NUM_HASHES), dtype=np.uint32)
    hashed = np.empty_like(shingles.hashes)  # (N,) reused buffer
    with np.errstate(over="ignore"):
        for k in range(_NUM_HASHES):
            # Multiply-shift hashing keeps the high 32 bits of a*x + b; a shift is monotone,
            # so it can come after the minimum.
            np.multiply(shingles.hashes, multipliers[k], out=hashed)
            np.add(hashed, offsets[k], out=hashed)
            signatures[:, k] = np.minimum.reduceat(hashed, shingles.starts) >> np.uint64(32)
    return signatures


def _candidate_pairs(signatures: np.ndarray) -> np.ndarray:
    """(C, 2) pairs i < j of songs whose signatures agree on a whole band (LSH banding)."""
    m = len(signatures)
    candidates = [np.zeros(0, np.int64)]
    for band in range(_BANDS):
        rows = signatures[:, band * _ROWS:(band + 1) * _ROWS].astype(np.uint64)  # (m, 2)
        keys = (rows[:, 0] << np.uint64(32)) | rows[:, 1]  # (m,) the band's bucket
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        run_starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        run_lengths = np.diff(np.r_[run_starts, m])
        for length in np.unique(run_lengths[run_lengths > 1]):  # all buckets of one size at once
            bucket_starts = run_starts[run_lengths == length]
            members = np.sort(order[bucket_starts[:, None] + np.arange(length)], axis=1)  # (buckets, length)
            i, j = np.triu_indices(length, k=1)
            candidates.append((members[:, i] * m + members[:, j]).ravel())
    codes = np.unique(np.concatenate(candidates))
    return np.stack([codes // m, codes % m], axis=1)


def _similar_pairs(shingles: _Shingles, thresholds: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(pairs (P, 2) i < j, similarity (P,)) of the songs with Jaccard >= min(thresholds).

    The signature agreement estimates Jaccard (std <= 0.045 with 128 hashes); pairs whose
    estimate lies within _EXACT_MARGIN of a threshold get their exact Jaccard, so that every
    decision against a threshold is (with overwhelming probability) the exact one.
    """
    if len(shingles.starts) < 2:
        return np.zeros((0, 2), np.int64), np.zeros(0)
    signatures = minhash_signatures(shingles)
    pairs = _candidate_pairs(signatures)
    similarity = (signatures[pairs[:, 0]] == signatures[pairs[:, 1]]).mean(axis=1)  # (C,)
    keep = similarity >= min(thresholds) - _EXACT_MARGIN
    pairs, similarity = pairs[keep], similarity[keep]
    uncertain = np.flatnonzero(np.any(np.abs(similarity[:, None] - np.array(thresholds)) < _EXACT_MARGIN, axis=1))
    distinct = functools.cache(shingles.distinct)  # a song's sorted distinct shingles, computed once
    for k in uncertain:
        similarity[k] = _jaccard(distinct(int(pairs[k, 0])), distinct(int(pairs[k, 1])))
    keep = similarity >= min(thresholds)
    return pairs[keep], similarity[keep]


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    common = len(np.intersect1d(a, b, assume_unique=True))
    return common / (len(a) + len(b) - common)


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        # The smaller index becomes the root, so roots are deterministic.
        a, b = self.find(int(i)), self.find(int(j))
        if a != b:
            self.parent[max(a, b)] = min(a, b)
