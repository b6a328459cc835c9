"""Per-token tables: hand-made byte-level vocabularies with known answers, the host replay of the
per-row update the sampler will run on device, caching, and a real BPE against the word counter."""

from __future__ import annotations

import numpy as np
import pytest

from jaxrap.errors import JaxrapError
from jaxrap.phonetics.rhyme import bar_vowels, rhyme_key
from jaxrap.phonetics.sounds import MAX_RHYME_VOWELS, SEQUENCE_VOWELS
from jaxrap.phonetics.syllables import count_syllables
from jaxrap.phonetics.token_tables import (
    build_token_tables,
    replay_bar,
    state_rhyme_key,
    token_agreement,
    token_tables,
)

# (decoded text, raw vocabulary string) of an invented byte-level vocabulary; id = position.
VOCAB = [
    ("<|endoftext|>", "<|endoftext|>"), ("\n", "Ċ"), (" chant", "Ġchant"), ("ent", "ent"),
    ("e", "e"), (" mon", "Ġmon"), ("de", "de"), ("Je", "Je"), (" j", "Ġj"), ("'", "'"),
    ("ai", "ai"), (" nuit", "Ġnuit"), ("s", "s"), (" ?", "Ġ?"), (" telle", "Ġtelle"), ("ment", "ment"),
    (" pluie", "Ġpluie"), ("t", "t"), (" 2000", "Ġ2000"), (" PSG", "ĠPSG"), (" l", "Ġl"), ("amour", "amour"),
    (" de", "Ġde"), (" ma", "Ġma"), (" vie", "Ġvie"), (" avis", "Ġavis"), (",", ","), ("-", "-"), ("le", "le"),
]
IDS = {raw: i for i, (_, raw) in enumerate(VOCAB)}


@pytest.fixture(scope="module")
def tables():
    texts, raw = zip(*VOCAB)
    return build_token_tables(texts, raw, [i == 0 for i in range(len(VOCAB))])


def ids(*raws: str) -> list[int]:
    return [IDS[raw] for raw in raws]


def test_fields_shapes_and_dtypes(tables):
    size = len(VOCAB)
    for name, dtype in [("starts_word", bool), ("breaks_word", bool), ("has_newline", bool),
                        ("syllables", np.int8), ("word_start_syllables", np.int8), ("rhyme_class", np.int32)]:
        array = getattr(tables, name)
        assert array.shape == (size,) and array.dtype == dtype, name
    assert list(tables.rhyme_keys) == sorted(set(tables.rhyme_keys)) and tables.vocab_size == size
    assert tables.rhyme_class.max() < len(tables.rhyme_keys)


def test_words_newlines_and_control_tokens(tables):
    starts = {raw for raw, i in IDS.items() if tables.starts_word[i]}
    assert starts == {"Ġchant", "Ġmon", "Ġj", "Ġnuit", "Ġtelle", "Ġpluie", "Ġ2000", "ĠPSG", "Ġl", "Ġde", "Ġma", "Ġvie",
                      "Ġavis"}  # not "Ġ?"
    assert np.flatnonzero(tables.has_newline).tolist() == ids("Ċ")
    assert {raw for raw, i in IDS.items() if tables.breaks_word[i]} == {"<|endoftext|>", "Ċ", "'", "Ġ?", ",", "-"}
    assert {raw for raw, i in IDS.items() if tables.no_letters[i]} == {"<|endoftext|>", "Ċ", "'", "Ġ?", ",", "-"}
    eos = IDS["<|endoftext|>"]
    assert tables.syllables[eos] == tables.word_start_syllables[eos] == 0 and tables.rhyme_class[eos] == -1


@pytest.mark.parametrize(
    "raw,continuing,starting,key",
    [
        ("Ġchant", 1, 1, "ɑ̃"), ("ent", 0, 1, None), ("e", 0, 1, None), ("de", 0, 1, None),
        ("Je", 0, 1, None), ("Ġj", 0, 0, None), ("ai", 1, 1, "e"), ("Ġnuit", 1, 1, "i"), ("s", 0, 0, None),
        ("ment", 1, 1, "ɑ̃"), ("t", 0, 0, None), ("Ġ2000", 2, 2, None), ("ĠPSG", 3, 3, "e"), ("Ċ", 0, 0, None),
    ],
)
def test_per_token_values(tables, raw, continuing, starting, key):
    token = IDS[raw]
    assert (tables.syllables[token], tables.word_start_syllables[token]) == (continuing, starting)
    got = tables.rhyme_keys[tables.rhyme_class[token]] if tables.rhyme_class[token] >= 0 else None
    assert got == key


@pytest.mark.parametrize(
    "raws,bar",
    [
        (("Je", "Ġchant"), "Je chant"),  # a bar starts after a newline: "Je" is a word
        (("Ġmon", "Ġ?"), " mon ?"),  # "?" keeps the class of "mon"
        (("Ġj", "'", "ai"), " j'ai"),
        (("Ġl", "'", "amour"), " l'amour"),
        (("Ġpluie", "Ġnuit", "s"), " pluie nuits"),  # a silent s keeps the class of "nuit"
        (("Ġpluie", "Ġ2000"), " pluie 2000"),
    ],
)
def test_replay_matches_the_word_counter_on_these_bars(tables, raws, bar):
    state = replay_bar(tables, ids(*raws))
    assert state.syllables == count_syllables(bar)
    key = rhyme_key(bar)
    assert (tables.rhyme_keys[state.word_class] if state.word_class >= 0 else None) == (None if "2000" in bar else key)


