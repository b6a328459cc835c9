"""Spelling rules for French words the lexicon lacks: rhyme key, vowels and syllables.

Lexique 3.83 (``jaxrap.phonetics.lexicon``) knows 125k spellings; rap also writes slang, verlan,
English loans and spellings of its own ("wesh", "tieks", "gova", "dealer", "p'tit"). For those,
these rules read the spelling; ``jaxrap.phonetics.pronounce`` asks them only when the lexicon has
no entry. Their agreement with the lexicon where both answer is measured by
``jaxrap.phonetics.agreement`` (README: 99.4% of syllable counts, rhyme pairs at 99.6%
precision and 99.5% recall on the 10,000 most frequent forms they were tuned on; 99.4%, 97.0%
and 99.3% on the next 20,000). Words arrive one at a time, lower case, without apostrophes
(``jaxrap.phonetics.spoken`` splits a bar).

**Rhyme key** (``spelling_rhyme_key``). The word is read from its end:

- a mute final ``e`` (with ``s``, or the verb ending ``ent``) is dropped, and it makes the
  consonants before it heard ("chante" -> "ɑ̃t", but "chant" -> "ɑ̃");
- otherwise final ``s x t d z p b g c`` are silent, with short lists of exceptions
  ("bus", "net", "sud", "gaz", "stop", "bled", "street", final ``ct``/``st``/``ss``/``pt``);
- ``er``/``ez``/``et``/``ed`` end on the sound of ``é`` ("parler", "assez", "secret"), except
  "mer", "fer", "hiver", "vers"... (ɛʁ) and English loans such as "dealer" (œʁ);
- vowel spellings become one sound: ``eau au o ô`` -> o; ``ai ei è ê é`` -> e in an open
  final syllable, ɛ before a consonant; ``eu œu`` -> ø; ``ou`` -> u; ``oi`` and ``oua`` -> wa;
  ``u`` -> y; ``ui`` -> i; nasals ``an am en em`` -> ɑ̃, ``in im ain ein un ien oin`` -> ɛ̃,
  ``on om`` -> ɔ̃ (a vowel before a single ``n``/``m`` and a mute e is oral: "lune" -> yn;
  ``ou``/``oo`` before n/m never nasal: "boum"); a final stressed schwa is ø ("que", "le");
- ``ille``/final ``il`` after a vowel is the glide j ("fille" -> ij, "soleil" -> ɛj);
  ``ch`` -> ʃ, ``gn`` -> ɲ, ``ge`` -> ʒ, ``ce`` -> s, a single ``s`` between vowels -> z,
  ``-isme`` -> izm, the p of ``-mpt`` is silent ("compte" -> ɔ̃t).

**Vowels and syllables** (``spelling_vowels``, ``spelling_syllables``): one nucleus per run of
vowel letters, split where French splits it. Spellings of one sound are one nucleus (``eau``,
``ai``, ``ou``, ``oi``, ``eu``, ``ui``, English ``ee``/``oo``/``ea``); ``i``, ``u``, ``ou``, ``y``
before another vowel are glides (``piano`` 2, ``nuage`` 1, ``jouer`` 1) unless a consonant + l/r
comes before (``cri-er``, ``cru-el``); ``ï``/``ë``/``ü`` and a vowel after ``é`` start a new one
(``naïf``, ``réel``); an ``e`` after a vowel in an open syllable is silent (``gaieté``,
``dévouement``); ``y`` between vowels is i + j (``payer`` 2); ``u`` after ``q`` and before e/i
after ``g`` is no vowel (``qui``, ``guerre``), nor the ``e`` of ``geo``/``cea`` (``mangeons``);
``i`` of ``ill``/final ``il`` after a vowel is the glide j (``feuille`` 1). The mute endings of
the key rules are not syllables. Vowels are written like the keys' with e/ɛ merged.

Limits (by design: these rules only read what the lexicon lacks):
- heterophones the spelling cannot tell apart are guessed: "-ent" is a mute verb ending
  unless the word is in a short list or ends in a vowel + "ment" ("moment", "vraiment"),
  so "ils mentent" is right and rarer adjectives ("transparent") are wrong, which is the right
  default for the slang verbs the rules meet ("ils bicravent");
- loanwords beyond a few rap staples ("flow", "street", "dealer", "-ing", "-all") are read as
  French ("spider" rhymes in é, "cake" in ak);
- the internal schwas Lexique sometimes drops (``médecin`` medsɛ̃) are counted.
"""

