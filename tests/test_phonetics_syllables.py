"""Spoken syllables of invented bars: lexicon counts, spelling rules for words it lacks, elision,
mute endings, numbers and abbreviations spelled out; properties over any text (Hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from jaxrap.errors import JaxrapError
from jaxrap.phonetics.pronounce import pronounce
from jaxrap.phonetics.rhyme import bar_ending, bar_vowels, rhyme_key
from jaxrap.phonetics.sounds import KEY_VOWELS
from jaxrap.phonetics.spelling import has_vowel_letter, spelling_rhyme_key, spelling_syllables, spelling_vowels
from jaxrap.phonetics.spoken import spoken_words
from jaxrap.phonetics.syllables import count_syllables, word_syllables


@pytest.mark.parametrize(
    "bar,syllables",
    [
        ("Je gratte mon cahier quand la ville s'endort", 10),  # grat-te is 1: the mute e is silent
        ("Les lampadaires brillent, j'écris encore", 9),  # -ent of "brillent" mute, j' elided
        ("Ils chantent la pente de l'attente", 7),
        ("Un moment, vraiment, souvent", 7),  # sounded -ent
        ("Le petit samedi", 6),  # internal schwas count, as in Lexique
        ("Le p'tit sam'di", 4),  # ... unless the writer dropped them
        ("J'ai 2000 euros", 5),  # j'ai 1, deux mille 2, euros 2
        ("Le 1er, la 2e, 100%", 9),  # le pre-mier la deu-xième cent pour cent
        ("À 24h, 10 000 balles", 7),  # à vingt-quatre heures, dix mille balles
        ("PNL et le PSG", 8),  # acronyms spelled out: pé-èn-èl, pé-ès-gé
        ("pff, y'a bcp de monde", 6),  # interjection 1, y'a 1, beaucoup 2, de 1, monde 1
        ("Qu'est-ce qu'il dit ? 🎤🔥", 4),
        ("Va-t-il dis-le", 4),
        ("Wesh la team, on kiffe", 5),  # slang and loans through the rules
        ("", 0),
        ("🔥 ... !!!", 0),
    ],
)
def test_invented_bars(bar, syllables):
    assert count_syllables(bar) == syllables, word_syllables(bar)


@pytest.mark.parametrize(
    "word,syllables",
    [
        # slang, verlan and loans the lexicon lacks (checked below), as the rules read them
        ("wesh", 1), ("tieks", 1), ("narvalo", 3), ("bicrave", 2), ("charbonnent", 2), ("seum", 1),
        ("chelou", 2), ("relou", 2), ("gova", 2), ("igo", 2), ("khey", 1), ("money", 2),
        ("flow", 1), ("street", 1), ("hater", 2), ("nigga", 2), ("kiffer", 2), ("miskine", 2),
        ("zehef", 2), ("rebeu", 2), ("renoi", 2), ("bédo", 2), ("daronne", 2), ("skeud", 1),
        ("crier", 2), ("piano", 2), ("nuage", 1), ("réel", 2), ("naïf", 2), ("payer", 2),
        ("voyage", 2), ("feuille", 1), ("gaieté", 2), ("dévouement", 3), ("coopérer", 4),
    ],
)
def test_spelling_rules_on_words_the_lexicon_may_lack(word, syllables):
    assert spelling_syllables(word) == syllables, spelling_vowels(word)


def test_slang_is_read_by_the_rules_and_french_by_the_lexicon():
    assert pronounce("wesh").source == "rules" and pronounce("narvalo").source == "rules"
    assert pronounce("maintenant") == (3, ("ɛ̃", "ə", "ɑ̃"), "ɑ̃", "lexicon")
    assert pronounce("blanche").syllables == 1  # Lexique's bl@S° has a final schwa; it is mute
    assert pronounce("psg") == (3, ("e", "e", "e"), "e", "letters")
    assert pronounce("hmm").source == "interjection" and pronounce("hmm").syllables == 1


def test_elision_and_word_pieces():
    words = spoken_words("J'm'arrache jusqu'à l'aube, aujourd'hui")
    assert [(w.text, w.pronunciation.syllables, w.elided) for w in words] == [
        ("j", 0, True), ("m", 0, True), ("arrache", 2, False), ("jusqu'à", 2, False),
        ("l", 0, True), ("aube", 1, False), ("aujourd'hui", 3, False),
    ]
    assert [w.text for w in spoken_words("y'a")] == ["y", "a"] and count_syllables("y'a") == 1
    assert count_syllables("l’amour") == count_syllables("l'amour") == 2  # typographic apostrophe


def test_a_word_cut_short_before_a_final_apostrophe_is_said():
    """An apocope ("le périph'", "ma tess'", "le dé'") is said, with its syllables, and ends the
    bar; a final elided piece ("j'", "qu'", "jusqu'") stays elided."""
    assert [(w.text, w.elided) for w in spoken_words("le périph'")] == [("le", False), ("périph", False)]
    assert count_syllables("le dé'") == 2 and count_syllables("le périph'") == 3
    assert bar_ending("On a les nerfs sur la vie de ma tess'").word == "tess"  # not "ma", a function word
    assert bar_ending("mon appart’").key == "aʁt"
    assert [(w.text, w.elided) for w in spoken_words("parce qu' jusqu' j'")] == [
        ("parce", False), ("qu", True), ("jusqu", True), ("j", True)
    ]


def test_continuing_pieces_read_their_end_as_mute():
    assert spelling_syllables("te") == 1 and spelling_syllables("te", continues=True) == 0
    assert [spelling_syllables(piece, continues=True) for piece in ("ent", "es", "tes", "ment", "tion")] == [0, 0, 0, 1, 1]


def test_mute_endings():
    assert count_syllables("chante") == count_syllables("chantent") == count_syllables("chantes") == 1
    assert count_syllables("le") == count_syllables("que") == 1  # a lone e is the word's vowel
    assert count_syllables("filles") == 1 and count_syllables("ville") == 1


# Properties over arbitrary text: French letters, digits, rap punctuation, capitals, emojis.
FRENCH = st.text(alphabet=st.sampled_from(list("abcdeéèêfghiïjklmnoôpqrstuùvwxyzàâçœAÉPSGL0123456789 '’-,.!?%€&🔥")), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_string_counts_without_errors(text):
    try:
        count = count_syllables(text)
        key = rhyme_key(text)
        vowels = bar_vowels(text)
    except JaxrapError:
        return
    assert count >= 0 and len(vowels) <= count
    assert key is None or isinstance(key, str) and key


@settings(max_examples=300, deadline=None)
@given(FRENCH, FRENCH)
def test_syllables_add_up_over_bars_joined_by_a_slash(first, second):
    """What is said in "a / b" is what is said in a, then in b."""
    assert count_syllables(f"{first} / {second}") == count_syllables(first) + count_syllables(second)


@settings(max_examples=300, deadline=None)
@given(FRENCH, st.sampled_from(["", " !", "...", " 🔥", " ?!", ",", "   "]))
def test_trailing_punctuation_and_emojis_change_nothing(bar, tail):
    assert count_syllables(bar + tail) == count_syllables(bar)
    assert rhyme_key(bar + tail) == rhyme_key(bar)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abcdeéèêfghiïjklmnoôpqrstuùûvwxyzàâçœæ")), min_size=1, max_size=14))
def test_spelling_rules_on_any_lowercase_word(word):
    vowels = spelling_vowels(word)
    assert len(vowels) == spelling_syllables(word) and set(vowels) <= KEY_VOWELS
    assert (len(vowels) > 0) == has_vowel_letter(word)
    key = spelling_rhyme_key(word)
    assert any(key.startswith(vowel) for vowel in KEY_VOWELS | {"wa"}), key
    if has_vowel_letter(word):
        assert rhyme_key(f"je dis {word}") == rhyme_key(word)  # a bar's key is its last word's