@pytest.mark.parametrize(
    "raws,bar,syllables,key",
    [
        (("Ġchant", "e"), "chante", 1, "ɑ̃"),  # the t heard before a mute e is lost from the class
        (("Ġchant", "ent"), "chantent", 1, "ɑ̃"),
        (("Ġmon", "de"), "monde", 1, "ɔ̃"),
        (("Ġtelle", "ment"), "tellement", 2, "ɑ̃"),  # Lexique's schwa (tEl°m@) is in no token
    ],
)
def test_known_token_level_limits(tables, raws, bar, syllables, key):
    state = replay_bar(tables, ids(*raws))
    assert (state.syllables, tables.rhyme_keys[state.word_class]) == (syllables, key)
    assert (count_syllables(bar), rhyme_key(bar)) != (syllables, key)


def vowel_names(state) -> list[str]:
    return [SEQUENCE_VOWELS[v] for v in state.vowels if v >= 0]


def test_vowels_follow_the_syllables_and_give_keys_of_n_vowels(tables):
    assert tables.vowels.shape == tables.word_start_vowels.shape == (len(VOCAB), MAX_RHYME_VOWELS)
    assert tables.vowels.dtype == tables.word_start_vowels.dtype == np.int8
    for bar, raws in [("ma vie", ("Ġma", "Ġvie")), ("l'avis", ("Ġl", "'", "Ġavis")), ("2000 PSG", ("Ġ2000", "ĠPSG")),
                      ("pluie nuits de ma vie", ("Ġpluie", "Ġnuit", "s", "Ġde", "Ġma", "Ġvie"))]:
        state = replay_bar(tables, ids(*raws))
        assert vowel_names(state) == list(bar_vowels(bar))[-MAX_RHYME_VOWELS:], bar
        for vowels in (1, 2, 3):
            assert state_rhyme_key(tables, state, vowels) == rhyme_key(bar, vowels), (bar, vowels)
    # a piece continuing a word says the vowels of its letters; a mute ending says none
    assert vowel_names(replay_bar(tables, ids("Ġchant", "ent"))) == ["ɑ̃"]
    assert vowel_names(replay_bar(tables, ids("Ġtelle", "ment"))) == ["e", "ɑ̃"]
    assert vowel_names(replay_bar(tables, ids("Ġj", "'", "ai", "Ġmon", "de"))) == ["e", "ɔ̃"]


def test_function_words_are_flagged_as_whole_words_only(tables):
    flagged = {raw for raw, i in IDS.items() if tables.function_word[i]}
    assert flagged == {"Ġmon", "Ġde", "Ġma", "de", "le", "Je"}  # each read as a whole word
    assert replay_bar(tables, ids("Ġpluie", "Ġde")).word_function
    assert replay_bar(tables, ids("Ġpluie", "Ġde", ",")).word_function  # punctuation leaves the word as it is
    assert not replay_bar(tables, ids("Ġmon", "de")).word_function  # "monde": letters continue the word
    assert not replay_bar(tables, ids("Ġde", "Ġvie")).word_function
    assert replay_bar(tables, ids("Ġnuit", "-", "le")).word_function  # the device is stricter than bar_ending


def test_rhyme_class_of_a_word(tables):
    assert tables.rhyme_class_of("la nuit") == tables.rhyme_class[IDS["Ġnuit"]]
    assert tables.rhyme_class_of("la mer") == -1  # no token of this vocabulary ends on ɛʁ
    with pytest.raises(JaxrapError, match="has no vowel"):
        tables.rhyme_class_of("psst")


def test_real_bpe_tables_are_cached_and_close_to_the_word_counter(tiny_tokenizer_dir):
    from jaxrap.data.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tiny_tokenizer_dir)
    tables = token_tables(tokenizer)
    assert token_tables(tokenizer) is tables  # same object
    assert token_tables(load_tokenizer(tiny_tokenizer_dir)) is tables  # same vocabulary, new object
    assert tables.vocab_size == len(tokenizer)
    special = tokenizer.all_special_ids
    assert not tables.syllables[special].any() and (tables.rhyme_class[special] == -1).all()
    bars = ["Je gratte mon cahier quand la ville s'endort", "Les lampadaires brillent, j'écris encore",
            "Mon frère m'a dit de viser la lune", "Mais on a grandi sans voir la fortune",
            "Le béton m'a appris la patience", "J'ai traîné dans le hall jusqu'à l'aube"]
    agreement = token_agreement(tokenizer, bars)
    assert agreement.bars == 6 and agreement.within2 >= 5 / 6
    with pytest.raises(JaxrapError, match="at least one"):
        token_agreement(tokenizer, ["", "  "])
