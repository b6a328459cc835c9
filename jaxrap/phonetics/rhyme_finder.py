"""The rhyme finder: words that end on the same N vowels as a word, most frequent first.

    find_rhymes("la vie", vowels=2)       # ami, avis, Paris, ... on a-i, by syllable count
    find_rhymes("nuit", syllables=1)      # lit, vie, pluie, ...
    find_rhymes("nuit", corpus=CorpusWords(corpus_word_counts("data/rap")))  # + the corpus's words Lexique lacks

``find_rhymes(text, vowels=N)`` reads the key ``text`` ends on as a bar's rhyme key of N vowels
(``jaxrap.phonetics.rhyme.rhyme_key``: "la vie" ends on ``a-i``, so several words may give the
vowels) and lists the words whose own last N vowels give that key: Lexique 3.83's word forms
(lexicon first, as everywhere in jaxrap), and with ``corpus`` the words a prepared corpus's
train split uses at least ``MIN_CORPUS_COUNT`` times that Lexique lacks (``CorpusWords``: slang,
verlan, English, names; read by the spelling rules, ``jaxrap.phonetics.spelling``). Never listed: the text's own
last word, function words (``jaxrap.phonetics.function_words``: they carry no rhyme), words of
fewer than N vowels, spellings with digits or spaces.

Words are grouped by spoken syllables (ascending) and ordered within a group by frequency:
Lexique's film-subtitle frequency per million words, and for a corpus word its count per million
words of the corpus. The first search of a vowel count reads the whole lexicon (about a second
on the team's 2-core machine), later ones a dictionary; a ``CorpusWords`` indexes its words on its first search.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from jaxrap.errors import JaxrapError
from jaxrap.phonetics.function_words import is_function_word
from jaxrap.phonetics.lexicon import load_lexicon
from jaxrap.phonetics.pronounce import Pronunciation, lexicon_pronunciation, pronounce
from jaxrap.phonetics.rhyme import KEY_SEPARATOR, last_spoken_word
from jaxrap.phonetics.scheme import rhyme_target_key
from jaxrap.phonetics.sounds import MAX_RHYME_VOWELS
from jaxrap.phonetics.spelling import has_vowel_letter

MIN_CORPUS_COUNT = 3  # a corpus word Lexique lacks is listed from this many uses (fewer: typos, names)
_ONE_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")  # letters, apostrophes and hyphens inside


class RhymeWord(NamedTuple):
    word: str
    syllables: int  # spoken
    frequency: float  # per million words (Lexique's films, or the corpus's)
    source: str  # "lexicon" or "corpus"


@dataclasses.dataclass(frozen=True)
class RhymeGroup:
    syllables: int
    words: tuple[RhymeWord, ...]  # most frequent first


@dataclasses.dataclass(frozen=True)
class Rhymes:
    key: str  # the key of ``vowels`` vowels the words end on ("a-i")
    vowels: int
    groups: tuple[RhymeGroup, ...]  # by syllables, ascending; empty groups left out


def find_rhymes(
    text: str,
    vowels: int = 1,
    syllables: int | None = None,
    limit: int | None = None,
    corpus: CorpusWords | None = None,
) -> Rhymes:
    """Words rhyming with ``text`` on ``vowels`` vowels (the module docstring), at most ``limit``
    per syllable count (None: all), only those of ``syllables`` syllables when given. A one-line
    JaxrapError for a text without a vowel, fewer vowels than asked, a vowel count outside
    1..MAX_RHYME_VOWELS, a limit below 1 or a syllable count below the vowel count."""
    _check_count("vowels", vowels, 1, MAX_RHYME_VOWELS)
    if limit is not None:
        _check_count("limit", limit, 1)
    if syllables is not None:
        _check_count("syllables", syllables, 1)
        if syllables < vowels:
            raise JaxrapError(f"no word of {syllables} syllable{'' if syllables == 1 else 's'} says the {vowels} vowels of"
                              f" the rhyme asked for: ask for {vowels} syllables or more")
    key = rhyme_target_key(text, vowels)
    said = last_spoken_word(text)
    own = None if said is None else said.text
    candidates = list(_lexicon_index()[vowels - 1].get(key, ()))
    if corpus is not None:
        candidates += corpus.index[vowels - 1].get(key, ())
    by_syllables: dict[int, list[RhymeWord]] = defaultdict(list)
    for word in sorted(candidates, key=lambda word: -word.frequency):  # stable: ties keep the lexicon's order
        if word.word != own and (syllables is None or word.syllables == syllables):
            by_syllables[word.syllables].append(word)
    groups = tuple(RhymeGroup(count, tuple(words[:limit])) for count, words in sorted(by_syllables.items()))
    return Rhymes(key, vowels, groups)


def word_key(pronunciation: Pronunciation, vowels: int) -> str | None:
    """The key of one word's own last ``vowels`` vowels, or None when it has fewer."""
    if pronunciation.key is None or len(pronunciation.vowels) < vowels:
        return None
    return KEY_SEPARATOR.join([*pronunciation.vowels[len(pronunciation.vowels) - vowels : -1], pronunciation.key])


Index = tuple[dict[str, tuple[RhymeWord, ...]], ...]  # [N - 1]: key of N vowels -> words, most frequent first


@functools.cache
def _lexicon_index() -> Index:
    """Lexique's words by their keys of 1..MAX_RHYME_VOWELS vowels, in frequency order."""
    lexicon = load_lexicon()
    return _index(
        (word, lexicon_pronunciation(entry), entry.frequency, "lexicon")
        for word, entry in lexicon.most_frequent(len(lexicon))
        if _ONE_WORD.fullmatch(word) and not is_function_word(word)
    )


def _index(words: Iterable[tuple[str, Pronunciation, float, str]]) -> Index:
    index: list[dict[str, list[RhymeWord]]] = [defaultdict(list) for _ in range(MAX_RHYME_VOWELS)]
    for word, pronunciation, frequency, source in words:
        entry = RhymeWord(word, pronunciation.syllables, frequency, source)
        for vowels in range(1, MAX_RHYME_VOWELS + 1):
            key = word_key(pronunciation, vowels)
            if key is None:
                break
            index[vowels - 1][key].append(entry)
    return tuple({key: tuple(words) for key, words in by_key.items()} for by_key in index)


class CorpusWords:
    """The words a corpus uses that Lexique lacks, read by the spelling rules: those said
    ``MIN_CORPUS_COUNT`` times or more of ``counts`` (a word -> uses mapping of lowercase runs of
    letters, ``jaxrap.data.corpus.corpus_word_counts``), with their frequency per million of its
    words. Pieces without a vowel (an elided ``j'``, acronyms), single letters and function words
    are left out. Build it once and pass it to every search."""

    def __init__(self, counts: Mapping[str, int]):
        total = sum(counts.values())
        lexicon = load_lexicon()
        self.words = {
            word: count * 1e6 / total
            for word, count in counts.items()
            if count >= MIN_CORPUS_COUNT and len(word) > 1 and has_vowel_letter(word) and word not in lexicon
            and not is_function_word(word)
        }

    @functools.cached_property
    def index(self) -> Index:
        return _index((word, pronounce(word), frequency, "corpus") for word, frequency in self.words.items())


def _check_count(name: str, value: int, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or maximum is not None and value > maximum:
        bound = f"at least {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise JaxrapError(f"{name} must be a whole number {bound}, got {value!r}")
