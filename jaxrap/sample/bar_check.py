"""What each bar of a song must be, whether a candidate bar is it, and the record of a kept bar.

Host-side and word-level: the truth the candidates are checked against is the phonetics
package's (``count_syllables`` and ``bar_ending``, lexicon first), the same functions
``jaxrap.evaluate.flow_metrics`` scores with; the on-device steering (``steering``) only
approximates it token by token. With ``rhyme_vowels`` N, sounds are keys of N vowels
(``rhyme_key``: "a-i"); a bar that says fewer than N vowels has none.

``SongTargets`` follows one sample's song bar by bar. Bars are numbered from the prompt's
first: the prompt's complete lines (blank lines and ``[markers]`` aside, as
``phonetics.rhyme.lyric_bars`` reads bars) are bars 0, 1, ...; the first generated bar
completes the prompt's unfinished last line, if it has one. A rhyme group of the scheme (a
letter in one repetition of the pattern, ``RhymeScheme``) takes the sound of its first bar
with a rhyme key, so a prompt ending on a bar sets the target of that bar's letter;
``rhyme_with`` sets the sound of the group the first generated bar with a letter belongs to,
whatever the prompt said. ``later_bars`` are bars written after the first generated one (the
writing room regenerating a bar in place, ``Generator.suggest_bars``): recorded after the
prompt's, they set the sound of a group whose members above do not.

A bar meets its target when it is complete (it ends with a newline or the end of the song),
says a word, has ``low``..``high`` syllables, and (with a letter) ends on a sound that can
rhyme, the group's sound if it has one, on a word no earlier bar of its group (or the rhyme
word) ended on (a word does not rhyme with itself) and that is no unstressed function word
("de", "que", "mon": ``jaxrap.phonetics.function_words``; such a bar sets no group's sound
either). The first bar of a group must end on one of ``opening_sounds`` (its last vowel's key)
when given (``bar_decode`` gives the sounds common enough in the model's vocabulary for the
rest of the group to find rhymes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from jaxrap.phonetics.rhyme import BarEnding, bar_ending, key_vowels, lyric_bars
from jaxrap.phonetics.scheme import parse_rhyme_scheme, rhyme_target_key
from jaxrap.phonetics.syllables import count_syllables


@dataclasses.dataclass(frozen=True)
class BarTarget:
    index: int  # the bar's number in the song (the prompt's bars first)
    letter: str | None  # its scheme letter; None: a free bar, or no scheme
    rhyme_key: str | None  # the sound it must end on; None: any (first of its group, or free)
    used_words: frozenset[str]  # words it must not end on (its group's earlier end words)
    low: int  # fewest syllables (1 without a target)
    high: int | None  # most syllables; None: no target
    opening_sounds: frozenset[str] | None = None  # sounds a group's first bar may end on (last vowel's key); None: any
    rhyme_vowels: int = 1  # vowels a rhyme is made of (SamplingParams.rhyme_vowels)


@dataclasses.dataclass(frozen=True)
class BarCheck:
    """A candidate bar measured against its target."""

    line: str  # the whole line, without its newline
    syllables: int
    rhyme_key: str | None
    word: str | None  # the last word said
    complete: bool  # it ended (newline or end of song) within its tokens
    failures: tuple[str, ...]  # why it misses its target, one short reason each
    syllables_off: int  # syllables outside the target's range
    rhyme_missed: bool
    function_word: bool = False  # it ends on an unstressed function word: its sound sets no rhyme

    @property
    def met(self) -> bool:
        return not self.failures

    def closeness(self) -> tuple[int, int, int, int]:
        """Sort key of the candidates when none meets its target: fewest misses, a rhyme before
        a length, then the nearest length."""
        return (not self.complete, len(self.failures), self.rhyme_missed, self.syllables_off)


def check_bar(line: str, target: BarTarget, *, complete: bool) -> BarCheck:
    """``line`` (a whole bar without its newline) against ``target``."""
    syllables = count_syllables(line)
    ending = bar_ending(line, target.rhyme_vowels)
    failures = []
    if not complete:
        failures.append("not ended within its tokens")
    if ending.word is None:
        failures.append("no word said")
    high = syllables if target.high is None else target.high
    off = max(target.low - syllables, syllables - high, 0)
    if off:
        wanted = f"{target.low}-{target.high}" if target.high is not None else f"at least {target.low}"
        failures.append(f"{syllables} syllable{'' if syllables == 1 else 's'}, not {wanted}")
    rhyme = _rhyme_failure(line, ending, target) if target.letter is not None and ending.word is not None else None
    if rhyme is not None:
        failures.append(rhyme)
    rhyme_missed = target.letter is not None and (ending.word is None or rhyme is not None)
    return BarCheck(line, syllables, ending.key, ending.word, complete, tuple(failures), off, rhyme_missed, ending.function_word)


def _rhyme_failure(line: str, ending: BarEnding, target: BarTarget) -> str | None:
    key, word, vowels = ending.key, ending.word, target.rhyme_vowels
    if ending.function_word:
        return f"ends on {word!r}, a function word, which carries no rhyme"
    if key is None:
        if vowels > 1 and bar_ending(line).key is not None:
            return f"ends on {word!r} with fewer than {vowels} vowels said"
        return f"ends on {word!r}, which cannot rhyme"
    if target.rhyme_key is not None and key != target.rhyme_key:
        return f"ends on '{key}' ({word}), not '{target.rhyme_key}'"
    if target.rhyme_key is None and target.opening_sounds is not None and key_vowels(key)[1] not in target.opening_sounds:
        return f"ends on '{key}' ({word}), too rare a sound for its group to rhyme on"
    if word in target.used_words:
        return f"ends on {word!r} again: a word does not rhyme with itself"
    return None


def closest(checks: Sequence[BarCheck], rng: np.random.Generator) -> int:
    """Index of the check nearest its target (``BarCheck.closeness``), ties drawn uniformly."""
    keys = [check.closeness() for check in checks]
    best = min(keys)
    return int(rng.choice([i for i, key in enumerate(keys) if key == best]))


@dataclasses.dataclass(frozen=True)
class Bar:
    """A bar a sample kept, with its facts: ``TextDelta.bar`` of the delta that shows it."""

    index: int  # its number in the song, the prompt's bars first (0-based)
    text: str  # the whole line (with the prompt's unfinished line for a first bar), without its newline
    syllables: int
    rhyme_key: str | None  # the sound it ends on (of N vowels with rhyme_vowels N: "a-i")
    word: str | None  # the last word said
    letter: str | None  # its scheme letter; None: free, or no scheme
    target_key: str | None  # the sound it had to end on; None: any
    syllable_range: tuple[int, int] | None  # the syllables it had to have; None: any
    met: bool  # it met every target
    reason: str | None  # why not, when not: the reasons joined with "; "
    candidates: int  # candidate bars drawn for it, over every attempt
    redraws: int  # attempts after the first


class SongTargets:
    """The targets of one sample's bars as its song grows (the module docstring's rules)."""

    def __init__(
        self,
        prompt_text: str,
        *,
        rhyme_scheme: str | None,
        rhyme_with: str | None,
        syllables: int | None,
        tolerance: int,
        opening_sounds: frozenset[str] | None = None,
        later_bars: Sequence[str] = (),
        rhyme_vowels: int = 1,
    ):
        self.scheme = None if rhyme_scheme is None else parse_rhyme_scheme(rhyme_scheme)
        self.opening_sounds = opening_sounds
        self.rhyme_vowels = rhyme_vowels
        self.low = 1 if syllables is None else max(syllables - tolerance, 1)
        self.high = None if syllables is None else syllables + tolerance
        complete_lines, _, self.unfinished = prompt_text.rpartition("\n")
        self.first_generated = len(lyric_bars(complete_lines))  # the first generated bar's number
        self.keys: dict[tuple[str, int], str] = {}
        self.words: dict[tuple[str, int], set[str]] = {}
        written = [*enumerate(lyric_bars(complete_lines)), *enumerate(later_bars, start=self.first_generated + 1)]
        for index, line in written:
            ending = bar_ending(line, rhyme_vowels)
            self._record(index, ending.rhyme, ending.word)
        if rhyme_with is not None:
            pattern = range(self.first_generated, self.first_generated + len(rhyme_scheme or ""))
            group = next(g for g in map(self._group, pattern) if g is not None)  # SamplingParams: there is one
            self.keys[group] = rhyme_target_key(rhyme_with, rhyme_vowels)
            said = bar_ending(rhyme_with).word
            self.words[group] = {said} if said is not None else set()

    def _group(self, index: int) -> tuple[str, int] | None:
        if self.scheme is None:
            return None
        letter = self.scheme.letter(index)
        return None if letter is None else (letter, index // len(self.scheme.pattern))

    def target(self, index: int) -> BarTarget:
        group = self._group(index)
        return BarTarget(
            index=index,
            letter=None if group is None else group[0],
            rhyme_key=None if group is None else self.keys.get(group),
            used_words=frozenset(() if group is None else self.words.get(group, ())),
            low=self.low,
            high=self.high,
            opening_sounds=self.opening_sounds,
            rhyme_vowels=self.rhyme_vowels,
        )

    def record(self, check: BarCheck, index: int) -> None:
        """Bar ``index`` was kept: its sound sets its group's target if none was set (a bar
        ending on a function word sets none)."""
        self._record(index, None if check.function_word else check.rhyme_key, check.word)

    def _record(self, index: int, key: str | None, word: str | None) -> None:
        group = self._group(index)
        if group is None:
            return
        if key is not None:
            self.keys.setdefault(group, key)
        if word is not None:
            self.words.setdefault(group, set()).add(word)
