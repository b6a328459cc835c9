"""On-device bar steering: the carry update equals the phonetics package's host reference
(``replay_bar``) on random token streams, and each rule of ``steer`` on a hand-made vocabulary."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrap.data.tokenizer import load_tokenizer
from jaxrap.phonetics.token_tables import build_token_tables, replay_bar, token_tables
from jaxrap.sample.bar_decode import rhyme_vowel_ids
from jaxrap.sample.steering import ANY_LENGTH, NO_CLASS, BarCarry, BarTargets, SteeringTables, advance, steer

# (decoded text, raw vocabulary string): an invented byte-level vocabulary, id = position.
VOCAB = [
    ("<|endoftext|>", "<|endoftext|>"),
    ("\n", "Ċ"),
    (" nuit", "Ġnuit"),
    (" pluie", "Ġpluie"),
    (" la", "Ġva"),
    (" mer", "Ġmer"),
    ("s", "s"),
    (",", ","),
    (" j", "Ġj"),
    ("'", "'"),
    ("ai", "ai"),
    (" maintenant", "Ġmaintenant"),
    (" va", "Ġva"),
    (" de", "Ġde"),
    (" ma", "Ġma"),
    (" vie", "Ġvie"),
    (" avis", "Ġavis"),
    (" paradis", "Ġparadis"),
]
ID = {raw: i for i, (_, raw) in enumerate(VOCAB)}
EOS = 0
V = 24  # the model's vocabulary: wider than the tokenizer's, as models often are


@pytest.fixture(scope="module")
def text_tables():
    texts, raw = zip(*VOCAB)
    return build_token_tables(texts, raw, [i == EOS for i in range(len(VOCAB))])


@pytest.fixture(scope="module")
def tables(text_tables):
    return SteeringTables.from_token_tables(text_tables, V)


def carry_after(tables, *raws: str) -> BarCarry:
    carry = BarCarry.start(1)
    for raw in raws:
        carry = advance(carry, jnp.array([ID[raw]]), tables)
    return carry


def targets(*, rhyme_class=NO_CLASS, avoid=-1, low=1, high=ANY_LENGTH, rhyme_from=None, max_tokens=64, strength=2.0,
            key=None):
    """One row's targets; ``key`` (a key of N vowels, "a-i") gives the vowels before the last."""
    return BarTargets(
        rhyme_class=jnp.array([rhyme_class], jnp.int32),
        rhyme_vowels=jnp.asarray(rhyme_vowel_ids(key)[None]),
        avoid_token=jnp.array([avoid], jnp.int32),
        low=jnp.int32(low),
        high=jnp.int32(high),
        rhyme_from=jnp.int32(low if rhyme_from is None else rhyme_from),
        max_tokens=jnp.int32(max_tokens),
        strength=jnp.float32(strength),
    )


def steered(tables, carry, bar_targets) -> np.ndarray:
    return np.asarray(jax.jit(steer)(jnp.zeros((1, V)), carry, bar_targets, tables, jnp.int32(EOS)))[0]


def banned(logits: np.ndarray) -> set[str]:
    return {raw for raw, i in ID.items() if np.isneginf(logits[i])}


def test_padding_past_the_tokenizer_adds_nothing(tables):
    assert not tables.starts_word[len(VOCAB) :].any() and tables.breaks_word[len(VOCAB) :].all()
    assert (np.asarray(tables.rhyme_class[len(VOCAB) :]) == NO_CLASS).all()


@pytest.fixture(scope="module")
def tiny_bpe(tiny_tokenizer_dir):
    return load_tokenizer(tiny_tokenizer_dir)


@pytest.mark.parametrize("seed", range(4))
def test_advance_equals_the_host_replay_on_random_token_streams(tiny_bpe, seed):
    """The tiny BPE's tables, random ids (newlines included): after each token, the carry's
    syllables, word class, vowel window and function-word flag equal replay_bar over the tokens
    since the last newline."""
    text_tables = token_tables(tiny_bpe)
    tables = SteeringTables.from_token_tables(text_tables, len(tiny_bpe))
    rng = np.random.default_rng(seed)
    newline = int(np.flatnonzero(text_tables.has_newline)[0])
    streams = rng.integers(0, len(tiny_bpe), (4, 60))
    streams[rng.random((4, 60)) < 0.05] = newline
    carry = BarCarry.start(4)
    step = jax.jit(lambda carry, token: advance(carry, token, tables))
    for t in range(streams.shape[1]):
        carry = step(carry, jnp.asarray(streams[:, t]))
        for row in range(4):
            since = streams[row, : t + 1]
            breaks = np.flatnonzero(text_tables.has_newline[since])
            bar = since[breaks[-1] + 1 :] if len(breaks) else since
            expected = replay_bar(text_tables, bar.tolist())
            got = (int(carry.syllables[row]), int(carry.word_class[row]), tuple(carry.vowels[row].tolist()),
                   bool(carry.word_function[row]))
            assert got == tuple(expected), (row, t)
            assert int(carry.tokens[row]) == len(bar)


