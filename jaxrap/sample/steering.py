"""On-device bar steering: per-row bar state in the decode carry, and the logit processor it drives.

The DeepRapper lever of rhyme and flow control (README, "Rhyme and flow"), for any tokenizer:
``jaxrap.phonetics.token_tables`` says what each token does to a bar (starts or breaks a word,
holds a newline, adds syllables, ends a word on a rhyme class); ``SteeringTables`` holds those
tables on device, padded to the model's vocabulary. Each row carries a ``BarCarry`` (syllables
of its bar so far, of its current word, the current word's rhyme class, the bar's last K vowels,
whether the current word is an unstressed function word, whether the next token starts a word,
tokens of the bar), updated after every token by ``advance``, which follows
``token_tables.replay_bar`` (the host reference; tested to match it exactly). A newline token
ends the bar: the carry goes back to a bar's start.

``steer`` is a logit processor. With a target of ``low``..``high`` syllables, a target rhyme
class ``c`` with the vowels before it of a rhyme of N vowels (``rhyme_vowels``) and a strength
``s`` > 0 (``BarTargets``; all traced, none a recompile), in a row:

- no newline (or end-of-song, except at a bar's very start: a song may end after a bar) before
  ``low`` syllables: no bar ends short; ``low`` is at least 1, so no bar is blank;
- no token that would take the bar past ``high``; at ``high``, only a newline or a token that
  finishes the current word without a syllable (``s``, punctuation); at the bar's token cap,
  only a newline: every bar ends;
- ``+s`` to tokens ending a word on class ``c`` that land the bar within ``rhyme_from``..``high``
  with the bar's N - 1 vowels before it (the token's own, then the carry's) the target's (the
  rhyme word of DeepRapper's bias; ``rhyme_from`` is ``low``, or FREE_BAR_RHYME_FROM syllables
  without a syllable target), ``+s`` to a newline right after a word that ends such a rhyme
  there, ``-s`` to a newline after any other word there, below ``high``;
- an unstressed function word ("de", "que", "mon": ``function_word``) does not end a bar: no
  rhyme bonus to one, no newline or end of song after one and no function word where the bar
  would have to end on it (at ``high``), unless these bans leave the row nothing (a function
  word at ``high``, reached by a word in two tokens: the bar ends on it, and the host check
  reports it);
- the target's own word (``avoid_token``, when it is one token) is banned where it could end
  the bar: a word does not rhyme with itself.

A row whose every token the rules ban (other processors may have banned the few they allow)
keeps the logits it came with; the function-word bans give way first. Strength 0 turns every rule off: the candidates lever alone.
In ``process_logits`` the processor runs after transformers' processors and before the
warpers, so temperature, top-k and top-p act on the tokens it leaves.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrap.phonetics.sounds import MAX_RHYME_VOWELS
from jaxrap.phonetics.token_tables import NO_VOWEL, TokenTables

NO_CLASS = -1  # rhyme class of a token that ends no word on a vowel; a bar without a rhyme target
ANY_LENGTH = 1 << 15  # ``high`` of a bar without a syllable target
# Where the rhyme is steered towards in a bar without a syllable target: from the first syllable,
# bars ended on the first rhyming word (8.2 syllables on average on the 900-step tiny model,
# "Faut", "Puis si puis"); the songs' bars average 10.9 (README, "Syllables and rhyme").
FREE_BAR_RHYME_FROM = 8


@struct.dataclass
class SteeringTables:
    """``TokenTables`` as device arrays over the model's vocabulary (V >= the tokenizer's):
    ids past the tokenizer are control-like (break words, add nothing, no class)."""

    starts_word: jax.Array  # (V,) bool
    breaks_word: jax.Array  # (V,) bool
    ends_bar: jax.Array  # (V,) bool: holds a newline
    syllables: jax.Array  # (V,) int32, when the token continues a word
    word_start_syllables: jax.Array  # (V,) int32, when it starts one
    rhyme_class: jax.Array  # (V,) int32, NO_CLASS for none
    vowels: jax.Array  # (V, K) int32: the token's last K vowel ids when it continues a word, right-aligned; NO_VOWEL
    word_start_vowels: jax.Array  # (V, K) int32: when it starts one
    function_word: jax.Array  # (V,) bool: read as a word's start, a whole unstressed function word
    no_letters: jax.Array  # (V,) bool: leaves the current word as it is (no letter or digit)

    @classmethod
    def from_token_tables(cls, tables: TokenTables, vocab_size: int) -> SteeringTables:
        def padded(values: np.ndarray, fill, dtype) -> jax.Array:
            out = np.full((vocab_size, *values.shape[1:]), fill, dtype)
            out[: len(values)] = values
            return jnp.asarray(out)

        return cls(
            starts_word=padded(tables.starts_word, False, bool),
            breaks_word=padded(tables.breaks_word, True, bool),
            ends_bar=padded(tables.has_newline, False, bool),
            syllables=padded(tables.syllables, 0, np.int32),
            word_start_syllables=padded(tables.word_start_syllables, 0, np.int32),
            rhyme_class=padded(tables.rhyme_class, NO_CLASS, np.int32),
            vowels=padded(tables.vowels, NO_VOWEL, np.int32),
            word_start_vowels=padded(tables.word_start_vowels, NO_VOWEL, np.int32),
            function_word=padded(tables.function_word, False, bool),
            no_letters=padded(tables.no_letters, True, bool),
        )


@struct.dataclass
class BarCarry:
    """Each row's bar so far (token-level; ``token_tables``' module docstring gives the update)."""

    syllables: jax.Array  # (B,) int32: in the bar
    word_syllables: jax.Array  # (B,) int32: in the current word
    word_class: jax.Array  # (B,) int32: rhyme class of the current word's sound, NO_CLASS for none
    after_break: jax.Array  # (B,) bool: the next token starts a word (start of a song or bar, after a space...)
    tokens: jax.Array  # (B,) int32: tokens the row generated in this bar
    vowels: jax.Array  # (B, K) int32: the bar's last K vowel ids, right-aligned, NO_VOWEL before them
    word_function: jax.Array  # (B,) bool: the current word is an unstressed function word

    @classmethod
    def start(cls, rows: int) -> BarCarry:
        zeros = jnp.zeros((rows,), jnp.int32)
        no_vowels = jnp.full((rows, MAX_RHYME_VOWELS), NO_VOWEL, jnp.int32)
        no = jnp.zeros((rows,), bool)
        return cls(zeros, zeros, jnp.full((rows,), NO_CLASS, jnp.int32), jnp.ones((rows,), bool), zeros, no_vowels, no)


@struct.dataclass
class BarTargets:
    """What each row's bar should be; traced, so changing a target never recompiles."""

    rhyme_class: jax.Array  # (B,) int32: the class to end on; NO_CLASS: any
    # (B, K) int32: the vowels the rhyme has before its last, right-aligned with the window (the
    # one before the last at K - 2); NO_VOWEL: any (all of them for a rhyme of one vowel)
    rhyme_vowels: jax.Array
    avoid_token: jax.Array  # (B,) int32: the rhyme target's own word as one token; -1: none
    low: jax.Array  # () int32: fewest syllables (>= 1)
    high: jax.Array  # () int32: most syllables (ANY_LENGTH: no target)
    rhyme_from: jax.Array  # () int32: syllables from which the bar may end on its rhyme (low, or FREE_BAR_RHYME_FROM)
    max_tokens: jax.Array  # () int32: tokens a bar may take
    strength: jax.Array  # () float32: the bias in logits; 0 turns steering off


