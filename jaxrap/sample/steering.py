"""On-device bar steering: per-row bar state in the decode carry, and the logit processor it drives.

The DeepRapper lever of rhyme and flow control (README, "Rhyme and flow"), for any tokenizer:
``jaxrap.phonetics.token_tables`` says what each token does to a bar (starts or breaks a word,
holds a newline, adds syllables, ends a word on a rhyme class); ``SteeringTables`` holds those
tables on device, padded to the model's vocabulary. Each row carries a ``BarCarry`` (syllables
of its bar so far, of its current word, the current word's rhyme class, whether the next token
starts a word, tokens of the bar), updated after every token by ``advance``, which follows
``token_tables.replay_bar`` (the host reference; tested to match it exactly). A newline token
ends the bar: the carry goes back to a bar's start.

``steer`` is a logit processor. With a target of ``low``..``high`` syllables, a target rhyme
class ``c`` and a strength ``s`` > 0 (``BarTargets``; all traced, none a recompile), in a row:

- no newline (or end-of-song, except at a bar's very start: a song may end after a bar) before
  ``low`` syllables: no bar ends short; ``low`` is at least 1, so no bar is blank;
- no token that would take the bar past ``high``; at ``high``, only a newline or a token that
  finishes the current word without a syllable (``s``, punctuation); at the bar's token cap,
  only a newline: every bar ends;
- ``+s`` to tokens ending a word on class ``c`` that land the bar within ``rhyme_from``..``high``
  (the rhyme word of DeepRapper's bias; ``rhyme_from`` is ``low``, or FREE_BAR_RHYME_FROM
  syllables without a syllable target), ``+s`` to a newline right after a word of class ``c``
  there, ``-s`` to a newline after a word of another class there, below ``high``;
- the target's own word (``avoid_token``, when it is one token) is banned where it could end
  the bar: a word does not rhyme with itself.

A row whose every token the rules ban (other processors may have banned the few they allow)
keeps the logits it came with. Strength 0 turns every rule off: the candidates lever alone.
In ``process_logits`` the processor runs after transformers' processors and before the
warpers, so temperature, top-k and top-p act on the tokens it leaves.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrap.phonetics.token_tables import TokenTables

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

    @classmethod
    def from_token_tables(cls, tables: TokenTables, vocab_size: int) -> SteeringTables:
        def padded(values: np.ndarray, fill, dtype) -> jax.Array:
            out = np.full(vocab_size, fill, dtype)
            out[: len(values)] = values
            return jnp.asarray(out)

        return cls(
            starts_word=padded(tables.starts_word, False, bool),
            breaks_word=padded(tables.breaks_word, True, bool),
            ends_bar=padded(tables.has_newline, False, bool),
            syllables=padded(tables.syllables, 0, np.int32),
            word_start_syllables=padded(tables.word_start_syllables, 0, np.int32),
            rhyme_class=padded(tables.rhyme_class, NO_CLASS, np.int32),
        )


@struct.dataclass
class BarCarry:
    """Each row's bar so far (token-level; ``token_tables``' module docstring gives the update)."""

    syllables: jax.Array  # (B,) int32: in the bar
    word_syllables: jax.Array  # (B,) int32: in the current word
    word_class: jax.Array  # (B,) int32: rhyme class of the current word's sound, NO_CLASS for none
    after_break: jax.Array  # (B,) bool: the next token starts a word (start of a song or bar, after a space...)
    tokens: jax.Array  # (B,) int32: tokens the row generated in this bar

    @classmethod
    def start(cls, rows: int) -> BarCarry:
        zeros = jnp.zeros((rows,), jnp.int32)
        return cls(zeros, zeros, jnp.full((rows,), NO_CLASS, jnp.int32), jnp.ones((rows,), bool), zeros)


@struct.dataclass
class BarTargets:
    """What each row's bar should be; traced, so changing a target never recompiles."""

    rhyme_class: jax.Array  # (B,) int32: the class to end on; NO_CLASS: any
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
    added = jnp.where(word_syllables == 0, tables.word_start_syllables[token], tables.syllables[token])
    token_class = tables.rhyme_class[token]
    word_class = jnp.where(token_class >= 0, token_class, jnp.where(word_start, NO_CLASS, carry.word_class))
    new_bar = tables.ends_bar[token]
    moved = BarCarry(
        syllables=jnp.where(new_bar, 0, carry.syllables + added),
        word_syllables=jnp.where(new_bar, 0, word_syllables + added),
        word_class=jnp.where(new_bar, NO_CLASS, word_class),
        after_break=tables.breaks_word[token],
        tokens=jnp.where(new_bar, 0, carry.tokens + 1),
    )
    if active is None:
        return moved
    return jax.tree.map(lambda new, old: jnp.where(active, new, old), moved, carry)


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

        target = targets.rhyme_class[:, None]  # (B, 1)
        has_target = target != NO_CLASS
        in_range = (bar >= zone) & (bar <= high)
        rhyme_word = has_target & (tables.rhyme_class[None] == target) & (after >= zone) & (after <= high)
        ends_on_rhyme = (carry.word_class[:, None] == target) & in_range
        ends_off_rhyme = ~ends_on_rhyme & in_range & (bar < high)
        bonus = rhyme_word.astype(jnp.float32) + (newline & has_target) * (
            ends_on_rhyme.astype(jnp.float32) - ends_off_rhyme.astype(jnp.float32)
        )
        steered = jnp.where(banned, -jnp.inf, logits + targets.strength * bonus)
        allowed = jnp.any(steered > -jnp.inf, axis=-1, keepdims=True)  # (B, 1)
        return jnp.where(allowed, steered, logits)

    return jax.lax.cond(targets.strength > 0, rules, lambda x: x, logits)
