"""A bar as it is said: the words a rapper pronounces, each with its pronunciation.

``spoken_words(bar)`` reads a line of lyrics left to right and returns ``SpokenWord``s; the
syllable counter, the rhyme key and the vowel sequence of a bar are all built on it, so they
agree on what is said:

- **Words** are runs of letters joined by apostrophes and hyphens. A compound the lexicon knows
  is one word (``aujourd'hui``, ``peut-être``, ``quelqu'un``); otherwise it splits at hyphens
  (``dis-le`` -> dis, le; the ``t`` of ``va-t-il`` has no vowel and says nothing) and at
  apostrophes.
- **Elision**: a piece before an apostrophe lost its vowel (``j'``, ``l'``, ``qu'``, ``t'es``,
  ``p'tit``, ``y'a``): it is said with the next word and has no syllable of its own, except
  what is left of a longer word (``jusqu'`` and ``lorsqu'`` keep one).
- **Apocope**: a word that ends on an apostrophe with nothing after it, has a vowel and more
  than one letter and does not end in ``qu`` is cut short, not elided (``la tess'``, ``le
  périph'``, ``mon appart'``, ``le dé'``): it is said, with its own syllables, and a bar can end
  on it.
- **Numbers** are spelled out in French with num2words (``2000`` -> deux mille, ``93`` ->
  quatre-vingt-treize, ``1995`` -> mille neuf cent quatre-vingt-quinze, ``3,5`` -> trois virgule
  cinq, ``1er``/``2e``/``3ème`` -> premier/deuxième/troisième, ``24h`` -> vingt-quatre heures,
  ``10 000`` -> dix mille); a rapper may say a number otherwise ("neuf-trois" for the 93),
  which no rule can know.
- **Abbreviations and symbols** in ``ABBREVIATIONS`` are spelled out (``%`` -> pour cent,
  ``€`` -> euros, ``&`` -> et, ``bcp`` -> beaucoup, ``oklm`` -> au calme, ``tkt`` ->
  t'inquiète); upper-case words the lexicon lacks that have no vowel or three letters are
  acronyms said letter by letter (``PNL``, ``SNCF``, ``ADN``; ``BOOBA`` is a shouted word), as
  are lower-case words without a vowel (``psg`` -> pé-ès-gé), but interjections (``pff``,
  ``hmm``) are one syllable.
- Punctuation, emojis and other symbols are skipped: they are not said.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import NamedTuple

from jaxrap.phonetics.lexicon import load_lexicon
from jaxrap.phonetics.pronounce import Pronunciation, pronounce, pronounce_letters
from jaxrap.phonetics.spelling import has_vowel_letter, spelling_vowels

# Spelled out before anything else is looked up (lower case; symbols as they are written).
ABBREVIATIONS = {
    "%": "pour cent", "€": "euros", "$": "dollars", "£": "livres", "&": "et", "+": "plus", "=": "égale",
    "n°": "numéro", "bcp": "beaucoup", "tjrs": "toujours", "pk": "pourquoi", "pq": "pourquoi",
    "stp": "s'te plaît", "svp": "s'il vous plaît", "tkt": "t'inquiète", "jsp": "j'sais pas",
    "oklm": "au calme", "mr": "monsieur", "dr": "docteur", "st": "saint", "ste": "sainte",
    "kg": "kilos", "km": "kilomètres", "vs": "versus", "ft": "featuring", "feat": "featuring",
    "etc": "et cetera",
}
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "´": "'"})
_TOKEN = re.compile(
    r"(?P<number>\d{1,3}(?:[  .]\d{3})+(?!\d)|\d+)(?:,(?P<decimals>\d+))?"
    r"(?P<ordinal>ères?|ers?|res?|èmes?|emes?|nde?s?|e(?![^\W\d_]))?(?P<hours>h(?![^\W\d_]))?"
    r"|(?P<word>[^\W\d_]+(?:['-][^\W\d_]+)*'?)"
    r"|(?P<symbol>[%€$£&+=]|n°)",
    re.IGNORECASE,
)
_MAX_NUMBER = 10**15  # beyond this, digits are said one by one


class SpokenWord(NamedTuple):
    text: str  # lowercase spelling said ("arrache", "mille" for 1000, "j" for j')
    pronunciation: Pronunciation
    elided: bool  # lost its vowel to the next word (j', l', qu'): never the word a bar ends on


@functools.lru_cache(maxsize=8192)
def spoken_words(bar: str) -> tuple[SpokenWord, ...]:
    """The words said in ``bar`` (any text; the module docstring says what is read how)."""
    text = unicodedata.normalize("NFC", bar).translate(_APOSTROPHES)
    words: list[SpokenWord] = []
    for match in _TOKEN.finditer(text):
        if match["word"] is not None:
            words.extend(_letter_words(match["word"]))
        elif match["symbol"] is not None:
            words.extend(_phrase(ABBREVIATIONS[match["symbol"].lower()]))
        else:
            words.extend(_phrase(_number_words(match)))
    return tuple(words)


def _letter_words(token: str) -> list[SpokenWord]:
    lower = token.lower()
    if lower in ABBREVIATIONS:
        return _phrase(ABBREVIATIONS[lower])
    if lower.rstrip("'") in load_lexicon():  # "aujourd'hui", "peut-être", "jusqu'"
        return [_word(lower.rstrip("'"), elided=lower.endswith("'") and not _cut_short(lower.rstrip("'")))]
    words: list[SpokenWord] = []
    parts = token.split("-")
    for part in parts:
        pieces = part.split("'")
        for position, piece in enumerate(pieces):
            if not piece:
                continue
            word = piece.lower()
            if position < len(pieces) - 1 and not (position == len(pieces) - 2 and not pieces[-1] and _cut_short(word)):
                words.append(SpokenWord(word, _elided(word), True))  # "j'", "qu'", "p'tit"
            elif len(parts) > 1 and not has_vowel_letter(word):
                words.append(SpokenWord(word, _elided(word), False))  # the t of "va-t-il"
            elif _is_acronym(piece):
                words.append(SpokenWord(word, pronounce_letters(word), False))  # "ADN", "PNL"
            else:
                words.append(SpokenWord(word, pronounce(word), False))
    return words


def _cut_short(word: str) -> bool:
    """Whether ``word`` before a final apostrophe is cut short (``tess``, ``périph``), not elided
    (``j``, ``qu``, ``jusqu``: no vowel, one letter, or ``qu`` before the lost vowel)."""
    return len(word) > 1 and has_vowel_letter(word) and not word.endswith("qu")


def _is_acronym(piece: str) -> bool:
    """Upper case, unknown to the lexicon, and either without a vowel (``PNL``, ``SNCF``) or of
    three letters (``ADN``, ``ONU``); longer words in capitals are shouted words (``BOOBA``)."""
    word = piece.lower()
    return piece.isupper() and len(piece) > 1 and word not in load_lexicon() and (len(word) == 3 or not has_vowel_letter(word))


def _word(word: str, *, elided: bool) -> SpokenWord:
    return SpokenWord(word, _elided(word) if elided else pronounce(word), elided)


@functools.lru_cache(maxsize=1024)
def _elided(piece: str) -> Pronunciation:
    """What is left of a word whose last vowel was elided: "j" -> nothing, "jusqu" -> one
    syllable, "y" (y'a) -> nothing (said as a glide on the next vowel)."""
    vowels = spelling_vowels(piece.rstrip("aeiouyéèêàâ") or piece[:0])
    return Pronunciation(len(vowels), vowels, None, "elided")


def _phrase(text: str) -> list[SpokenWord]:
    return [word for token in _TOKEN.finditer(text) if token["word"] for word in _letter_words(token["word"])]


def _number_words(match: re.Match) -> str:
    """French words for a number token: cardinal, decimal, ordinal or hours."""
    from num2words import num2words  # lazy: 20 ms of imports, and only lyrics with digits need it

    digits = re.sub(r"\D", "", match["number"])
    value = int(digits)
    if value >= _MAX_NUMBER:
        return " ".join(num2words(int(digit), lang="fr") for digit in digits)
    ordinal = (match["ordinal"] or "").lower()
    if ordinal and not match["decimals"]:
        if value == 1 and ordinal.startswith(("ère", "re")):
            return "première"
        if value == 2 and ordinal.startswith("nd"):
            return "seconde" if ordinal.startswith("nde") else "second"
        return num2words(value, lang="fr", to="ordinal")
    words = num2words(value, lang="fr")
    if match["decimals"]:
        words += " virgule " + " ".join(num2words(int(digit), lang="fr") for digit in match["decimals"])
    if match["hours"]:
        words += " heures"
    return words
