"""The sound alphabet rhyme keys and vowel sequences are written in, from Lexique's or from letters.

Keys use IPA letters (``"aʃ"``, ``"ɛʁ"``, ``"ɑ̃bʁ"``) with the merges of the spelling rules
(``jaxrap.phonetics.spelling``), so that a key from a lexicon pronunciation and a key from the
rules agree when both are right:

- ɔ -> o (``sort`` and ``saut`` differ by it, but rappers rhyme them), œ -> ø, œ̃ -> ɛ̃;
- e and ɛ: e when nothing follows in the syllable (``parlé``, ``parlais``, ``jamais`` rhyme),
  ɛ before a consonant (``mère`` ɛʁ);
- a glide before the last vowel is left out (``bien``/``main``, ``nuit``/``lit``), except the
  w of ``oi`` (``moi``/``toi`` end in wa, ``là`` in a);
- a glide after it is a consonant of the key (``fille`` ij, ``soleil`` ɛj).

Vowel sequences (``phon_vowels``, for multi-syllable rhymes) use the same vowels with e/ɛ merged
everywhere (French neutralises them in most positions); the schwa ə stays a vowel of its own.
"""

from __future__ import annotations

# Lexique's alphabet (jaxrap.phonetics.lexicon) -> key alphabet.
LEXIQUE_VOWEL_SOUNDS = {
    "a": "a", "i": "i", "y": "y", "u": "u", "o": "o", "O": "o", "e": "e", "E": "ɛ", "°": "ə",
    "2": "ø", "9": "ø", "5": "ɛ̃", "1": "ɛ̃", "@": "ɑ̃", "§": "ɔ̃",
}
LEXIQUE_CONSONANT_SOUNDS = {
    "p": "p", "b": "b", "t": "t", "d": "d", "k": "k", "g": "g", "f": "f", "v": "v", "s": "s",
    "z": "z", "S": "ʃ", "Z": "ʒ", "m": "m", "n": "n", "N": "ɲ", "G": "ŋ", "l": "l", "R": "ʁ",
    "x": "x", "j": "j", "w": "w", "8": "ɥ",
}
# Each letter as said when an acronym is spelled out ("PSG" -> pe ɛs ʒe), in Lexique's alphabet.
LETTER_NAMES = {
    "a": "a", "b": "be", "c": "se", "d": "de", "e": "2", "f": "Ef", "g": "Ze", "h": "aS", "i": "i",
    "j": "Zi", "k": "ka", "l": "El", "m": "Em", "n": "En", "o": "o", "p": "pe", "q": "ky", "r": "ER",
    "s": "Es", "t": "te", "u": "y", "v": "ve", "w": "dubl°ve", "x": "iks", "y": "igREk", "z": "zEd",
}
KEY_VOWELS = frozenset(("a", "i", "y", "u", "o", "e", "ɛ", "ə", "ø", "ɛ̃", "ɑ̃", "ɔ̃"))
# The vowels of vowel sequences (e/ɛ merged, the w of oi a glide), numbered: the vowel ids the
# on-device steering carries (``jaxrap.phonetics.token_tables``).
SEQUENCE_VOWELS = ("a", "e", "i", "o", "u", "y", "ə", "ø", "ɛ̃", "ɑ̃", "ɔ̃")
# Rhymes of up to this many vowels (``--rhyme-vowels``): the per-row vowel window on device.
MAX_RHYME_VOWELS = 4


def phon_rhyme_key(phon: str) -> str | None:
    """Rhyme key of a Lexique pronunciation: its last vowel and the sounds after it.

    ``"maRS@"`` (marchand) -> ``"ɑ̃"``, ``"mER"`` -> ``"ɛʁ"``, ``"paRlE"`` -> ``"e"``,
    ``"mwa"`` -> ``"wa"``, ``"fij"`` -> ``"ij"``; None when it has no vowel.
    """
    phon = spoken_phon(phon)
    last = max((i for i, sign in enumerate(phon) if sign in LEXIQUE_VOWEL_SOUNDS), default=None)
    if last is None:
        return None
    vowel = LEXIQUE_VOWEL_SOUNDS[phon[last]]
    coda = "".join(LEXIQUE_CONSONANT_SOUNDS.get(sign, "") for sign in phon[last + 1 :])
    if vowel in ("e", "ɛ"):
        vowel = "ɛ" if coda else "e"
    elif vowel == "a" and phon[last - 1 : last] == "w":
        vowel = "wa"
    elif vowel == "ə":
        vowel = "ø"  # a schwa that ends a word is stressed, said ø: "dis-le" rhymes with "deux"
    return vowel + coda


def spoken_phon(phon: str) -> str:
    """A Lexique pronunciation without a word-final schwa after another vowel: Lexique writes
    one in 14 words (``blanche`` bl@S°, ``puisque`` p8isk°, ``est-ce`` Es°), silent like any
    mute final e. Monosyllables keep theirs (``le`` l°)."""
    if phon.endswith("°") and any(sign in LEXIQUE_VOWEL_SOUNDS for sign in phon[:-1]):
        return phon[:-1]
    return phon


def phon_vowels(phon: str) -> tuple[str, ...]:
    """The vowels of a Lexique pronunciation in the key alphabet, e/ɛ merged (``"p°ti"`` -> (ə, i))."""
    return tuple(merge_e(LEXIQUE_VOWEL_SOUNDS[sign]) for sign in spoken_phon(phon) if sign in LEXIQUE_VOWEL_SOUNDS)


def merge_e(vowel: str) -> str:
    """ɛ -> e, for vowel sequences (keys keep ɛ before a consonant)."""
    return "e" if vowel == "ɛ" else vowel


def spelled_letters(word: str) -> str:
    """Lexique pronunciation of an acronym spelled letter by letter ("psg" -> "peEsZe")."""
    return "".join(LETTER_NAMES.get(letter, "") for letter in word)
