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

import dataclasses
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from jaxrap.errors import FieldError

MAX_SEED = 2**32  # seeds are uint32: they become a traced PRNG key inside the jitted prefill
MAX_SAMPLES = 64  # samples of one prompt decode as one batch; more would not fit a CPU's cache
MAX_INT32 = 2**31 - 1  # counts reach the jitted sampler as int32 (processors.SamplingArrays)
MAX_FLOAT32 = 3.4028234663852886e38  # and numbers as float32, where a larger one would be inf


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """How to continue a prompt. Filters are applied in transformers' order (see processors)."""

    max_new_tokens: int = 256  # stop after this many generated tokens
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
    # Classifier-free guidance on the artist token (jaxrap.sample.guidance): logits l_unknown +
    # w (l_artist - l_unknown), w > 0; 1 is off (plain conditioning, no unconditioned rows).
    artist_guidance: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.stop, (list, tuple)) or not all(isinstance(s, str) for s in self.stop):
            raise FieldError("stop", f"stop must be a list or tuple of strings, got {self.stop!r}")
        object.__setattr__(self, "stop", tuple(self.stop))
        _check_int(self, "max_new_tokens", minimum=1)
        _check_int(self, "min_new_tokens", minimum=0)
        _check_int(self, "top_k", minimum=0)
        _check_int(self, "repetition_window", minimum=0)
        _check_int(self, "no_repeat_ngram_size", minimum=0)
        _check_int(self, "num_samples", minimum=1, maximum=MAX_SAMPLES)
        _check_int(self, "max_bars", minimum=0)
        if self.seed is not None:
            _check_int(self, "seed", minimum=0, maximum=MAX_SEED - 1)
        if self.min_new_tokens > self.max_new_tokens:
            raise FieldError(
                "min_new_tokens", f"min_new_tokens ({self.min_new_tokens}) must not exceed max_new_tokens ({self.max_new_tokens})"
            )
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
        # Guidance without an artist is refused where the artist is final (Generator.guidance_prefix):
        # jaxrap eval sets each prompt's own.
        _check_float(self, "artist_guidance", lambda v: v > 0, "must be > 0 (1 turns it off)")

    @property
    def guided(self) -> bool:
        """Classifier-free guidance is on: the model also decodes the unconditioned rows."""
        return self.artist_guidance != 1

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
