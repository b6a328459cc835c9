"""A French end-rhyme heuristic: which bars of a text rhyme with which.

``rhyme_key(line)`` spells how the line's last word ends, as sounds: the last vowel sound
plus the consonants pronounced after it, in IPA-like letters ("J'm'arrache" -> "aʃ",
"la mère" -> "ɛʁ", "chanter" -> "e", "le temps" -> "ɑ̃", "la chambre" -> "ɑ̃bʁ"). Two bars
rhyme when their keys are equal; ``rhyme_groups(lines)`` numbers the groups of rhyming bars
that sit near each other.

The word is read from its end, by spelling rules rather than a pronunciation dictionary:

- a mute final ``e`` (with ``s``, or the verb ending ``ent``) is dropped, and it makes the
  consonants before it heard ("chante" -> "ɑ̃t", but "chant" -> "ɑ̃");
- otherwise final ``s x t d z p g c`` are silent, with short lists of exceptions
  ("bus", "net", "sud", "gaz", "stop", "bled", "street", final ``ct``/``st``/``ss``);
- ``er``/``ez``/``et``/``ed`` end on the sound of ``é`` ("parler", "assez", "secret"), except
  "mer", "fer", "hiver", "vers"... (ɛʁ) and English loans such as "dealer" (œʁ);
- vowel spellings become one sound: ``eau au o ô`` -> o; ``ai ei è ê é`` -> e in an open
  final syllable, ɛ before a consonant; ``eu œu`` -> ø; ``ou`` -> u; ``oi`` -> wa;
  ``u`` -> y; ``ui`` -> i; nasals ``an am en em`` -> ɑ̃, ``in im ain ein un ien oin`` -> ɛ̃,
  ``on om`` -> ɔ̃ (a vowel before a single ``n``/``m`` and a mute e is oral: "lune" -> yn);
- ``ille``/final ``il`` after a vowel is the glide j ("fille" -> ij, "soleil" -> ɛj);
  ``ch`` -> ʃ, ``gn`` -> ɲ, ``ge`` -> ʒ, ``ce`` -> s, a single ``s`` between vowels -> z.

Limits (by design, for a display hint and a corpus statistic, not a phonetician):
- é and è merge in an open final syllable ("parlé" rhymes with "jamais"), as do ø/œ and
  ɛ̃/œ̃, and a glide before a vowel is ignored ("bien"/"main", "soleil"/"pareil");
- only the last syllable counts: no rich (multi-syllable) rhymes, no assonance (same vowel,
  different consonants: "arrache"/"lâche" rhyme, "arrache"/"là" do not);
- heterophones the spelling cannot tell apart are guessed: "-ent" is a mute verb ending
  unless the word is in a short list or ends in a vowel + "ment" ("moment", "vraiment"),
  so "ils mentent" is right and rarer nouns ("un serment") are wrong; "plus", "tous",
  "fils", "est" (the direction) get one reading each;
- loanwords beyond a few rap staples ("flow", "street", "dealer", "-ing") are read as French,
  and digits, emojis and abbreviations carry no key (a bar ending in "1000" has none).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

# Letters only: apostrophes, hyphens, digits and punctuation end a word ("j'm'arrache" -> arrache).
_WORD = re.compile(r"[^\W\d_]+")
_VOWELS = frozenset("aeiouyàâäéèêëîïôöùûüÿœæ")

# Whole words whose ending the rules below would misread.
_WHOLE_WORDS = {
    "et": "e", "est": "e", "es": "e", "les": "e", "des": "e", "mes": "e", "tes": "e", "ses": "e",
    "ces": "e", "clef": "e", "femme": "am", "femmes": "am", "sept": "ɛt", "dix": "is", "six": "is",
    "gentil": "i", "outil": "i", "fusil": "i", "sourcil": "i", "persil": "i", "cul": "y",
    "soûl": "u", "saoul": "u", "ville": "il", "villes": "il", "mille": "il", "tranquille": "il",
    "tranquilles": "il", "parfum": "ɛ̃", "tabac": "a", "estomac": "a", "respect": "e",
    "aspect": "e", "suspect": "e", "doigt": "wa", "doigts": "wa", "vingt": "ɛ̃", "corps": "oʁ",
    "fils": "is", "night": "ajt", "fight": "ajt", "light": "ajt", "right": "ajt",
}
# "-ent" is the mute verb ending ("ils chantent") except in these words, in "-ement"/"-mment"
# and after a vowel + "m" ("moment", "vraiment", "élément"; verbs listed in _MUTE_MENT);
# "-tient"/"-vient" end in ɛ̃.
_SOUNDED_ENT = frozenset(
    "absent accent accident adjacent adolescent ardent argent cent client compétent confident"
    " content décent dent différent éloquent équivalent évident excellent fréquent gent"
    " impatient imprudent incident indécent innocent insolent intelligent lent ment orient"
    " parent patient permanent précédent présent président prudent récent sent serment serpent"
    " silent souvent talent torrent tourment urgent vent violent".split()
)
_MUTE_MENT = frozenset("aiment riment priment expriment impriment suppriment animent abîment fument allument résument".split())
_SOUNDED_ER = frozenset(  # "-er" read ɛʁ, not é
    "mer fer ver cher fier hier amer hiver enfer super vers travers univers envers pervers"
    " divers revers cancer laser poster éther hamster gangster magister".split()
)
_ENGLISH_ER = frozenset(  # "-er" read œʁ, as in "peur"
    "dealer killer hater player leader rider loser boxer rapper joker biker speaker sniper"
    " rocker thriller flipper hustler baller gamer".split()
)
# Final consonants that stay pronounced in these words (looked up without a plural s).
_SOUNDED_S = frozenset(
    "bus virus bonus cactus campus terminus consensus processus sinus tennis iris oasis jadis"
    " tandis vis lis bis maïs hélas atlas as os ours mars sens cosmos pathos blocus papyrus"
    " rébus hiatus lotus chorus prospectus plexus anus humus ananas albatros".split()
)
_SOUNDED_T = frozenset("net brut huit but chut zut mat dot août fat shit hit beat street tweet feat out set kit bit".split())
_SOUNDED_D = frozenset("sud bled raid stand weed hood bad good kid squad gold band".split())
_SILENT_P = frozenset("trop sirop galop drap loup coup beaucoup".split())
_SOUNDED_NG = frozenset("gang bang slang boomerang".split())
_SILENT_X_AFTER = ("au", "eu", "ou", "oi", "ai", "ei")  # "faux", "deux", "doux", "voix", "paix"
_SILENT_X = frozenset(("prix", "perdrix", "flux", "crucifix"))

# Oral vowel spellings, longest first (matched against the end of the final vowel group).
_ORAL = (
    ("eau", "o"), ("ieu", "ø"), ("oeu", "ø"), ("œu", "ø"), ("aie", "e"), ("oue", "u"),
    ("au", "o"), ("eu", "ø"), ("œ", "ø"), ("ou", "u"), ("oû", "u"), ("où", "u"), ("oi", "wa"),
    ("oî", "wa"), ("oy", "wa"), ("ui", "i"), ("ai", "e"), ("aî", "e"), ("ei", "e"), ("ay", "e"),
    ("ey", "e"), ("ee", "i"), ("ea", "i"), ("oo", "u"),
    ("a", "a"), ("à", "a"), ("â", "a"), ("ä", "a"), ("e", "ə"), ("é", "e"), ("è", "e"),
    ("ê", "e"), ("ë", "e"), ("i", "i"), ("î", "i"), ("ï", "i"), ("y", "i"), ("o", "o"),
    ("ô", "o"), ("ö", "o"), ("u", "y"), ("û", "y"), ("ü", "y"), ("ù", "y"), ("ÿ", "i"), ("æ", "e"),
)
# Nasal vowels: the end of the vowel group before n/m.
_NASAL = (
    ("ie", "ɛ̃"), ("ée", "ɛ̃"), ("ye", "ɛ̃"), ("ai", "ɛ̃"), ("ei", "ɛ̃"), ("oi", "ɛ̃"), ("ui", "ɛ̃"),
    ("eu", "ɛ̃"), ("a", "ɑ̃"), ("e", "ɑ̃"), ("i", "ɛ̃"), ("y", "ɛ̃"), ("u", "ɛ̃"), ("o", "ɔ̃"),
    ("é", "ɛ̃"),
)
# Consonant spellings, longest first, read left to right through the coda.
_CONSONANTS = (
    ("sch", "ʃ"), ("ch", "ʃ"), ("sh", "ʃ"), ("ph", "f"), ("th", "t"), ("gn", "ɲ"), ("ck", "k"),
    ("qu", "k"), ("gu", "g"), ("ç", "s"), ("c", "k"), ("q", "k"), ("x", "ks"), ("h", ""),
    ("r", "ʁ"), ("j", "ʒ"),
)


def last_word_span(line: str) -> tuple[int, int] | None:
    """(start, end) of the last word in ``line`` (NFC text, as the corpus is), or None."""
    stripped = line.strip()
    if not stripped or (stripped.startswith("[") and stripped.endswith("]")):
        return None
    last = None
    for last in _WORD.finditer(line):
        pass
    return last.span() if last else None


def last_word(line: str) -> str | None:
    """The line's last word, lowercased and NFC, or None (no word, or a [marker])."""
    span = last_word_span(line)
    return None if span is None else unicodedata.normalize("NFC", line[span[0] : span[1]]).lower()