def test_inactive_rows_keep_their_carry(tables):
    carry = advance(BarCarry.start(2), jnp.array([ID["Ġmaintenant"]] * 2), tables, jnp.array([True, False]))
    assert carry.syllables.tolist() == [3, 0] and carry.tokens.tolist() == [1, 0]


def test_no_bar_end_before_the_range_but_a_song_may_end_at_a_bar_start(tables):
    start = steered(tables, carry_after(tables), targets(low=3, high=5))
    assert "Ċ" in banned(start) and "<|endoftext|>" not in banned(start)
    short = steered(tables, carry_after(tables, "Ġva"), targets(low=3, high=5))  # 1 syllable
    assert {"Ċ", "<|endoftext|>"} <= banned(short)
    enough = steered(tables, carry_after(tables, "Ġmaintenant"), targets(low=3, high=5))
    assert not {"Ċ", "<|endoftext|>"} & banned(enough)


def test_nothing_past_the_range_and_only_an_end_at_its_top(tables):
    four = steered(tables, carry_after(tables, "Ġva", "Ġmaintenant"), targets(low=3, high=5))  # 4 syllables
    assert "Ġmaintenant" in banned(four) and "Ġnuit" not in banned(four)  # 4 + 3 > 5; 4 + 1 fits
    top = steered(tables, carry_after(tables, "Ġva", "Ġva", "Ġmaintenant"), targets(low=3, high=5))
    # At 5: a newline, the end of the song, or what finishes the word without a syllable.
    assert set(ID) - banned(top) == {"Ċ", "<|endoftext|>", "s", ",", "'"}


def test_token_cap_leaves_only_a_newline(tables):
    logits = steered(tables, carry_after(tables, "Ġva", "Ġva"), targets(max_tokens=3))
    assert set(ID) - banned(logits) == {"Ċ"}


def test_rhyme_bias_on_the_target_class_within_the_range(tables, text_tables):
    i_class = text_tables.rhyme_class[ID["Ġnuit"]]
    assert text_tables.rhyme_class[ID["Ġpluie"]] == i_class != text_tables.rhyme_class[ID["Ġmer"]]
    bar = targets(rhyme_class=int(i_class), low=3, high=6, strength=2.5)
    logits = steered(tables, carry_after(tables, "Ġva", "Ġva"), bar)  # 2 syllables: a 1-syllable rhyme lands at 3
    assert logits[ID["Ġnuit"]] == logits[ID["Ġpluie"]] == 2.5 and logits[ID["Ġmer"]] == 0.0
    early = steered(tables, carry_after(tables, "Ġva"), bar)  # 1 + 1 < 3: not yet the rhyme's place
    assert early[ID["Ġnuit"]] == 0.0
    after_rhyme = steered(tables, carry_after(tables, "Ġva", "Ġva", "Ġnuit"), bar)
    after_other = steered(tables, carry_after(tables, "Ġva", "Ġva", "Ġmer"), bar)
    assert after_rhyme[ID["Ċ"]] == 2.5 and after_other[ID["Ċ"]] == -2.5
    # A silent ending keeps the word's class: "nuit" + "s" still ends on it.
    assert steered(tables, carry_after(tables, "Ġva", "Ġva", "Ġnuit", "s"), bar)[ID["Ċ"]] == 2.5


def test_the_target_word_is_banned_where_it_could_end_the_bar(tables, text_tables):
    bar = targets(rhyme_class=int(text_tables.rhyme_class[ID["Ġnuit"]]), avoid=ID["Ġnuit"], low=3, high=6)
    assert "Ġnuit" in banned(steered(tables, carry_after(tables, "Ġva", "Ġva"), bar))
    assert "Ġnuit" not in banned(steered(tables, carry_after(tables), bar))  # 1 syllable: mid-bar is fine