from __future__ import annotations

import re

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
    "eu": "y", "eus": "y", "eut": "y", "eue": "y", "eues": "y", "eût": "y", "donc": "ɔ̃k", "cet": "ɛt",
    "gars": "a", "monsieur": "ø", "messieurs": "ø", "nerf": "ɛʁ", "cerf": "ɛʁ", "porc": "oʁ",
    "oeufs": "ø", "œufs": "ø", "boeufs": "ø", "bœufs": "ø", "yeah": "e", "bye": "aj", "boy": "oj",
    "ok": "e", "pays": "i",
}
# "-ent" is the mute verb ending ("ils chantent") except in these words, in "-ement"/"-mment"
# and after a vowel + "m" ("moment", "vraiment", "élément"; verbs listed in _MUTE_MENT);
# "-tient"/"-vient" end in ɛ̃.
_SOUNDED_ENT = frozenset(
    "absent accent accident adjacent adolescent ardent argent cent client compétent confident"
    " content décent dent différent éloquent équivalent évident excellent fréquent gent"
    " impatient imprudent incident indécent innocent insolent intelligent lent ment orient"
    " parent patient permanent précédent présent président prudent récent sent serment serpent"
    " silent souvent talent torrent tourment urgent vent violent conscient inconscient efficient"
    " quotient ressent consent pressent agent sergent régent continent conséquent couvent inconvénient".split()
)
_MUTE_MENT = frozenset("aiment riment priment expriment impriment suppriment animent abîment fument allument résument".split())
_SOUNDED_ER = frozenset(  # "-er" read ɛʁ, not é
    "mer fer ver cher fier hier amer hiver enfer super vers travers univers envers pervers"
    " divers revers cancer laser éther hamster gangster magister poker revolver hyper tiers"
    " scanner reporter joker bunker der".split()
)
_ENGLISH_ER = frozenset(  # "-er" read œʁ, as in "peur"
    "dealer killer hater player leader rider loser rapper biker speaker sniper"
    " rocker thriller hustler baller gamer manager scooter hamburger".split()
)
# Final consonants that stay pronounced in these words (looked up without a plural s).
_SOUNDED_S = frozenset(
    "bus virus bonus cactus campus terminus consensus processus sinus tennis iris oasis jadis"
    " tandis vis lis bis maïs hélas atlas as os ours mars sens cosmos pathos blocus papyrus"
    " rébus hiatus lotus chorus prospectus plexus anus humus ananas albatros nounours autobus"
    " infarctus minus gus axis gratis tournevis pénis alias matos gratos pesos calmos rapidos".split()
)
_SOUNDED_T = frozenset("net brut huit but chut zut mat dot août fat shit hit beat street tweet feat out set kit bit appart jet basket internet".split())
_SOUNDED_D = frozenset("sud bled raid stand weed speed hood bad good kid squad gold band".split())
_SILENT_P = frozenset("trop sirop galop drap loup coup beaucoup".split())
_SOUNDED_NG = frozenset("gang bang slang boomerang".split())
_SILENT_X_AFTER = ("au", "eu", "ou", "oi", "ai", "ei")  # "faux", "deux", "doux", "voix", "paix"
_SILENT_X = frozenset(("prix", "perdrix", "flux", "crucifix"))

