"""Lyric quality of a set of texts: repetition, loops, diversity and rhyme, from text alone.

Built on the TUI's metrics (``repetition``: rep-n, ``detect_loop``, distinct-n; ``rhyme``:
``rhyme_key``), aggregated over many texts so generated samples and the human lyrics they
continue can be compared number for number:

- ``rep4``: mean over texts of the share of word 4-grams that repeat an earlier one;
- ``loop_rate``: share of texts that fall into a loop (a bar 3 times in a row, or a 1-12 word
  n-gram 4 times back to back; see ``detect_loop``);
- ``distinct1`` / ``distinct2``: distinct word uni/bigrams over all of them, pooled;
- ``rhyme_rate``: share of pairs of consecutive bars whose endings rhyme (equal
  ``rhyme_key``), pooled. Bars are lines with a key (blank lines, [markers] and lines ending
  on no word said, such as an emoji, are skipped). A pair of identical bars is left out: a loop repeats,
  it does not rhyme. Limits are the heuristic's (one final syllable, spelling rules, see
  ``jaxrap.phonetics.rhyme``) plus the pairing: only AABB-style neighbours count, so an ABAB
  quatrain scores 0 although it rhymes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from jaxrap.evaluate.repetition import detect_loop, distinct_n, repeated_ngram_share, words_with_offsets
from jaxrap.phonetics.rhyme import rhyme_key


@dataclasses.dataclass(frozen=True)
class LyricStats:
    texts: int
    rep4: float
    loop_rate: float
    distinct1: float
    distinct2: float
    rhyme_rate: float
    rhyme_pairs: int  # consecutive bar pairs rhyme_rate is over

    def as_dict(self) -> dict[str, float | int]:
        return dataclasses.asdict(self)


def rhyming_pairs(text: str) -> tuple[int, int]:
    """(pairs of consecutive bars that rhyme, pairs counted) in ``text``; identical bars are skipped."""
    bars = [(key, tuple(word for word, _ in words_with_offsets(line))) for line in text.split("\n") if (key := rhyme_key(line))]
    rhyming = counted = 0
    for (key, words), (next_key, next_words) in zip(bars, bars[1:]):
        if words == next_words:
            continue
        counted += 1
        rhyming += key == next_key
    return rhyming, counted


def lyric_stats(texts: Sequence[str]) -> LyricStats:
    """The module docstring's metrics over ``texts`` (zeros for an empty list)."""
    if not texts:
        return LyricStats(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)
    pairs = [rhyming_pairs(text) for text in texts]
    rhyming, counted = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
    return LyricStats(
        texts=len(texts),
        rep4=sum(repeated_ngram_share(text, 4) for text in texts) / len(texts),
        loop_rate=sum(detect_loop(text) is not None for text in texts) / len(texts),
        distinct1=distinct_n(texts, 1),
        distinct2=distinct_n(texts, 2),
        rhyme_rate=rhyming / counted if counted else 0.0,
        rhyme_pairs=counted,
    )