def rhyme_key(line: str) -> str | None:
    """The sound the line ends on (last vowel sound + consonants after it), or None."""
    word = last_word(line)
    return None if word is None else word_rhyme_key(word)


def word_rhyme_key(word: str) -> str | None:
    """The rhyme key of one lowercase word (see the module docstring for the rules)."""
    if word in _WHOLE_WORDS:
        return _WHOLE_WORDS[word]
    if word.endswith("ing") and len(word) > 4:  # English "-ing": swing, parking, shopping
        return "iŋ"
    word, nasal = _drop_mute_ending(word)
    mute_e = word.endswith("e") and _has_vowel(word[:-1])
    hard = False  # "blague", "attaque": the u keeps g/q hard before the mute e
    if mute_e:
        word = word[:-1]
        if word.endswith(("gu", "qu")):
            word, hard = word[:-1], True
    else:
        word = _drop_silent_consonants(_rewrite_open_ending(word))
    return _sound_of_end(word, soft_before_e=mute_e and not hard, nasal=nasal)


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


def _has_vowel(text: str) -> bool:
    return any(ch in _VOWELS for ch in text)


def _drop_mute_ending(word: str) -> tuple[str, str | None]:
    """Plural "-es" and verb "-ent" become a plain mute e ("chantent" -> "chante"). Words
    whose "-ent" is heard come back unchanged with their nasal vowel (ɑ̃, or ɛ̃ for "-tient")."""
    if word.endswith("es") and len(word) > 3:
        return word[:-1], None
    if not word.endswith("ent") or len(word) <= 3:
        return word, None
    if word.endswith(("tient", "vient")):
        return word, "ɛ̃"
    sounded_ment = word.endswith(("ement", "mment")) or (
        word.endswith("ment") and word[-5:-4] in tuple("oiuéa") and word not in _MUTE_MENT
    )
    if word in _SOUNDED_ENT or sounded_ment:
        return word, "ɑ̃"
    return word[:-2], None