def test_strength_zero_is_the_identity_and_a_fully_banned_row_keeps_its_logits(tables):
    carry = carry_after(tables, "Ġva")
    logits = jnp.asarray(np.random.default_rng(0).standard_normal((1, V)), jnp.float32)
    off = jax.jit(steer)(logits, carry, targets(low=3, high=5, strength=0.0), tables, jnp.int32(EOS))
    np.testing.assert_array_equal(off, logits)
    # Every token the rules allow is already banned: the row keeps the logits it came with.
    cap = targets(max_tokens=2)  # only a newline...
    only_newline_gone = logits.at[0, ID["Ċ"]].set(-jnp.inf)
    kept = jax.jit(steer)(only_newline_gone, carry, cap, tables, jnp.int32(EOS))
    np.testing.assert_array_equal(kept, only_newline_gone)


def test_without_a_syllable_target_the_rhyme_is_steered_to_from_its_zone(tables, text_tables):
    free = targets(rhyme_class=int(text_tables.rhyme_class[ID["Ġnuit"]]), rhyme_from=4)
    early = steered(tables, carry_after(tables, "Ġva"), free)  # 1 + 1 < 4: no bias, a newline allowed
    assert early[ID["Ġnuit"]] == 0.0 and early[ID["Ċ"]] == 0.0
    late = steered(tables, carry_after(tables, "Ġva", "Ġva", "Ġva"), free)  # 3 + 1 = 4
    assert late[ID["Ġnuit"]] == 2.0


def test_a_rhyme_of_n_vowels_is_steered_to_with_the_vowels_before_its_last(tables, text_tables):
    """Target a-i: " avis" says both vowels itself, " vie" after " ma" finds the a in the carry;
    " vie" after " va" too (va: a), " paradis" ends on a-i as well, " nuit" after " mer" does not."""
    i_class = int(text_tables.rhyme_class[ID["Ġvie"]])
    bar = targets(rhyme_class=i_class, low=3, high=8, strength=2.0, key="a-i")
    logits = steered(tables, carry_after(tables, "Ġmer", "Ġmer"), bar)  # vowels ɛ ɛ: only a token saying a-i
    assert logits[ID["Ġavis"]] == logits[ID["Ġparadis"]] == 2.0 and logits[ID["Ġvie"]] == logits[ID["Ġnuit"]] == 0.0
    after_a = steered(tables, carry_after(tables, "Ġmer", "Ġva"), bar)
    assert after_a[ID["Ġvie"]] == after_a[ID["Ġnuit"]] == 2.0
    ended = steered(tables, carry_after(tables, "Ġmer", "Ġva", "Ġvie"), bar)
    missed = steered(tables, carry_after(tables, "Ġmer", "Ġmer", "Ġvie"), bar)
    assert ended[ID["Ċ"]] == 2.0 and missed[ID["Ċ"]] == -2.0
    three = targets(rhyme_class=i_class, low=3, high=8, strength=2.0, key="e-a-i")  # sequences merge ɛ into e
    assert steered(tables, carry_after(tables, "Ġva", "Ġmer"), three)[ID["Ġavis"]] == 2.0  # mer a-vis
    assert steered(tables, carry_after(tables, "Ġmer", "Ġva"), three)[ID["Ġavis"]] == 0.0  # va a-vis
    assert steered(tables, carry_after(tables, "Ġmer", "Ġva"), three)[ID["Ġparadis"]] == 0.0  # pa-ra-dis: a-a-i


def test_a_function_word_never_ends_a_bar(tables, text_tables):
    bar = targets(rhyme_class=int(text_tables.rhyme_class[ID["Ġvie"]]), low=2, high=5)
    after_de = steered(tables, carry_after(tables, "Ġmer", "Ġmer", "Ġde"), bar)
    assert {"Ċ", "<|endoftext|>"} <= banned(after_de)
    assert "Ċ" not in banned(steered(tables, carry_after(tables, "Ġmer", "Ġmer", "Ġde", "Ġvie"), bar))
    # one syllable from the top: "de" or "ma" would have to end the bar there, "va" may
    top = steered(tables, carry_after(tables, "Ġmer", "Ġmer", "Ġmer", "Ġmer"), bar)
    assert {"Ġde", "Ġma"} <= banned(top) and "Ġva" not in banned(top)
    # no rhyme bonus to a function word, whatever its sound
    ma_class = int(text_tables.rhyme_class[ID["Ġma"]])
    assert steered(tables, carry_after(tables, "Ġmer", "Ġmer"), targets(rhyme_class=ma_class, low=2, high=5))[ID["Ġma"]] == 0.0