def advance(carry: BarCarry, token: jax.Array, tables: SteeringTables, active: jax.Array | None = None) -> BarCarry:
    """The carry after each row's ``token`` (B,); rows where ``active`` (B,) is false are unchanged."""
    word_start = tables.starts_word[token] | carry.after_break
    word_syllables = jnp.where(word_start, 0, carry.word_syllables)
    reads_start = word_syllables == 0
    added = jnp.where(reads_start, tables.word_start_syllables[token], tables.syllables[token])
    said = jnp.where(reads_start[:, None], tables.word_start_vowels[token], tables.vowels[token])  # (B, K)
    token_class = tables.rhyme_class[token]
    word_class = jnp.where(token_class >= 0, token_class, jnp.where(word_start, NO_CLASS, carry.word_class))
    word_function = jnp.where(word_start, tables.function_word[token], carry.word_function & tables.no_letters[token])
    new_bar = tables.ends_bar[token]
    moved = BarCarry(
        syllables=jnp.where(new_bar, 0, carry.syllables + added),
        word_syllables=jnp.where(new_bar, 0, word_syllables + added),
        word_class=jnp.where(new_bar, NO_CLASS, word_class),
        after_break=tables.breaks_word[token],
        tokens=jnp.where(new_bar, 0, carry.tokens + 1),
        vowels=jnp.where(new_bar[:, None], NO_VOWEL, shift_in(carry.vowels, said)),
        word_function=word_function & ~new_bar,
    )
    if active is None:
        return moved
    return jax.tree.map(lambda new, old: jnp.where(active.reshape(-1, *(1,) * (new.ndim - 1)), new, old), moved, carry)


def shift_in(window: jax.Array, said: jax.Array) -> jax.Array:
    """The last K vowels after ``said`` (B, K; right-aligned, NO_VOWEL before) follow ``window``
    (B, K): position j keeps ``window[j + n]`` for j < K - n, else ``said[j]``, n = vowels said."""
    K = window.shape[-1]
    n = jnp.sum(said != NO_VOWEL, axis=-1, keepdims=True)  # (B, 1)
    j = jnp.arange(K)[None]  # (1, K)
    kept = jnp.take_along_axis(window, jnp.minimum(j + n, K - 1), axis=-1)
    return jnp.where(j < K - n, kept, said)


