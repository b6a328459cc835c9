"""SamplingParams: every control a user can set on generation, validated, in one place.

Pure Python (no jax), so the CLI can show the defaults in ``--help`` instantly. The jitted
sampler receives these values as traced arrays (``processors.SamplingArrays``): changing any
of them never recompiles, except ``num_samples``, which is the batch size.

The defaults are the shipped preset, from ``scripts/sweep_sampling.py`` on the quickstart model
trained 900 steps (README, "Sampling preset", has the figures): temperature 1, top-p 0.9,
repetition penalty 1.1, chosen because its samples did not loop and the model found them about
as likely as real lyrics, where the original app's settings gave stock phrases. Plain sampling
scored as well on that 4,096-token model; the nucleus filter and the penalty stay on because a
large vocabulary's long tail (BelGPT-2) and its loops are what they guard against.
Change the defaults here only: the CLI flags and the terminal UI's panel read them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jaxrap.errors import FieldError, JaxrapError
from jaxrap.phonetics.sounds import MAX_RHYME_VOWELS  # constants only: no lexicon, no jax

DEFAULT_MAX_NEW_TOKENS = 256  # max_new_tokens None: as many as fit the context after the prompt, at most this
MAX_SEED = 2**32  # seeds are uint32: they become a traced PRNG key inside the jitted prefill
MAX_SAMPLES = 64  # rows of one batch (samples, times candidates for bars); more would not fit a CPU's cache
MAX_INT32 = 2**31 - 1  # counts reach the jitted sampler as int32 (processors.SamplingArrays)
MAX_FLOAT32 = 3.4028234663852886e38  # and numbers as float32, where a larger one would be inf
MAX_SYLLABLES = 32  # a bar's syllable target (and tolerance) at most: bars are capped in tokens (bar_decode)
MAX_STEERING = 20.0  # logits: far beyond what any measured setting needs
MAX_REDRAWS = 16


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """How to continue a prompt. Filters are applied in transformers' order (see processors)."""

    # Stop after this many generated tokens; None: as many as the model's context leaves after
    # the prompt, at most DEFAULT_MAX_NEW_TOKENS, without a warning (a value given that does not
    # fit is cut with one, see jaxrap.sample.context).
    max_new_tokens: int | None = None
    min_new_tokens: int = 0  # the end-of-song token is banned until this many were generated
    temperature: float = 1.0  # divide logits by this; 0 means greedy (argmax, no filters)
    top_k: int = 0  # keep the k most likely tokens; 0 turns it off
    top_p: float = 0.9  # keep the smallest set of likeliest tokens holding this probability; 1 is off
    min_p: float = 0.0  # drop tokens less likely than min_p times the likeliest one; 0 is off
    repetition_penalty: float = 1.1  # transformers' (CTRL's): > 1 discourages tokens already in context; 1 is off
    repetition_window: int = 256  # the penalty looks at the last n context tokens; 0 means all of them
    frequency_penalty: float = 0.0  # OpenAI's: subtract this times a token's count in the generated text
    presence_penalty: float = 0.0  # OpenAI's: subtract this once from every token already generated
    no_repeat_ngram_size: int = 0  # never repeat an n-gram of the context (prompt included); 0 is off
    seed: int | None = None  # PRNG seed; None draws a fresh one (see ``with_seed``)
    num_samples: int = 1  # independent continuations of the prompt, decoded as one batch
    stop: tuple[str, ...] = ()  # end a sample where one of these strings appears (not included)
    max_bars: int = 0  # end a sample after this many generated newline-terminated bars; 0 is off
    artist: str | None = None  # condition on this artist (models trained with artist tokens); None: unknown
    # Bar controls (README, "Rhyme and flow"). Any of the first three set makes decoding go bar by
    # bar (``jaxrap.sample.bar_decode``); with none, the others are unused and decoding is plain.
    rhyme_scheme: str | None = None  # letters per bar, repeated (AABB, ABAB, ABBA, AAAA; x a free bar)
    rhyme_with: str | None = None  # the first rhyme group the generated bars write in ends on this word's sound
    # A rhyme group's bars end on the same last N vowel sounds (and the consonants after the last),
    # across word boundaries: with 2, "ma vie" rhymes with "l'avis", not with "la nuit" (docs/rhymes.md).
    rhyme_vowels: int = 1
    syllables: int | None = None  # target syllables per bar
    syllable_tolerance: int = 2  # a bar of syllables - T .. syllables + T meets the target
    candidates: int = 4  # candidate bars decoded together for each bar; one meeting the targets is kept
    steering: float = 6.0  # on-device steering in logits (rhyme bias, bar-length masks); 0 turns it off
    redraws: int = 2  # times a bar is drawn again when no candidate meets the targets
    # Classifier-free guidance on the artist token (jaxrap.sample.guidance): logits l_unknown +
    # w (l_artist - l_unknown), w > 0; 1 is off (plain conditioning, no unconditioned rows).
    artist_guidance: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.stop, (list, tuple)) or not all(isinstance(s, str) for s in self.stop):
            raise FieldError("stop", f"stop must be a list or tuple of strings, got {self.stop!r}")
        object.__setattr__(self, "stop", tuple(self.stop))
        if self.max_new_tokens is not None:
            _check_int(self, "max_new_tokens", minimum=1)
        _check_int(self, "min_new_tokens", minimum=0)
        _check_int(self, "top_k", minimum=0)
        _check_int(self, "repetition_window", minimum=0)
        _check_int(self, "no_repeat_ngram_size", minimum=0)
        _check_int(self, "num_samples", minimum=1, maximum=MAX_SAMPLES)
        _check_int(self, "max_bars", minimum=0)
        if self.seed is not None:
            _check_int(self, "seed", minimum=0, maximum=MAX_SEED - 1)
        if self.min_new_tokens > self.new_tokens_cap:
            cap = f"{self.new_tokens_cap}{' by default' if self.max_new_tokens is None else ''}"
            raise FieldError("min_new_tokens", f"min_new_tokens ({self.min_new_tokens}) must not exceed max_new_tokens ({cap})")
        _check_float(self, "temperature", lambda v: v >= 0, "must be >= 0 (0 means greedy)")
        _check_float(self, "top_p", lambda v: 0 < v <= 1, "must be in (0, 1] (1 turns it off)")
        _check_float(self, "min_p", lambda v: 0 <= v <= 1, "must be in [0, 1] (0 turns it off)")
        _check_float(self, "repetition_penalty", lambda v: v > 0, "must be > 0 (1 turns it off)")
        for name in ("frequency_penalty", "presence_penalty"):
            _check_float(self, name, lambda v: -2 <= v <= 2, "must be in [-2, 2] (0 turns it off)")
        if any(not s for s in self.stop):
            raise FieldError("stop", "stop strings must not be empty")
        if self.artist is not None and (not isinstance(self.artist, str) or not self.artist.strip()):
            raise FieldError("artist", f"artist must be an artist's name, got {self.artist!r}")
        self._check_bar_controls()
        # Guidance without an artist is refused where the artist is final (Generator.guidance_prefix):
        # jaxrap eval sets each prompt's own.
        _check_float(self, "artist_guidance", lambda v: v > 0, "must be > 0 (1 turns it off)")

    @property
    def guided(self) -> bool:
        """Classifier-free guidance is on: the model also decodes the unconditioned rows."""
        return self.artist_guidance != 1

    @property
    def bar_controls(self) -> bool:
        """Whether decoding goes bar by bar: a rhyme scheme, a rhyme word or a syllable target is set."""
        return self.rhyme_scheme is not None or self.rhyme_with is not None or self.syllables is not None

    def _check_bar_controls(self) -> None:
        if self.syllables is not None:
            _check_int(self, "syllables", minimum=1, maximum=MAX_SYLLABLES)
        _check_int(self, "syllable_tolerance", minimum=0, maximum=MAX_SYLLABLES)
        _check_int(self, "candidates", minimum=1, maximum=MAX_SAMPLES)
        _check_int(self, "rhyme_vowels", minimum=1, maximum=MAX_RHYME_VOWELS)
        _check_int(self, "redraws", minimum=0, maximum=MAX_REDRAWS)
        _check_float(self, "steering", lambda v: 0 <= v <= MAX_STEERING,
                     f"must be in [0, {MAX_STEERING:g}] (0 turns the on-device steering off)")
        for name in ("rhyme_scheme", "rhyme_with"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise FieldError(name, f"{name} must be text, got {getattr(self, name)!r}")
        if self.rhyme_scheme is not None or self.rhyme_with is not None:
            from jaxrap.phonetics.scheme import parse_rhyme_scheme, rhyme_target_key  # the lexicon: only when needed
        if self.rhyme_scheme is not None:
            with _about("rhyme_scheme"):
                object.__setattr__(self, "rhyme_scheme", parse_rhyme_scheme(self.rhyme_scheme).pattern)
        if self.rhyme_with is not None:
            with _about("rhyme_with"):
                rhyme_target_key(self.rhyme_with, self.rhyme_vowels)
            if self.rhyme_scheme is None or set(self.rhyme_scheme) == {"x"}:
                raise FieldError(
                    "rhyme_with",
                    f"rhyme_with {self.rhyme_with!r} needs a rhyme_scheme with a rhyme letter for it (e.g. AAAA or AABB)",
                )
        if self.bar_controls and self.num_samples * self.candidates > MAX_SAMPLES:
            raise FieldError(
                "candidates",
                f"num_samples x candidates = {self.num_samples} x {self.candidates} = {self.num_samples * self.candidates}"
                f" rows, but one batch holds at most {MAX_SAMPLES}: lower num_samples or candidates"
            )

    @property
    def new_tokens_cap(self) -> int:
        """The most tokens a sample may get: ``max_new_tokens``, or DEFAULT_MAX_NEW_TOKENS."""
        return DEFAULT_MAX_NEW_TOKENS if self.max_new_tokens is None else self.max_new_tokens

    def replace(self, **changes) -> SamplingParams:
        return dataclasses.replace(self, **changes)

    def with_seed(self) -> SamplingParams:
        """These params with a concrete seed: a fresh random one when ``seed`` is None."""
        return self if self.seed is not None else self.replace(seed=secrets.randbelow(MAX_SEED))


def params_to_record(params: SamplingParams) -> dict[str, Any]:
    """Every field of ``params`` as JSON values (``stop`` as a list): a history line's params,
    and `jaxrap eval --json`'s sampling."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(params).items()}


def params_from_record(record: Mapping[str, Any]) -> SamplingParams:
    """SamplingParams back from ``params_to_record``'s form, validated: fields this version does
    not know are ignored, fields the record lacks take their defaults."""
    known = {field.name for field in dataclasses.fields(SamplingParams)}
    values: dict[str, Any] = {key: tuple(value) if isinstance(value, list) else value for key, value in record.items() if key in known}
    return SamplingParams(**values)


@contextlib.contextmanager
def _about(name: str) -> Iterator[None]:
    """Re-raise a JaxrapError from a check done elsewhere (the phonetics package) as one about field ``name``."""
    try:
        yield
    except FieldError:
        raise
    except JaxrapError as error:
        raise FieldError(name, str(error)) from None


def _check_int(params: SamplingParams, name: str, minimum: int, maximum: int = MAX_INT32) -> None:
    value = getattr(params, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(name, f"{name} must be an integer, got {value!r}")
    if not minimum <= value <= maximum:
        bound = f">= {minimum}" if value < minimum and maximum == MAX_INT32 else f"in [{minimum}, {maximum}]"
        raise FieldError(name, f"{name} must be {bound}, got {value}")


def _check_float(params: SamplingParams, name: str, valid: Callable[[float], bool], rule: str) -> None:
    value = getattr(params, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(name, f"{name} must be a number, got {value!r}")
    if not -MAX_FLOAT32 <= value <= MAX_FLOAT32:  # NaN and inf too; an int of any size compares exactly
        raise FieldError(name, f"{name} must be a finite number, got {value}")
    if not valid(value):
        raise FieldError(name, f"{name} {rule}, got {value}")