# Oral vowel spellings, longest first (matched against the end of the final vowel group).
_ORAL = (
    ("eau", "o"), ("ieu", "ø"), ("oeu", "ø"), ("œu", "ø"), ("aie", "e"), ("oue", "e"), ("oua", "wa"),
    ("ouâ", "wa"), ("oê", "wa"),
    ("au", "o"), ("eu", "ø"), ("eû", "ø"), ("œ", "ø"), ("ou", "u"), ("oû", "u"), ("où", "u"), ("oi", "wa"),
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
    ("é", "ɛ̃"), ("à", "ɑ̃"), ("â", "ɑ̃"), ("ä", "ɑ̃"), ("æ", "ɑ̃"), ("è", "ɛ̃"), ("ê", "ɛ̃"), ("ë", "ɛ̃"),
    ("î", "ɛ̃"), ("ï", "ɛ̃"), ("ÿ", "ɛ̃"), ("û", "ɛ̃"), ("ü", "ɛ̃"), ("ù", "ɛ̃"), ("œ", "ɛ̃"), ("ô", "ɔ̃"),
    ("ö", "ɔ̃"),
)
_ORAL_SOUNDS, _NASAL_SOUNDS = dict(_ORAL), dict(_NASAL)
# Consonant spellings, longest first, read left to right through the coda.
_CONSONANTS = (
    ("sch", "ʃ"), ("ch", "ʃ"), ("sh", "ʃ"), ("ph", "f"), ("th", "t"), ("gn", "ɲ"), ("ck", "k"),
    ("qu", "k"), ("gu", "g"), ("ç", "s"), ("c", "k"), ("q", "k"), ("x", "ks"), ("h", ""),
    ("r", "ʁ"), ("j", "ʒ"),
)


def spelling_rhyme_key(word: str) -> str | None:
    """The rhyme key of one lowercase word (see the module docstring for the rules)."""
    if word in _WHOLE_WORDS:
        return _WHOLE_WORDS[word]
    if word.endswith("s") and word[:-1] in _WHOLE_WORDS:  # "suspects", "nerfs"
        return _WHOLE_WORDS[word[:-1]]
    if word.endswith("ing") and len(word) > 4 and not word.endswith("oing"):  # swing, parking; not "poing"
        return "iŋ"
    if word.endswith(("aye", "ayes", "ayent")):  # "essaye", "paye": ɛj
        return "ɛj"
    if word.endswith(("ee", "ees")):  # English "yankee", "coffee"
        return "i"
    if word.endswith(("all", "alls")) and len(word) > 4:  # English "football", "hall"
        return "ol"
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


def _has_vowel(text: str) -> bool:
    return any(ch in _VOWELS for ch in text)