def rhyme_vowels_met(
    carry_vowels: jax.Array,  # (B, K)
    target: jax.Array,  # (B, K): BarTargets.rhyme_vowels
    continues: jax.Array,  # (B, V) bool: each token would continue the row's current word
    tables: SteeringTables,
) -> jax.Array:
    """(B, V) bool: after each token, the bar's vowels before its last are the target's (NO_VOWEL
    in the target matches anything). The j-th vowel from the end is the token's own for j < n
    (the vowels it says), else the carry's (j - n)-th from the end."""
    K = carry_vowels.shape[-1]
    n = jnp.where(continues, _said(tables.vowels)[None], _said(tables.word_start_vowels)[None])  # (B, V)
    met = jnp.ones(n.shape, bool)
    for j in range(1, K):  # static: K - 1 comparisons of (B, V)
        wanted = target[:, K - 1 - j][:, None]  # (B, 1)
        own = jnp.where(continues, tables.vowels[:, K - 1 - j][None], tables.word_start_vowels[:, K - 1 - j][None])
        before = jnp.take_along_axis(carry_vowels, jnp.clip(K - 1 - j + n, 0, K - 1), axis=-1)  # (B, V)
        met &= (wanted == NO_VOWEL) | (jnp.where(j < n, own, before) == wanted)
    return met


def _said(vowels: jax.Array) -> jax.Array:
    """(V,) how many vowels each token says, from its (V, K) right-aligned vowel ids."""
    return jnp.sum(vowels != NO_VOWEL, axis=-1)


def steer(
    logits: jax.Array,  # (B, V)
    carry: BarCarry,
    targets: BarTargets,
    tables: SteeringTables,
    eos_token_id: jax.Array,  # () int32, -1 for none
) -> jax.Array:
    """The module docstring's rules over logits (B, V)."""

    def rules(logits):
        V = logits.shape[-1]
        vocab = jnp.arange(V)
        bar = carry.syllables[:, None]  # (B, 1)
        word_start = tables.starts_word[None] | carry.after_break[:, None]  # (B, V)
        continues = ~word_start & (carry.word_syllables[:, None] > 0)
        after = bar + jnp.where(continues, tables.syllables[None], tables.word_start_syllables[None])  # (B, V)
        newline = tables.ends_bar[None]  # (1, V)
        eos = (vocab == eos_token_id)[None]
        low, high, zone = targets.low, targets.high, targets.rhyme_from
        empty = (carry.tokens == 0)[:, None] & (bar == 0)  # a bar not begun: the song may end here

        banned = (newline | (eos & ~empty)) & (bar < low)
        banned |= ~newline & ~eos & (after > high)
        finishes_word = ~word_start & (after == bar)
        banned |= (bar >= high) & ~newline & ~eos & ~finishes_word
        banned |= ((carry.tokens + 1 >= targets.max_tokens)[:, None]) & ~newline
        banned |= (vocab[None] == targets.avoid_token[:, None]) & (after >= zone)
        # An unstressed function word ends no bar: no end after one, none that would have to end on one.
        function_after = jnp.where(word_start, tables.function_word[None], carry.word_function[:, None] & tables.no_letters[None])
        function_end = (newline | (eos & ~empty)) & carry.word_function[:, None]
        function_end |= function_after & ~newline & ~eos & (after >= high)

        target = targets.rhyme_class[:, None]  # (B, 1)
        has_target = target != NO_CLASS
        in_range = (bar >= zone) & (bar <= high)
        vowels_met = rhyme_vowels_met(carry.vowels, targets.rhyme_vowels, continues, tables)  # (B, V)
        rhyme_word = has_target & (tables.rhyme_class[None] == target) & vowels_met & ~function_after
        rhyme_word &= (after >= zone) & (after <= high)
        wanted = targets.rhyme_vowels[:, :-1]  # (B, K - 1): the vowels before the last, at the carry's places
        carry_met = jnp.all((wanted == NO_VOWEL) | (carry.vowels[:, :-1] == wanted), axis=-1, keepdims=True)  # (B, 1)
        ends_on_rhyme = (carry.word_class[:, None] == target) & carry_met & ~carry.word_function[:, None] & in_range
        ends_off_rhyme = ~ends_on_rhyme & in_range & (bar < high)
        bonus = rhyme_word.astype(jnp.float32) + (newline & has_target) * (
            ends_on_rhyme.astype(jnp.float32) - ends_off_rhyme.astype(jnp.float32)
        )
        steered = jnp.where(banned, -jnp.inf, logits + targets.strength * bonus)
        stricter = jnp.where(function_end, -jnp.inf, steered)
        steered = jnp.where(jnp.any(stricter > -jnp.inf, axis=-1, keepdims=True), stricter, steered)
        allowed = jnp.any(steered > -jnp.inf, axis=-1, keepdims=True)  # (B, 1)
        return jnp.where(allowed, steered, logits)

    return jax.lax.cond(targets.strength > 0, rules, lambda x: x, logits)
