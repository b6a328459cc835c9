"""How one word is said: its syllables, vowels and rhyme key, from the lexicon first.

``pronounce(word)`` answers from Lexique 3.83 where it has the spelling (125k forms, so nearly
every French word), else from the spelling rules (``jaxrap.phonetics.spelling``: slang, verlan,
English loans, rap spellings). Words without a vowel letter that the lexicon lacks are either
interjections (``pff``, ``hmm``, ``brr``: one syllable, no rhyme) or acronyms spelled letter by
letter (``psg`` = pé-ès-gé, 3 syllables, rhyming in é); ``pronounce_letters`` spells any word that
way (``jaxrap.phonetics.spoken`` uses it for upper-case acronyms such as ``ADN``).

From the lexicon: ``syllables`` is Lexique's count (24_nbsyll), which counts internal schwas
(``petit`` p°ti = 2, ``maintenant`` m5t°n@ = 3), less a word-final schwa after another vowel
(14 entries such as ``blanche`` bl@S°: silent, like every mute final e); ``vowels`` are the
vowels of its pronunciation and ``key`` its last vowel and what follows
(``jaxrap.phonetics.sounds``). Results are cached per word.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from jaxrap.phonetics.lexicon import LexiconEntry, load_lexicon
from jaxrap.phonetics.sounds import phon_rhyme_key, phon_vowels, spelled_letters, spoken_phon
from jaxrap.phonetics.spelling import has_vowel_letter, spelling_rhyme_key, spelling_vowels

# Vowel-less words that are sounds, not acronyms: one syllable, no rhyme.
INTERJECTIONS = frozenset("pff pfff pft hmm hm hmmm mmh mmm mm mh brr brrr grr grrr psst pst tss tsss shh chh chhh zzz bzz".split())


class Pronunciation(NamedTuple):
    syllables: int  # spoken syllables
    vowels: tuple[str, ...]  # vowel sounds, key alphabet, e/ɛ merged ("petit" -> ("ə", "i"))
    key: str | None  # rhyme key: last vowel + sounds after it ("chante" -> "ɑ̃t"); None: cannot rhyme
    source: str  # "lexicon", "rules", "letters" (spelled out) or "interjection"


@functools.lru_cache(maxsize=1 << 16)
def pronounce(word: str) -> Pronunciation:
    """Pronunciation of one lowercase NFC word (apostrophes and hyphens only where the lexicon
    has the compound: ``aujourd'hui``, ``peut-être``; ``jaxrap.phonetics.spoken`` splits the rest)."""
    entry = load_lexicon().get(word)
    if entry is not None and (len(word) > 1 or has_vowel_letter(word)):
        return lexicon_pronunciation(entry)
    if not has_vowel_letter(word):
        if word in INTERJECTIONS or len(set(word)) == 1 and len(word) > 1:  # "mmmm"
            return Pronunciation(1, (), None, "interjection")
        return pronounce_letters(word)
    vowels = spelling_vowels(word)
    return Pronunciation(len(vowels), vowels, spelling_rhyme_key(word), "rules")


def lexicon_pronunciation(entry: LexiconEntry) -> Pronunciation:
    phon = spoken_phon(entry.phon)
    syllables = entry.syllables - (phon != entry.phon)  # the word-final schwa Lexique counted
    return Pronunciation(syllables, phon_vowels(phon), phon_rhyme_key(phon), "lexicon")


@functools.lru_cache(maxsize=4096)
def pronounce_letters(word: str) -> Pronunciation:
    """An acronym said letter by letter: ``"psg"`` -> pe ɛs ʒe (3 syllables, key e)."""
    phon = spelled_letters(word)
    vowels = phon_vowels(phon)
    return Pronunciation(len(vowels), vowels, phon_rhyme_key(phon), "letters")