def _drop_mute_ending(word: str) -> tuple[str, str | None]:
    """Plural "-es" and verb "-ent" become a plain mute e ("chantent" -> "chante"). Words
    whose "-ent" is heard come back unchanged with their nasal vowel (ɑ̃, or ɛ̃ for "-tient")."""
    if word.endswith("ents") and word[:-1] in _SOUNDED_ENT:  # "clients", "patients"
        return word, "ɑ̃"
    if word.endswith("es") and len(word) > 3:
        return word[:-1], None
    if not word.endswith("ent") or len(word) <= 3:
        return word, None
    if word.endswith(("tient", "vient")) and word not in _SOUNDED_ENT:  # not "patient"
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
    if stem in _SOUNDED_T or stem in _SOUNDED_D or stem.endswith(("ct", "st", "tt", "pt")) and not stem.endswith(("mpt", "nct")):
        return stem
    while len(word) > 1:
        last, before = word[-1], word[-2]
        if last == "s" or (last == "x" and (word[:-1].endswith(_SILENT_X_AFTER) or word in _SILENT_X)):
            word = word[:-1]
        elif last in "td":
            word = word[:-1]
        elif last == "z" and word in ("riz", "raz"):
            word = word[:-1]
        elif last == "p" and (before == "m" or word in _SILENT_P) or last == "b" and before == "m":  # "camp", "plomb"
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
    if end == 0:  # "que" once its mute e is gone: a stressed schwa is said ø
        return "ø"
    if nasal:  # "moment", "client", "vient": known from the "-ent" rule
        return nasal
    start = end
    while start > 0 and word[start - 1] in _VOWELS:
        start -= 1
    vowels, coda = word[start:end], word[end:]
    if vowels in ("ea", "eâ", "eo", "eô") and word[start - 1 : start] in ("g", "c"):  # "changea", "geôle": e softens g
        vowels = vowels[1:]
    mute_e = soft_before_e or word.endswith(("g", "q"))  # any mute e, hard or soft
    if vowels.endswith("i") and (coda == "ll" and mute_e or coda == "l" and not mute_e and len(vowels) > 1 and vowels != "oi"):
        # "fille", "travaille", "soleil", "feuille": ill/il spells the glide j
        nucleus = vowels[:-1] or vowels
        if nucleus == "u":  # "aiguille": ɥij
            return "ij"
        sound = "ø" if nucleus.endswith(("ue", "oe", "œ")) else _oral(nucleus, closed=True)
        return sound + "j"
    if coda[:1] in ("n", "m") and coda[:2] not in ("nn", "mm") and (len(coda) > 1 or not mute_e) and not vowels.endswith(("ou", "oo")):
        if coda == "m" and vowels.endswith("u"):  # "album", "maximum", "aquarium": om (ɔ merged)
            return "om"
        if coda[:1] in ("n", "m") and len(coda) == 1 and vowels == "ea" and word[start - 1 : start] != "g":  # "team", not "dirigeant"
            return "i" + coda
        after_nasal = coda[2:] if coda.startswith("mpt") else coda[1:]  # "compte": the p is silent
        after_nasal = _consonant_sounds(after_nasal, soft_before_e=soft_before_e, after_vowel=False)
        if vowels.endswith("ie") and len(coda) > 1:  # "patience", "science": ɑ̃, unlike "bien"
            return "ɑ̃" + after_nasal
        return _nasal(vowels) + after_nasal
    if not coda and vowels == "e":
        return "ø"
    sounds = _consonant_sounds(coda, soft_before_e=soft_before_e, after_vowel=True)
    if sounds.startswith("sm") and vowels.endswith(("i", "y", "ï")):  # "-isme" is izm ("fantasme" keeps asm)
        sounds = "z" + sounds[1:]
    return _oral(vowels, closed=bool(sounds)) + sounds


def _oral(vowels: str, closed: bool) -> str:
    """Sound of an oral vowel group; é/è/ai are e when the syllable is open, ɛ when closed."""
    sound = _longest_suffix(_ORAL_SOUNDS, vowels)
    if sound in ("e", "ə"):
        return "ɛ" if closed else "e"
    return sound


def _nasal(vowels: str) -> str:
    return _longest_suffix(_NASAL_SOUNDS, vowels)


def _longest_suffix(sounds: dict[str, str], vowels: str) -> str:
    """The sound of the longest spelling in ``sounds`` that ends ``vowels`` (``vowels`` if none)."""
    for length in (3, 2, 1):
        sound = sounds.get(vowels[-length:]) if len(vowels) >= length else None
        if sound is not None:
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


# --- Vowels and syllables -----------------------------------------------------------------
# Vowel spellings that are one sound ("eau", "oeu": one nucleus, not two); the longest wins.
_VOWEL_UNITS = frozenset(("eau", "oeu", "œu", "eu", "eû", "au", "ai", "aî", "ei", "oi", "oî", "oê", "ou", "oû", "où",
                          "ui", "ee", "oo", "ea", "ay", "ey", "oy"))
