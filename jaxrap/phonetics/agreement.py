"""How well the spelling rules agree with Lexique 3.83 on the words both can read.

The rules (``jaxrap.phonetics.spelling``) only answer for words the lexicon lacks, so their
quality there is measured where the answer is known: on the lexicon's ``top`` most frequent
word forms by film frequency (default 10,000: every form seen at least ~6 times per million
subtitle words, which covers the everyday vocabulary rap is written in), taking the forms that
are one run of letters (no apostrophe or hyphen: the rules read one word at a time) and whose
pronunciation has a vowel.

- ``syllables_exact``: share of those words whose rule count equals Lexique's (24_nbsyll);
- rhyme pairs: two words are a pair of one class when their keys are equal. ``rhyme_precision``
  is the share of the pairs the rules put in one class that the lexicon's pronunciations
  (``sounds.phon_rhyme_key``) also put in one; ``rhyme_recall`` the share of the lexicon's pairs
  the rules find. Pairs are counted from class sizes (a class of n words holds n(n-1)/2 pairs;
  the pairs both agree on are the pairs within each (rule key, lexicon key) cell), not by
  enumerating them. Words whose rules give no key are left out of the rhyme figures.

``scripts`` and tests print the figures with ``Agreement.summary()``; ``disagreements`` lists
the words behind them, to find rules worth fixing.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections import Counter
from collections.abc import Iterable

from jaxrap.phonetics.lexicon import load_lexicon
from jaxrap.phonetics.pronounce import Pronunciation, lexicon_pronunciation
from jaxrap.phonetics.spelling import spelling_rhyme_key, spelling_syllables

_ONE_WORD = re.compile(r"[^\W\d_]+")
DEFAULT_TOP = 10_000


@dataclasses.dataclass(frozen=True)
class Agreement:
    words: int  # word forms compared (of the top N)
    syllables_exact: float
    rhyme_precision: float
    rhyme_recall: float
    rule_pairs: int  # pairs of words in one class by the rules
    lexicon_pairs: int  # ... by the lexicon's pronunciations
    shared_pairs: int  # ... by both

    def summary(self) -> str:
        return (f"{self.words:,} words: syllables exact {self.syllables_exact:.1%}, rhyme pairs precision"
                f" {self.rhyme_precision:.1%} recall {self.rhyme_recall:.1%}")


def compared_words(top: int = DEFAULT_TOP, skip: int = 0) -> list[tuple[str, Pronunciation]]:
    """(spelling, pronunciation from the lexicon) of the words the figures are over: ranks
    ``skip`` to ``skip + top`` by film frequency."""
    words = []
    for word, entry in itertools.islice(load_lexicon().most_frequent(skip + top), skip, None):
        if _ONE_WORD.fullmatch(word) and (pronunciation := lexicon_pronunciation(entry)).key is not None:
            words.append((word, pronunciation))
    return words


def lexicon_agreement(top: int = DEFAULT_TOP, skip: int = 0) -> Agreement:
    """The module docstring's figures on the lexicon's ``top`` most frequent word forms (after
    the ``skip`` most frequent: ``skip=10_000`` measures words the rules were not tuned on)."""
    words = compared_words(top, skip)
    exact = sum(spelling_syllables(word) == lexicon.syllables for word, lexicon in words)
    keyed = [(spelling_rhyme_key(word), lexicon.key) for word, lexicon in words]
    keyed = [(rule, lexicon) for rule, lexicon in keyed if rule is not None]
    rule_pairs = _pairs(Counter(rule for rule, _ in keyed).values())
    lexicon_pairs = _pairs(Counter(lexicon for _, lexicon in keyed).values())
    shared_pairs = _pairs(Counter(keyed).values())
    return Agreement(
        words=len(words),
        syllables_exact=exact / len(words),
        rhyme_precision=shared_pairs / rule_pairs if rule_pairs else 0.0,
        rhyme_recall=shared_pairs / lexicon_pairs if lexicon_pairs else 0.0,
        rule_pairs=rule_pairs,
        lexicon_pairs=lexicon_pairs,
        shared_pairs=shared_pairs,
    )


def disagreements(top: int = DEFAULT_TOP, skip: int = 0) -> tuple[list[tuple[str, int, int]], list[tuple[str, str | None, str | None]]]:
    """(words whose syllable counts differ: word, lexicon, rules; words whose keys differ: word,
    lexicon key, rule key), most frequent first."""
    words = compared_words(top, skip)
    counts = [(word, lexicon.syllables, spelling_syllables(word)) for word, lexicon in words]
    keys = [(word, lexicon.key, spelling_rhyme_key(word)) for word, lexicon in words]
    return [c for c in counts if c[1] != c[2]], [k for k in keys if k[1] != k[2]]


def _pairs(class_sizes: Iterable[int]) -> int:
    return sum(size * (size - 1) // 2 for size in class_sizes)
