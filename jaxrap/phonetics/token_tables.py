"""Per-token tables of a tokenizer: what each token does to a bar's syllables and rhyme.

The inputs of on-device logit processors that steer bar length and rhyme (DeepRapper-style),
built once per tokenizer on the host (numpy, no jax) and cached per vocabulary:

| field | shape, dtype | meaning |
|---|---|---|
| ``starts_word`` | (V,) bool | the token begins with whitespace (byte-level BPE's ``Ġ``, sentencepiece's ``▁``) followed by a letter or digit: it starts a new word (`` ?`` and ``\n`` do not) |
| ``breaks_word`` | (V,) bool | the token ends on something that is not a letter or digit (whitespace, newline, apostrophe, hyphen, punctuation): the next token starts a word even without a space (``Ċ`` + ``Je``, ``Ġj`` + ``'`` + ``ai``) |
| ``has_newline`` | (V,) bool | the token holds a newline: it ends the bar |
| ``syllables`` | (V,) int8 | syllables the token adds when it continues a word (equal to ``word_start_syllables`` where ``starts_word``) |
| ``word_start_syllables`` | (V,) int8 | syllables it adds when it starts one |
| ``rhyme_class`` | (V,) int32 | class of the sound a word ending with this token ends on, an index into ``rhyme_keys``; -1 for none |
| ``rhyme_keys`` | tuple of str | the rhyme keys seen, sorted: ``rhyme_keys[c]`` is class ``c``'s key (``jaxrap.phonetics.rhyme``) |
| ``vowels`` | (V, K) int8 | the last K = MAX_RHYME_VOWELS vowels the token says when it continues a word, as ids into ``sounds.SEQUENCE_VOWELS``, right-aligned, -1 before them |
| ``word_start_vowels`` | (V, K) int8 | the same when it starts one |
| ``function_word`` | (V,) bool | read as the start of a word, the token is a whole unstressed function word (``de``, ``que``, ``mon``: ``jaxrap.phonetics.function_words``) |
| ``no_letters`` | (V,) bool | the token holds no letter or digit (punctuation, whitespace, control tokens): it leaves the current word as it is |

Special and added tokens (end-of-song, pad, ``<|artist:...|>``) are control tokens: they break
words, start none, hold no newline, add 0 syllables and no vowel, and have class -1.

**Syllables** are approximate at token level, since a token is often a piece of a word:

- a token read as the start of a word counts as the words it spells (``jaxrap.phonetics.spoken``:
  lexicon first, numbers spelled out; ``Je`` = 1), except that one or two lower-case letters
  without a vowel count 0 (the ``Ġj`` of ``j'ai``, the ``Ġqu`` of ``qu'il``, the ``J`` of a
  bar's ``J'``): they are elided or the start of a longer word;
- a token that continues a word counts its vowel nuclei by the spelling rules with its end read
  as the end of the word (its letters only: SentencePiece vocabularies keep punctuation on the
  piece, ``me,``): a final ``e``/``es`` and a verb ``ent`` are mute even alone
  (``Ġchant`` + ``ent`` = 1 + 0, ``Ġmon`` + ``de`` = 1 + 0, but ``Ġtelle`` + ``ment`` = 1 + 1);
- what a word's pieces cannot know is lost: a vowel group split over two tokens counts twice
  (``Ġmo`` + ``i``), a sounded ``-ent`` after a piece counts 0 (``Ġmom`` + ``ent``), and an
  accented vowel whose two UTF-8 bytes fall in two tokens counts 0.

**Rhyme classes.** A token that starts a word gets the class of the key of the last word it
spells (lexicon first, as ``rhyme_key``); a token that continues a word gets the class of the
spelling rules' key of its letters read as a word ending (``er`` -> e, ``ment`` -> ɑ̃, ``tion``
-> ɔ̃, ``age`` -> aʒ). Tokens without a vowel that is said when they end a word (``s``, ``t``,
``nt``, ``x``, ``es``, ``ent``, ``e``, ``te``, punctuation, whitespace, digits) get -1, and the
rule for them is: **a word's class is the class of its last token with one (>= 0)**. Silent
endings after a vowel or a silent consonant keep the word's sound exactly (``Ġnuit`` + ``s``,
``Ġjou`` + ``ent``); a consonant that a mute ending makes heard is lost (``Ġchant`` + ``e`` or
``ent`` ends on ɑ̃, not ɑ̃t; ``Ġmon`` + ``de`` on ɔ̃, not ɔ̃d). Whole-word tokens (``Ġchante``)
carry their full key, and those are the tokens a rhyme bias favours.

**Vowels** follow the syllables: a token read as the start of a word says the vowels of the
words it spells (``Pronunciation.vowels``, lexicon first), a token that continues one the vowels
of the spelling rules (``spelling_vowels(..., continues=True)``), with the same losses. The
last vowel of a word with a class is its class's vowel, so a bar's last N vowels are the N - 1
before its last word's last vowel, then that word's class: the token-level reading of a key of
N vowels (``rhyme_key(bar, N)``).

**Intended use** (the sampler's logit processors, per row of the batch, in the decode carry;
``replay_bar`` is the host reference of this update, and ``token_agreement`` measures it against
the word-level counter and key on real bars, figures in the README): ``bar_syllables``,
``word_syllables`` and ``word_class`` (int32; 0, 0, -1 at the start of a bar), ``bar_vowels``
((K,) int32, the bar's last K vowels right-aligned, -1 before them), ``word_function`` (bool)
and ``after_break`` (bool, true at the start of a song or a bar). After each sampled token ``t``:

    word_start = starts_word[t] | after_break
    word_syllables = where(word_start, 0, word_syllables)
    reads_start = word_syllables == 0
    added = where(reads_start, word_start_syllables[t], syllables[t])
    word_syllables += added; bar_syllables += added
    bar_vowels = (bar_vowels + where(reads_start, word_start_vowels[t], vowels[t]))[-K:]  (the -1s dropped)
    word_class = where(rhyme_class[t] >= 0, rhyme_class[t], where(word_start, -1, word_class))
    word_function = where(word_start, function_word[t], word_function & no_letters[t])
    after_break = breaks_word[t]
    if has_newline[t]: everything back to a bar's start (the bar ended on word_class)

A token is read as the start of its word while the word has no syllable yet, so ``Ġj`` + ``'t``
+ ``e`` counts the e of ``te`` (byte-level BPE never merges a newline with letters, so newline
tokens add no syllables).
Then, with a target of N syllables, a tolerance T and a target class c for the bar (from the
scheme, or ``rhyme_class_of(word)`` for ``--rhyme-with``):

- before N - T syllables, mask the newline tokens (``has_newline``): no bar ends too short;
- from about N - 3 syllables, add a bias to tokens with ``rhyme_class == c`` (DeepRapper's rhyme
  bias) and allow a newline only after a word of class c;
- at N + T syllables, allow only newline tokens (or tokens that finish the word: not
  ``starts_word`` and 0 ``syllables``): the bar ends at the top of the range.

Every array is indexed by token id, so a processor gathers them with the sampled ids; none
depends on the sampling parameters, so changing a target never recompiles.
"""