_GLIDES = ("i", "u", "ou", "y", "î", "û")  # before another vowel they are j, ɥ, w: no syllable of their own
# A consonant + liquid before a glide vowel keeps it a syllable: "cri-er", "pri-ère", "cru-el", "trou-er".
_OBSTRUENT_LIQUID = ("pr", "br", "tr", "dr", "cr", "gr", "fr", "vr", "pl", "bl", "cl", "gl", "fl")
_DIAERESIS = ("ï", "ë", "ü")  # "naïf", "noël": a new syllable
_DIGRAPHS = ("ch", "ph", "th", "gn", "sh", "ck")  # one consonant sound: an e before them stays open
_CONSONANT_Y = "J"  # marks y read as the consonant j ("yeux", "pa-yer")
_CONSONANT_U = "W"  # marks u read as no vowel ("qui", "guerre")
_NEEDS_MARKS = re.compile(r"y|qu|gu|[gc]e[aouâôû]|ouh")  # the letters _mark_consonant_letters rewrites
_MUTE_E = "°"  # marks a mute final e: not a syllable, but "lune" is oral and "chante" closes on t


def spelling_vowels(word: str, *, continues: bool = False) -> tuple[str, ...]:
    """The vowel sounds of one lowercase word by spelling rules, one per spoken syllable.

    In the key alphabet (``jaxrap.phonetics.sounds``) with e/ɛ merged: "petit" -> (ə, i),
    "chantent" -> (ɑ̃,), "voyage" -> (wa, a), "crier" -> (i, e), "dealer" -> (i, ø).
    Empty for a word without a vowel letter ("psg", "pff"). ``continues``: the letters end a
    word begun before them (a tokenizer's piece such as "te", "es", "ent"), so a final e, es or
    verb ent is mute even when it is their only vowel.
    """
    return tuple(sound for _, sound in _nuclei(word, continues))


def has_vowel_letter(word: str) -> bool:
    """Whether a lowercase word has a letter read as a vowel ("qu", "psg", "pff" have none)."""
    return _has_vowel(_mark_consonant_letters(word))


def spelling_syllables(word: str, *, continues: bool = False) -> int:
    """Spoken syllables of one lowercase word by spelling rules (``len(spelling_vowels(word))``)."""
    return len(_nuclei(word, continues))


def _nuclei(word: str, continues: bool = False) -> list[tuple[str, str]]:
    """(spelling, sound) of each syllable nucleus of ``word``, left to right."""
    spoken = _drop_mute_end(word, continues)
    nuclei: list[tuple[str, str]] = []
    i = 0
    while i < len(spoken):
        if spoken[i] not in _VOWELS:
            i += 1
            continue
        start = i
        while i < len(spoken) and spoken[i] in _VOWELS:
            i += 1
        group, after = spoken[start:i], spoken[i:]
        nasal = after[:1] in ("n", "m") and (len(after) == 1 or after[1] not in _VOWELS | {"n", "m", "h", _MUTE_E})
        if nasal:
            after = after[1:]
        nuclei.extend(_split_group(group, before=spoken[:start], after=after, nasal=nasal))
    return nuclei


def _drop_mute_end(word: str, continues: bool = False) -> str:
    """Marked spelling (``_mark_consonant_letters``) without the mute ending a rapper does not
    say: "-e", "-es", verb "-ent" ("chantent" -> "chant"); English "-er" is "eur" ("dealer")."""
    if continues and word in ("e", "es", "ent"):
        return _MUTE_E
    if continues and word.endswith("es"):  # "tes", "nes": mute however short
        word = word[:-1]
    stem, nasal = _drop_mute_ending(word)  # "-es" -> "-e", mute "-ent" -> "-e"
    if stem in _ENGLISH_ER:
        stem = stem[:-2] + "eur"
    marked = _mark_consonant_letters(stem)
    if nasal or not marked.endswith("e"):
        return marked
    if continues or _has_vowel(marked[:-1]):
        return marked[:-1] + _MUTE_E
    return marked  # "le", "que": the e is the word's only vowel


