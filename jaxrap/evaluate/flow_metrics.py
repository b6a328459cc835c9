"""Flow of a text: does it follow a rhyme scheme, how long are its bars, how rich are its rhymes.

Pure functions over bars (lines of lyrics: ``lyric_bars(text)`` drops blank lines and kept
``[section]`` markers), each returning counts that pool over many texts with ``+``:

- ``scheme_accuracy(bars, scheme)``: of the pairs of bars the scheme says rhyme (both in one
  group of ``jaxrap.phonetics.scheme``: every pair within a group, so an ``AAAA`` quatrain has 6),
  the share whose ``rhyme_key``s are equal. A pair of bars ending on the same word is a miss
  (Raplyzer's rule: a word does not rhyme with itself), as is a pair where a bar has no key or
  ends on an unstressed function word ("de", "que", "mon": ``jaxrap.phonetics.function_words``),
  which carries no rhyme. ``vowels`` N: keys of N vowels, so a pair meets the scheme only when
  all N vowels match (``rhyme_key(bar, N)``). ``first``: bars before it (a prompt's) set the
  targets but pairs among themselves are not scored.
- ``syllable_stats(bars, target, tolerance)``: syllables per bar (``count_syllables``), mean and
  the share within ±1, ±2 and ±tolerance of a target (the last: the bars that meet a
  ``--syllables N --syllable-tolerance T`` request).
- ``rhyme_density(bars)``: multi-syllable rhyme density after Raplyzer (Malmi et al. 2016, "DopeLearning"):
  for each bar, the longest run of vowels at its end (``bar_vowels``) matching the end of one of
  the ``window`` bars before it (default 4: the neighbours of an AABB, ABAB or ABBA quatrain),
  averaged over bars that have a previous bar. A pair ending on the same word does not count.
  1.0 is a one-syllable rhyme on every bar; Malmi et al. measure words, not bars, so the
  figures compare across texts scored here, not with theirs.
- ``function_word_endings(bars)``: how many bars end on an unstressed function word (a rhyme
  no listener hears; ``jaxrap eval`` reports the share).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from jaxrap.phonetics.rhyme import (
    bar_ending,
    bar_vowels,
    last_spoken_word,
    lyric_bars as lyric_bars,  # the sampler reads bars by the same rule
)
from jaxrap.phonetics.scheme import RhymeScheme, parse_rhyme_scheme
from jaxrap.phonetics.syllables import count_syllables

DENSITY_WINDOW = 4


@dataclasses.dataclass(frozen=True)
class SchemeScore:
    hits: int  # pairs the scheme says rhyme that do
    pairs: int  # pairs the scheme says rhyme

    @property
    def accuracy(self) -> float:
        return self.hits / self.pairs if self.pairs else 0.0

    def __add__(self, other: SchemeScore) -> SchemeScore:
        return SchemeScore(self.hits + other.hits, self.pairs + other.pairs)


@dataclasses.dataclass(frozen=True)
class SyllableStats:
    bars: int
    syllables: int  # summed over the bars
    within1: int  # bars within ±1 of the target (0 without one)
    within2: int
    within_tolerance: int = 0  # bars within ±tolerance of the target (0 without a target or tolerance)

    @property
    def mean(self) -> float:
        return self.syllables / self.bars if self.bars else 0.0

    @property
    def share_within1(self) -> float:
        return self.within1 / self.bars if self.bars else 0.0

    @property
    def share_within2(self) -> float:
        return self.within2 / self.bars if self.bars else 0.0

    @property
    def share_within_tolerance(self) -> float:
        return self.within_tolerance / self.bars if self.bars else 0.0

    def __add__(self, other: SyllableStats) -> SyllableStats:
        return SyllableStats(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))


@dataclasses.dataclass(frozen=True)
class RhymeDensity:
    total: int  # summed longest matching vowel runs
    bars: int  # bars scored (each with at least one bar before it)

    @property
    def density(self) -> float:
        return self.total / self.bars if self.bars else 0.0

    def __add__(self, other: RhymeDensity) -> RhymeDensity:
        return RhymeDensity(self.total + other.total, self.bars + other.bars)


def scheme_accuracy(bars: Sequence[str], scheme: RhymeScheme | str, *, first: int = 0, vowels: int = 1) -> SchemeScore:
    """Pairs of ``bars`` that ``scheme`` (a ``RhymeScheme`` or its letters) says rhyme, and how
    many do on ``vowels`` vowels; pairs whose later bar comes before ``first`` are not counted."""
    scheme = parse_rhyme_scheme(scheme) if isinstance(scheme, str) else scheme
    members: dict[int, list[int]] = {}
    for bar, group in enumerate(scheme.groups(len(bars))):
        if group is not None:
            members.setdefault(group, []).append(bar)
    endings = [bar_ending(bar, vowels) for bar in bars]
    keys, ends = [ending.rhyme for ending in endings], [ending.word for ending in endings]
    hits = pairs = 0
    for member_bars in members.values():
        for position, later in enumerate(member_bars):
            if later < first:
                continue
            for earlier in member_bars[:position]:
                pairs += 1
                hits += keys[later] is not None and keys[later] == keys[earlier] and ends[later] != ends[earlier]
    return SchemeScore(hits, pairs)


@dataclasses.dataclass(frozen=True)
class FunctionEndings:
    bars: int
    function_word: int  # of them, ending on an unstressed function word

    @property
    def share(self) -> float:
        return self.function_word / self.bars if self.bars else 0.0

    def __add__(self, other: FunctionEndings) -> FunctionEndings:
        return FunctionEndings(self.bars + other.bars, self.function_word + other.function_word)


def function_word_endings(bars: Sequence[str]) -> FunctionEndings:
    """How many of ``bars`` end on an unstressed function word (``bar_ending``)."""
    return FunctionEndings(len(bars), sum(bar_ending(bar).function_word for bar in bars))


def syllable_stats(bars: Sequence[str], target: int | None = None, tolerance: int | None = None) -> SyllableStats:
    """Syllables of ``bars``, and how many fall within ±1, ±2 and ±``tolerance`` of ``target`` (if given)."""
    counts = [count_syllables(bar) for bar in bars]
    if target is None:
        return SyllableStats(len(counts), sum(counts), 0, 0)

    def within(margin: int) -> int:
        return sum(abs(count - target) <= margin for count in counts)

    return SyllableStats(len(counts), sum(counts), within(1), within(2), within(tolerance) if tolerance is not None else 0)


def rhyme_density(bars: Sequence[str], window: int = DENSITY_WINDOW) -> RhymeDensity:
    """The module docstring's density over ``bars`` (summed runs, bars scored)."""
    vowels = [bar_vowels(bar) for bar in bars]
    ends = [_end_word(bar) for bar in bars]
    total = 0
    for bar in range(1, len(bars)):
        runs = [
            _common_suffix(vowels[bar], vowels[earlier])
            for earlier in range(max(0, bar - window), bar)
            if ends[earlier] is None or ends[earlier] != ends[bar]
        ]
        total += max(runs, default=0)
    return RhymeDensity(total, max(len(bars) - 1, 0))


def _end_word(bar: str) -> str | None:
    word = last_spoken_word(bar)
    return None if word is None else word.text


def _common_suffix(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    run = 0
    while run < min(len(a), len(b)) and a[-1 - run] == b[-1 - run]:
        run += 1
    return run