def _rewrite_open_ending(word: str) -> str:
    """"-er", "-ez", "-et", "-ed" (and plurals) end on é; English "-er" on "eur", "-ow" on o."""
    stem = word[:-1] if word.endswith("s") else word
    if stem in _ENGLISH_ER:
        return stem[:-2] + "eur"
    if {word, stem} & (_SOUNDED_ER | _SOUNDED_T | _SOUNDED_D):
        return word
    if len(stem) > 2 and stem.endswith(("er", "ez", "et", "ed")):
        return stem[:-2] + "é"
    if stem.endswith("ow"):  # "flow", "show"
        return stem[:-1]
    return word


def _drop_silent_consonants(word: str) -> str:
    """Strip the silent final consonants of a word without a mute e: "grands" -> "gran"."""
    stem = word[:-1] if word.endswith("s") and len(word) > 2 else word
    if word in _SOUNDED_S or stem in _SOUNDED_S or word.endswith("ss"):
        return word
    if stem in _SOUNDED_T or stem in _SOUNDED_D or stem.endswith(("ct", "st", "tt")):
        return stem
    while len(word) > 1:
        last, before = word[-1], word[-2]
        if last == "s" or (last == "x" and (word[:-1].endswith(_SILENT_X_AFTER) or word in _SILENT_X)):
            word = word[:-1]
        elif last in "td":
            word = word[:-1]
        elif last == "z" and word in ("riz", "raz"):
            word = word[:-1]
        elif last == "p" and (before == "m" or word in _SILENT_P):
            word = word[:-1]
        elif last == "g" and before == "n" and word not in _SOUNDED_NG:
            word = word[:-1]
        elif last == "c" and before == "n":  # "blanc", "franc"
            word = word[:-1]
        else:
            break
    return word


