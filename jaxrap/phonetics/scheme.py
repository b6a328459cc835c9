"""Rhyme schemes (``--rhyme-scheme AABB``) and rhyme words (``--rhyme-with nuit``), validated.

A scheme is one letter per bar, repeated over the bars: ``A``-``Z`` name rhyme groups, ``x``
marks a free bar (``AABB``, ``ABAB``, ``ABBA``, ``AAAA``, ``AxAx``). Each repetition of the
pattern brings new rhymes: with ``AABB`` over 8 bars, bars 1-2 rhyme together, 3-4 together,
5-6 on a new sound, 7-8 on another; with ``ABAB``, bars 1 and 3, 2 and 4, then 5 and 7, 6 and 8.
So a group is a (letter, repetition) pair, and ``RhymeScheme.groups(n)`` numbers them for the
first ``n`` bars. Upper-case ``X`` is a rhyme letter like the others; lower-case letters other
than ``x`` are refused, so that ``aabb`` is not silently read as something else.

Used by the sampler (targets per bar), by ``jaxrap eval`` (scheme accuracy,
``jaxrap.evaluate.flow_metrics``) and by the TUI panel, which all get the same one-line errors.
"""

from __future__ import annotations

import dataclasses

from jaxrap.errors import JaxrapError
from jaxrap.phonetics.rhyme import bar_vowels, rhyme_key
from jaxrap.phonetics.spelling import has_vowel_letter
from jaxrap.phonetics.spoken import spoken_words

FREE = "x"
_RULE = "use A-Z for rhyme groups and x for a free bar, e.g. AABB"


@dataclasses.dataclass(frozen=True)
class RhymeScheme:
    pattern: str  # validated: A-Z and x, at least one letter

    def letter(self, bar: int) -> str | None:
        """The letter of bar ``bar`` (0-based), None for a free bar."""
        letter = self.pattern[bar % len(self.pattern)]
        return None if letter == FREE else letter

    def groups(self, bars: int) -> list[int | None]:
        """A group id per bar for the first ``bars`` bars: equal ids must rhyme; None is free.
        Ids are 0, 1, 2... in order of first appearance."""
        ids: dict[tuple[str, int], int] = {}
        out: list[int | None] = []
        for bar in range(bars):
            letter = self.letter(bar)
            out.append(None if letter is None else ids.setdefault((letter, bar // len(self.pattern)), len(ids)))
        return out


def parse_rhyme_scheme(text: str) -> RhymeScheme:
    """``--rhyme-scheme``'s value as a ``RhymeScheme``; a one-line JaxrapError naming the bad letter."""
    pattern = text.strip()
    if not pattern:
        raise JaxrapError(f"rhyme scheme is empty: {_RULE}")
    for position, letter in enumerate(pattern, start=1):
        if letter != FREE and not ("A" <= letter <= "Z"):
            raise JaxrapError(f"rhyme scheme {pattern!r}: {letter!r} (position {position}) is not a scheme letter; {_RULE}")
    return RhymeScheme(pattern)


def rhyme_target_key(word: str, vowels: int = 1) -> str:
    """The rhyme key ``--rhyme-with WORD`` (and ``jaxrap rhymes WORD``) asks for: the sound its
    last word ends on, on ``vowels`` vowels (``rhyme_key``). A one-line JaxrapError for a word
    without a vowel ("psst", "", "!!"), one whose end cannot rhyme, or a text that says fewer
    than ``vowels`` vowels ("nuit" on 2: "la nuit" has them)."""
    said = [spoken for spoken in spoken_words(word) if not spoken.elided]
    if not said or not has_vowel_letter(said[-1].text):
        raise JaxrapError(f"rhyme word {word!r} has no vowel: give a word that ends on a sound, e.g. 'nuit'")
    if rhyme_key(word) is None:
        raise JaxrapError(f"rhyme word {word!r} ends on no sound a bar can rhyme on; give another word")
    key = rhyme_key(word, vowels)
    if key is None:
        count = len(bar_vowels(word))
        raise JaxrapError(
            f"rhyme word {word!r} says {count} vowel{'' if count == 1 else 's'}, fewer than the {vowels} a rhyme of"
            f" {vowels} vowels ends on; give the words said before it too (\"la nuit\" says 2)"
        )
    return key
