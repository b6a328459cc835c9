"""Which bars of a text rhyme with which: rhyme keys, lexicon first, and vowel sequences.

``rhyme_key(line)`` spells how the line's last spoken word ends, as sounds: its last vowel plus
the consonants pronounced after it, in IPA-like letters ("J'm'arrache" -> "aʃ", "la mère" ->
"ɛʁ", "chanter" -> "e", "le temps" -> "ɑ̃", "la chambre" -> "ɑ̃bʁ", "j'en ai 1000" -> "il").
Two bars rhyme when their keys are equal; ``rhyme_groups(lines)`` numbers the groups of rhyming
bars that sit near each other.

Where Lexique 3.83 knows the word (``jaxrap.phonetics.lexicon``; 125k forms), the key comes from
its pronunciation; the spelling rules (``jaxrap.phonetics.spelling``) read the words it lacks
(slang, verlan, English). Both write keys in one alphabet with the same merges
(``jaxrap.phonetics.sounds``): é/è in an open final syllable ("parlé" rhymes with "jamais"),
o/ɔ, ø/œ (and a stressed final schwa: "dis-le" rhymes with "deux"), ɛ̃/œ̃; a glide before the
last vowel is left out ("bien"/"main"), except the w of "oi". Which words are said, and how
(elision, numbers spelled out, acronyms), is ``jaxrap.phonetics.spoken``'s.

``bar_vowels(line)`` gives every vowel said in the bar, in order (e/ɛ merged), for rhymes of
several syllables (``jaxrap.evaluate.flow_metrics.rhyme_density``).

**Rhymes of N vowels** (``--rhyme-vowels N``): ``rhyme_key(line, vowels=N)`` is the N - 1 vowels
said before the last one, in the vowel sequences' alphabet, then the key, joined by ``-``: "ma
vie" and "l'avis" both end on ``a-i``, across the word boundary or inside a word; "la chambre"
on ``a-ɑ̃bʁ``. A bar that says fewer than N vowels up to its last word has no key of N vowels.
N = 1 is the key above. ``bar_ending`` adds whether the last word is an unstressed function
word (``jaxrap.phonetics.function_words``), which carries no rhyme: the sampler's check and the
scheme accuracy refuse those bars' rhymes.

Limits: homographs get the lexicon's most frequent reading ("est" the verb, "fils" fis, "sens"
the verb sɑ̃); one final syllable decides a rhyme (no assonance: "arrache"/"lâche" rhyme,
"arrache"/"là" do not); the spelling rules' figures against the lexicon are in
``jaxrap.phonetics.agreement``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import NamedTuple

from jaxrap.phonetics.function_words import is_function_word
from jaxrap.phonetics.spoken import SpokenWord, spoken_words

# Letters only: apostrophes, hyphens, digits and punctuation end a word ("j'm'arrache" -> arrache).
_WORD = re.compile(r"[^\W\d_]+")
KEY_SEPARATOR = "-"  # between the vowels of a key of several ("a-i")


def last_word_span(line: str) -> tuple[int, int] | None:
    """(start, end) of the last run of letters in ``line`` (NFC text, as the corpus is), or None:
    what the terminal UI colours (a number's spelled-out words have no span)."""
    if _is_marker(line):
        return None
    last = None
    for last in _WORD.finditer(line):
        pass
    return last.span() if last else None


def last_word(line: str) -> str | None:
    """The line's last word, lowercased and NFC, or None (no word, or a [marker])."""
    span = last_word_span(line)
    return None if span is None else unicodedata.normalize("NFC", line[span[0] : span[1]]).lower()


def rhyme_key(line: str, vowels: int = 1) -> str | None:
    """The sound the line ends on (last vowel sound + consonants after it; with ``vowels`` N > 1,
    the N - 1 vowels said before it first: "a-i"), or None (no word said, a [marker], a last
    word that cannot rhyme such as "pff", fewer than N vowels said)."""
    return bar_ending(line, vowels).key


def word_rhyme_key(word: str) -> str | None:
    """The rhyme key of one word (or of the last word of a short text): ``--rhyme-with``'s sound."""
    return rhyme_key(word)


class BarEnding(NamedTuple):
    key: str | None  # rhyme_key(line, vowels)
    word: str | None  # the last word said, lowercase (None: no word, or a [marker])
    function_word: bool  # that word is an unstressed function word: it carries no rhyme

    @property
    def rhyme(self) -> str | None:
        """The key a rhyme is heard on: None when the bar ends on a function word."""
        return None if self.function_word else self.key


def bar_ending(line: str, vowels: int = 1) -> BarEnding:
    """How ``line`` ends: its rhyme key on ``vowels`` vowels, its last word said, and whether
    that word is a function word that carries no rhyme (a clitic joined by a hyphen to the word
    before it is stressed: "dis-le", "vas-y")."""
    words = () if _is_marker(line) else spoken_words(line)
    last = next((i for i in range(len(words) - 1, -1, -1) if not words[i].elided), None)
    if last is None:
        return BarEnding(None, None, False)
    word = words[last]
    key = word.pronunciation.key
    if key is not None and vowels > 1:
        before = [v for said in words[:last] for v in said.pronunciation.vowels] + list(word.pronunciation.vowels[:-1])
        key = None if len(before) < vowels - 1 else KEY_SEPARATOR.join([*before[len(before) - vowels + 1 :], key])
    return BarEnding(key, word.text, is_function_word(word.text) and not _after_hyphen(line, word.text))


def _after_hyphen(line: str, word: str) -> bool:
    """Whether the line's last run of letters is ``word`` joined to the word before by a hyphen."""
    span = last_word_span(line)
    return span is not None and line[span[0] - 1 : span[0]] == "-" and last_word(line) == word


def key_vowels(key: str) -> tuple[tuple[str, ...], str]:
    """A key of N vowels split into its N - 1 leading vowels and its last vowel's key:
    ``"a-ɑ̃bʁ"`` -> (("a",), "ɑ̃bʁ")."""
    *leading, last = key.split(KEY_SEPARATOR)
    return tuple(leading), last


def last_spoken_word(line: str) -> SpokenWord | None:
    """The last word said in ``line`` (not an elided j'/l'), or None for no word or a [marker]."""
    if _is_marker(line):
        return None
    return next((word for word in reversed(spoken_words(line)) if not word.elided), None)


def bar_vowels(line: str) -> tuple[str, ...]:
    """Every vowel said in ``line``, in order, e/ɛ merged ("Le temps passe" -> (ə, ɑ̃, a))."""
    if _is_marker(line):
        return ()
    return tuple(vowel for word in spoken_words(line) for vowel in word.pronunciation.vowels)


def rhyme_groups(lines: Sequence[str], window: int = 4) -> list[int | None]:
    """A rhyme group id per line: lines with equal keys at most ``window`` bars apart share one.

    Distances count bars (lines with a key), so blank lines and [markers] do not separate
    rhymes. Chains link: A ... A ... A, each pair within the window, is one group. Ids are
    0, 1, 2... in order of first appearance; a line that rhymes with no nearby bar gets None.
    """
    keys = [rhyme_key(line) for line in lines]
    bars = [i for i, key in enumerate(keys) if key is not None]  # line index of each bar
    parent = {i: i for i in bars}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for position, i in enumerate(bars):
        for j in bars[position + 1 : position + 1 + window]:
            if keys[i] == keys[j]:
                parent[root(j)] = root(i)
    sizes: dict[int, int] = {}
    for i in bars:
        sizes[root(i)] = sizes.get(root(i), 0) + 1
    group_of_root: dict[int, int] = {}
    groups: list[int | None] = [None] * len(lines)
    for i in bars:
        if sizes[root(i)] > 1:
            groups[i] = group_of_root.setdefault(root(i), len(group_of_root))
    return groups


def lyric_bars(text: str) -> list[str]:
    """The bars of a text: its lines, less blank lines and ``[section]`` markers."""
    return [line for line in text.split("\n") if not _is_marker(line)]


def _is_marker(line: str) -> bool:
    """A blank line or a kept section header ("[Refrain]"): no bar."""
    stripped = line.strip()
    return not stripped or (stripped.startswith("[") and stripped.endswith("]"))