from __future__ import annotations

import dataclasses
import hashlib
import unicodedata
import weakref
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from jaxrap.errors import JaxrapError
from jaxrap.phonetics.function_words import is_function_word
from jaxrap.phonetics.rhyme import KEY_SEPARATOR, rhyme_key
from jaxrap.phonetics.scheme import rhyme_target_key
from jaxrap.phonetics.sounds import MAX_RHYME_VOWELS, SEQUENCE_VOWELS
from jaxrap.phonetics.spelling import has_vowel_letter, spelling_rhyme_key, spelling_syllables, spelling_vowels
from jaxrap.phonetics.spoken import spoken_words
from jaxrap.phonetics.syllables import count_syllables

NO_VOWEL = -1  # in the vowel tables and windows: no vowel (yet)
VOWEL_ID = {vowel: i for i, vowel in enumerate(SEQUENCE_VOWELS)}


@dataclasses.dataclass(frozen=True, eq=False)
class TokenTables:
    starts_word: np.ndarray  # (V,) bool
    breaks_word: np.ndarray  # (V,) bool
    has_newline: np.ndarray  # (V,) bool
    syllables: np.ndarray  # (V,) int8, when the token continues a word
    word_start_syllables: np.ndarray  # (V,) int8, when it starts one
    rhyme_class: np.ndarray  # (V,) int32, -1: no class
    rhyme_keys: tuple[str, ...]  # class id -> rhyme key
    vowels: np.ndarray  # (V, K) int8, when the token continues a word; -1: none
    word_start_vowels: np.ndarray  # (V, K) int8, when it starts one
    function_word: np.ndarray  # (V,) bool
    no_letters: np.ndarray  # (V,) bool

    @property
    def vocab_size(self) -> int:
        return len(self.syllables)

    def rhyme_class_of(self, word: str) -> int:
        """Class of the sound ``word`` ends on (``--rhyme-with WORD``), or -1 when no token of
        this vocabulary ends a word on that sound (the rhyme can then only be checked on the
        host). A word whose end cannot rhyme (no vowel) is refused with a JaxrapError
        (``jaxrap.phonetics.scheme.rhyme_target_key``)."""
        key = rhyme_target_key(word)
        try:
            return self.rhyme_keys.index(key)
        except ValueError:
            return -1