def _sound_of_end(word: str, *, soft_before_e: bool, nasal: str | None) -> str | None:
    """Key from the last vowel group of ``word`` and the consonant letters after it.

    ``soft_before_e``: a mute e followed (c and g soften, a lone n/m after a vowel is oral).
    """
    end = len(word)
    while end > 0 and word[end - 1] not in _VOWELS:
        end -= 1
    if end == 0:  # "que" once its mute e is gone
        return "ə"
    if nasal:  # "moment", "client", "vient": known from the "-ent" rule
        return nasal
    start = end
    while start > 0 and word[start - 1] in _VOWELS:
        start -= 1
    vowels, coda = word[start:end], word[end:]
    mute_e = soft_before_e or word.endswith(("g", "q"))  # any mute e, hard or soft
    if vowels.endswith("i") and (coda == "ll" and mute_e or coda == "l" and not mute_e and len(vowels) > 1):
        # "fille", "travaille", "soleil", "feuille": ill/il spells the glide j
        nucleus = vowels[:-1] or vowels
        sound = "ø" if nucleus.endswith(("ue", "oe", "œ")) else _oral(nucleus, closed=True)
        return sound + "j"
    if coda[:1] in ("n", "m") and coda[:2] not in ("nn", "mm") and (len(coda) > 1 or not mute_e):
        if coda == "m" and vowels == "u":  # "album", "forum", "maximum"
            return "ɔm"
        if vowels.endswith("ie") and len(coda) > 1:  # "patience", "science": ɑ̃, unlike "bien"
            return "ɑ̃" + _consonant_sounds(coda[1:], soft_before_e=soft_before_e, after_vowel=False)
        return _nasal(vowels) + _consonant_sounds(coda[1:], soft_before_e=soft_before_e, after_vowel=False)
    if not coda and vowels == "e":
        return "ə"
    sounds = _consonant_sounds(coda, soft_before_e=soft_before_e, after_vowel=True)
    return _oral(vowels, closed=bool(sounds)) + sounds


def _oral(vowels: str, closed: bool) -> str:
    """Sound of an oral vowel group; é/è/ai are e when the syllable is open, ɛ when closed."""
    for spelling, sound in _ORAL:
        if vowels.endswith(spelling):
            if sound in ("e", "ə"):
                return "ɛ" if closed else "e"
            return sound
    return vowels


def _nasal(vowels: str) -> str:
    for spelling, sound in _NASAL:
        if vowels.endswith(spelling):
            return sound
    return vowels


def _consonant_sounds(coda: str, *, soft_before_e: bool, after_vowel: bool) -> str:
    """Pronounced consonants of a coda spelling; doubled letters sound once."""
    sounds: list[str] = []
    i = 0
    while i < len(coda):
        for spelling, sound in _CONSONANTS:
            if coda.startswith(spelling, i):
                i += len(spelling)
                break
        else:
            spelling, sound = coda[i], coda[i]
            i += 1
        if sound and (not sounds or sounds[-1] != sound):
            sounds.append(sound)
    if soft_before_e and sounds:
        if coda.endswith("c"):  # "place", "pince"
            sounds[-1] = "s"
        elif coda.endswith("g"):  # "rage", "ange"
            sounds[-1] = "ʒ"
        elif coda == "s" and after_vowel:  # "rose": one s between vowels
            sounds[-1] = "z"
    return "".join(sounds)