def _opens(after: str) -> bool:
    """Whether a vowel followed by ``after`` ends its syllable: nothing, or one consonant
    sound then a vowel ("pe-tit", "ca-cher"); "reste", "mer", "wesh" close it."""
    if not after:
        return True
    consonant = 2 if after[:2] in _DIGRAPHS else 1
    return after[0] not in _VOWELS and len(after) > consonant and after[consonant] in _VOWELS | {_MUTE_E}


def _mark_consonant_letters(word: str) -> str:
    """y read as j and u read as nothing get marks that are not vowels; e after g/c before a/o/u
    ("mangeons", "geôle") is dropped."""
    if not _NEEDS_MARKS.search(word):
        return word
    out: list[str] = []
    for i, letter in enumerate(word):
        before, after = word[i - 1 : i], word[i + 1 : i + 2]
        if letter == "y" and after in _VOWELS and (not before or before in _VOWELS):
            out.append(_CONSONANT_Y if not before else "i" + _CONSONANT_Y)  # "yeux"; "payer" = pai-yer
        elif letter == "u" and (before == "q" or (before == "g" and after in ("e", "i", "y", "é", "è", "ê"))):
            out.append(_CONSONANT_U)
        elif letter == "e" and before in ("g", "c") and after in ("a", "o", "u", "â", "ô", "û"):
            continue
        elif letter == "h" and word[i - 2 : i] == "ou" and after in _VOWELS:  # "souhait": swɛ
            continue
        else:
            out.append(letter)
    return "".join(out)


def _split_group(group: str, *, before: str, after: str, nasal: bool) -> list[tuple[str, str]]:
    """Nuclei of one run of vowel letters; ``after`` is what follows it (n/m of a nasal removed)."""
    units: list[str] = []
    i = 0
    while i < len(group):
        unit = next((group[i : i + n] for n in (3, 2) if group[i : i + n] in _VOWEL_UNITS), group[i])
        if unit == "oo" and before == "c" and after[:1] in ("p", "r"):  # "coopérer", "coordonner": co-o, not "cool"
            unit = "o"
        units.append(unit)
        i += len(unit)
    hiatus = before.endswith(_OBSTRUENT_LIQUID)  # "cri-er", not "pied"
    open_after = _opens(after)
    nuclei: list[str] = []
    for position, unit in enumerate(units):
        if not nuclei or unit.startswith(_DIAERESIS):
            nuclei.append(unit)
        elif unit == "e" and position == len(units) - 1 and open_after and not nasal:
            nuclei[-1] += unit  # "gaieté", "dévouement": a silent e after a vowel
        elif unit == "i" and position == len(units) - 1 and (after.startswith("ll") or after in ("l", "l" + _MUTE_E)):
            nuclei[-1] += unit  # "feuille", "fauteuil", "trouille": ill/il spells the glide j
        elif nuclei[-1] in _GLIDES and not hiatus:
            nuclei[-1] += unit  # "piano", "lion", "nuage", "jouer": one syllable
        else:
            nuclei.append(unit)
    sounds = []
    for index, nucleus in enumerate(nuclei):
        last = index == len(nuclei) - 1
        if last and nasal:
            if nucleus == "u" and after == "" and group == "u":  # "album", "maximum"
                sound = "o"
            elif nucleus == "e" and before.endswith(_CONSONANT_Y):  # "moyen"
                sound = "ɛ̃"
            else:
                sound = _nasal(nucleus)
        elif nucleus == "e" and last:
            sound = "ə" if _opens(after) else "e"  # "petit", "demain" / "reste", "mer"
        else:
            sound = _oral(nucleus, closed=False)
        sounds.append((nucleus, {"ɛ": "e", "wa": "a"}.get(sound, sound)))  # e/ɛ merged; the w of oi is a glide
    return sounds