_BY_VOCABULARY: dict[str, TokenTables] = {}
_BY_TOKENIZER: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def token_tables(tokenizer: Any) -> TokenTables:
    """The tables of a transformers fast tokenizer, built on first use and cached: per tokenizer
    object, and per vocabulary (the same tokens and special tokens give the same tables,
    whichever object holds them)."""
    cached = _BY_TOKENIZER.get(tokenizer)
    if cached is not None and cached.vocab_size == len(tokenizer):  # a tokenizer can grow (artist tokens)
        return cached
    ids = list(range(len(tokenizer)))
    raw = [token or "" for token in tokenizer.convert_ids_to_tokens(ids)]
    control = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}))
    special = [i in control for i in ids]
    fingerprint = hashlib.sha1("\x00".join(raw).encode("utf-8", "surrogatepass") + bytes(special)).hexdigest()
    if fingerprint not in _BY_VOCABULARY:
        texts = tokenizer.batch_decode([[i] for i in ids], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        _BY_VOCABULARY[fingerprint] = build_token_tables(texts, raw, special)
    _BY_TOKENIZER[tokenizer] = _BY_VOCABULARY[fingerprint]
    return _BY_VOCABULARY[fingerprint]


def build_token_tables(texts: Sequence[str], raw: Sequence[str], special: Sequence[bool]) -> TokenTables:
    """Tables from each token's decoded text, its raw vocabulary string and whether it is special."""
    size = len(texts)
    starts_word = np.zeros(size, bool)
    breaks_word = np.ones(size, bool)
    has_newline = np.zeros(size, bool)
    syllables = np.zeros(size, np.int8)
    word_start_syllables = np.zeros(size, np.int8)
    vowels = np.full((size, MAX_RHYME_VOWELS), NO_VOWEL, np.int8)
    word_start_vowels = np.full((size, MAX_RHYME_VOWELS), NO_VOWEL, np.int8)
    function_word = np.zeros(size, bool)
    no_letters = np.ones(size, bool)
    keys: list[str | None] = [None] * size
    for index, (text, token, control) in enumerate(zip(texts, raw, special)):
        if control:
            continue
        word = text.strip()
        starts = (text[:1].isspace() or token.startswith("▁")) and any(ch.isalnum() for ch in word)
        starts_word[index] = starts
        breaks_word[index] = not text[-1:].isalnum()
        has_newline[index] = "\n" in text
        no_letters[index] = not any(ch.isalnum() for ch in text)
        function_word[index] = is_function_word(unicodedata.normalize("NFC", word).lower())
        start_count, start_key, start_vowels = _word_start_sound(word)
        word_start_syllables[index] = min(start_count, 127)
        word_start_vowels[index] = _vowel_ids(start_vowels)
        letters = word.rstrip("".join(ch for ch in word if not ch.isalnum()))  # "me," -> "me": SentencePiece keeps punctuation on
        if starts or not letters.isalpha():
            syllables[index], keys[index], vowels[index] = word_start_syllables[index], start_key, word_start_vowels[index]
        else:
            count = spelling_syllables(letters.lower(), continues=True)
            syllables[index] = min(count, 127)
            keys[index] = spelling_rhyme_key(letters.lower()) if count else None
            vowels[index] = _vowel_ids(spelling_vowels(letters.lower(), continues=True))
    rhyme_keys = tuple(sorted({key for key in keys if key is not None}))
    class_of = {key: c for c, key in enumerate(rhyme_keys)}
    rhyme_class = np.array([class_of[key] if key is not None else -1 for key in keys], np.int32)
    return TokenTables(
        starts_word, breaks_word, has_newline, syllables, word_start_syllables, rhyme_class, rhyme_keys,
        vowels, word_start_vowels, function_word, no_letters,
    )


def _word_start_sound(text: str) -> tuple[int, str | None, tuple[str, ...]]:
    """(syllables, key or None, vowels) of a token's stripped text read as the start of a word:
    its spoken words, less vowel-less pieces that a later token completes ("j", "qu", "J")."""
    if not any(ch.isalnum() for ch in text):
        return 0, None, ()
    words = [word for word in spoken_words(text) if not _elision_prefix(word.text, text)]
    last = next((word for word in reversed(words) if not word.elided), None)
    key = None if last is None or any(ch.isdigit() for ch in text) else last.pronunciation.key
    vowels = tuple(vowel for word in words for vowel in word.pronunciation.vowels)
    return sum(word.pronunciation.syllables for word in words), key, vowels


def _vowel_ids(vowels: Sequence[str]) -> np.ndarray:
    """(K,) int8: the ids of the last K vowels, right-aligned, NO_VOWEL before them."""
    out = np.full(MAX_RHYME_VOWELS, NO_VOWEL, np.int8)
    last = [VOWEL_ID[vowel] for vowel in vowels[-MAX_RHYME_VOWELS:]]
    out[MAX_RHYME_VOWELS - len(last) :] = last
    return out


def _elision_prefix(word: str, text: str) -> bool:
    """One letter, or two lower-case ones, without a vowel: ``j``, ``l``, ``qu``, ``J``."""
    return not has_vowel_letter(word) and (len(word) == 1 or len(word) == 2 and text.islower())


class BarState(NamedTuple):
    syllables: int  # of the bar so far
    word_class: int  # class of the current word's sound, -1 for none
    vowels: tuple[int, ...] = (NO_VOWEL,) * MAX_RHYME_VOWELS  # the bar's last K vowel ids, right-aligned
    word_function: bool = False  # the current word is an unstressed function word


def replay_bar(tables: TokenTables, ids: Sequence[int], *, after_break: bool = True) -> BarState:
    """The per-row state the module docstring's update gives after ``ids`` (one bar, no newline):
    the host reference for the on-device processors."""
    count, word_count, word_class, word_function = 0, 0, -1, False
    said: list[int] = []
    for token in ids:
        word_start = bool(tables.starts_word[token]) or after_break
        word_count = 0 if word_start else word_count
        reads_start = word_count == 0
        added = int(tables.word_start_syllables[token] if reads_start else tables.syllables[token])
        word_count += added
        count += added
        said += [int(v) for v in (tables.word_start_vowels if reads_start else tables.vowels)[token] if v != NO_VOWEL]
        if tables.rhyme_class[token] >= 0:
            word_class = int(tables.rhyme_class[token])
        elif word_start:
            word_class = -1
        word_function = bool(tables.function_word[token]) if word_start else word_function and bool(tables.no_letters[token])
        after_break = bool(tables.breaks_word[token])
    last = said[-MAX_RHYME_VOWELS:]
    return BarState(count, word_class, (NO_VOWEL,) * (MAX_RHYME_VOWELS - len(last)) + tuple(last), word_function)


def state_rhyme_key(tables: TokenTables, state: BarState, vowels: int = 1) -> str | None:
    """The key of ``vowels`` vowels a bar's token-level state ends on (what the steering reads:
    the N - 1 vowels before the last, then the current word's class), or None."""
    leading = state.vowels[MAX_RHYME_VOWELS - vowels : MAX_RHYME_VOWELS - 1]
    if state.word_class < 0 or NO_VOWEL in leading or state.vowels[-1] == NO_VOWEL:
        return None
    return KEY_SEPARATOR.join([*(SEQUENCE_VOWELS[v] for v in leading), tables.rhyme_keys[state.word_class]])


@dataclasses.dataclass(frozen=True)
class TokenAgreement:
    bars: int
    within1: float  # share of bars whose token-level syllable sum is within 1 of count_syllables
    within2: float
    mean_difference: float  # token-level minus word-level, syllables per bar (signed)
    rhyme_class_match: float  # share of bars with a key whose last token class is that key's class
    two_vowel_match: float  # share of bars with a key of 2 vowels whose token-level state ends on it


def token_agreement(tokenizer: Any, bars: Sequence[str]) -> TokenAgreement:
    """Token-level tables (``replay_bar``) against the word-level counter and rhyme key on
    ``bars``, each encoded alone as the sampler meets a bar: after a newline."""
    tables = token_tables(tokenizer)
    bars = [bar for bar in bars if bar.strip()]
    if not bars:
        raise JaxrapError("token_agreement needs at least one non-blank bar")
    encoded = tokenizer(list(bars), add_special_tokens=False, split_special_tokens=True)["input_ids"]
    differences, matches, keyed, two_matches, two_keyed = [], 0, 0, 0, 0
    for bar, ids in zip(bars, encoded):
        state = replay_bar(tables, ids)
        differences.append(state.syllables - count_syllables(bar))
        key, two = rhyme_key(bar), rhyme_key(bar, 2)
        if key is not None:
            keyed += 1
            matches += state.word_class >= 0 and tables.rhyme_keys[state.word_class] == key
        if two is not None:
            two_keyed += 1
            two_matches += state_rhyme_key(tables, state, 2) == two
    gaps = np.abs(np.array(differences))
    return TokenAgreement(
        bars=len(bars),
        within1=float((gaps <= 1).mean()),
        within2=float((gaps <= 2).mean()),
        mean_difference=float(np.mean(differences)),
        rhyme_class_match=matches / keyed if keyed else 0.0,
        two_vowel_match=two_matches / two_keyed if two_keyed else 0.0,
    )
