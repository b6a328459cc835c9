"""Generator: the one Python API for generating lyrics, shared by the CLI and the terminal UI.

    generator = Generator.load("path/to/model")             # HF directory or hub id
    for delta in generator.stream("J'ai grandi", SamplingParams(seed=1)):
        print(delta.text, end="", flush=True)                # delta.sample says which sample
    texts = generator.generate("J'ai grandi", SamplingParams(num_samples=3))

``stream`` yields text as chunks of tokens come off the device (a few tokens per jitted call),
UTF-8 safe, and stops between chunks when ``cancel`` is set. A prompt and ``max_new_tokens``
too long for the context are cut (``fit_context``) with a ``ContextOverflowWarning``, never an
error; the default ``max_new_tokens`` (None) is what the context leaves, at most 256, silently.

Prompts of a model trained by jaxrap start as its training songs did (``SongPrompt``:
end-of-song, then ``params.artist``'s token when the model knows artists); a plain Hugging
Face model's prompt is encoded exactly as its tokenizer does. With ``params.artist_guidance``
!= 1 the prompt is also decoded after the unknown artist's token, and each step's logits are
guided away from it (``jaxrap.sample.guidance``).
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jaxrap.data.artists import UNKNOWN_ARTIST, artist_token
from jaxrap.errors import FieldError, JaxrapError
from jaxrap.load import LoadedModel, load_model
from jaxrap.phonetics.rhyme import lyric_bars
from jaxrap.sample.bar_check import Bar
from jaxrap.sample.context import fit_prompt
from jaxrap.sample.decode import DecodeModel, token_chunks
from jaxrap.sample.params import SamplingParams
from jaxrap.sample.processors import SamplingArrays
from jaxrap.sample.sample_text import BARS, CANCELLED, LENGTH, SampleText

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

    from jaxrap.data.artists import SongPrompt
    from jaxrap.model.registry import LMConfig


class ContextOverflowWarning(UserWarning):
    """The prompt (or max_new_tokens) was cut to fit the model's context."""


class UntrainedGuidanceWarning(UserWarning):
    """Guidance against an unknown-artist token that training never saw (its random init)."""


@dataclasses.dataclass(frozen=True)
class TextDelta:
    sample: int  # which sample, 0 .. num_samples - 1
    text: str  # text to append to that sample (may be empty on its last delta)
    finish_reason: str | None = None  # set on a sample's last delta; see sample_text's reasons
    bar: Bar | None = None  # with bar controls: the bar this delta shows, with its facts (met or not, why)


class Generator:
    def __init__(self, loaded: LoadedModel, *, dtype: str = "float32"):
        self.loaded = loaded
        self.model = DecodeModel.from_params(loaded.config, loaded.params, dtype)  # weights on device, jitted programs
        self._unknown_checked = False  # the untrained-unknown warning is given once per generator

    @property
    def config(self) -> LMConfig:
        return self.loaded.config

    @property
    def tokenizer(self) -> PreTrainedTokenizerFast:
        return self.loaded.tokenizer

    @property
    def step(self) -> int | None:
        return self.loaded.step

    @property
    def song_prompt(self) -> SongPrompt | None:
        return self.loaded.song_prompt

    @classmethod
    def load(cls, model: str | Path, *, dtype: str = "float32") -> Generator:
        """A generator for a training run directory (its newest checkpoint), a Hugging Face
        directory or a hub id (see ``jaxrap.load``), computing in ``dtype``."""
        return cls(load_model(model), dtype=dtype)

    @property
    def artists(self) -> tuple[str, ...]:
        """The artists the model is conditioned on (values of ``params.artist``); () for none."""
        return self.loaded.artists

    def prompt_prefix(self, artist: str | None = None) -> list[int]:
        """Token ids before the prompt's text: the training's song start, or none for a plain
        Hugging Face model. A JaxrapError for an artist the model does not know."""
        if self.song_prompt is not None:
            return self.song_prompt.prefix(artist)
        if artist is not None:
            raise JaxrapError(
                f"--artist {artist}: this model has no artist tokens (a plain Hugging Face model);"
                " use a model trained by jaxrap with data.artist_tokens: true"
            )
        return []

    def guidance_prefix(self, params: SamplingParams) -> list[int] | None:
        """The unconditioned rows' song prefix when ``params`` asks for artist guidance (None
        when it does not). A JaxrapError for a model without artist tokens, a FieldError for
        guidance without an artist, a JaxrapError for guidance towards ``unknown``; an
        ``UntrainedGuidanceWarning`` (once per generator) when the model's unknown token was
        never trained (``LoadedModel.unknown_train_songs``)."""
        if not params.guided:
            return None
        weight, song_prompt = f"--artist-guidance {params.artist_guidance:g}", self.song_prompt
        if song_prompt is None or not song_prompt.conditioned:
            raise JaxrapError(
                f"{weight}: this model has no artist tokens to guide with; use a model trained by jaxrap"
                " with data.artist_tokens: true (and data.artist_dropout > 0)"
            )
        if params.artist is None:
            raise FieldError(
                "artist_guidance", f"{weight}: needs an artist (--artist NAME): it steers towards an artist's style"
            )
        if song_prompt.resolve(params.artist) == UNKNOWN_ARTIST:
            raise JaxrapError(f"{weight}: needs a named artist, not {UNKNOWN_ARTIST} (guidance steers away from {UNKNOWN_ARTIST})")
        if not self._unknown_checked:
            self._unknown_checked = True
            if self.loaded.unknown_train_songs() == 0:
                warnings.warn(
                    f"{weight}: this model never trained {artist_token(UNKNOWN_ARTIST)} (no train song started with it:"
                    " every artist has a token and data.artist_dropout was 0), so guidance mixes in an untrained"
                    " token; train with data.artist_dropout: 0.1", UntrainedGuidanceWarning, stacklevel=3,
                )
        return song_prompt.prefix(None)

    def encode_prompt(self, prompt: str, artist: str | None = None) -> list[int]:
        """The prompt's token ids, song prefix included."""
        return self.prompt_prefix(artist) + self.encode_text(prompt)

    def encode_text(self, text: str) -> list[int]:
        """Token ids of ``text`` alone: as the tokenizer encodes it for a plain Hugging Face
        model, as training tokenized lyrics for a jaxrap model (text that spells a control
        token stays text)."""
        from jaxrap.data.tokenizer import encode_texts, require_unicode

        if self.song_prompt is None:
            return self.tokenizer(require_unicode(text))["input_ids"]
        return encode_texts(self.tokenizer, [text])[0]

    def stream(
        self, prompt: str, params: SamplingParams | None = None, cancel: threading.Event | None = None
    ) -> Iterator[TextDelta]:
        """Text deltas of every sample as they come; each sample's last delta has a finish_reason.

        ``params.seed`` None draws a fresh seed. Setting ``cancel`` ends every sample (reason
        "cancelled") after the chunk being decoded. The prompt is encoded and fitted to the
        context by this call, so its ContextOverflowWarnings (and an unknown artist's error, or
        a JaxrapError when no bar fits) come before any text, not in the middle of it.
        """
        params = (params or SamplingParams()).with_seed()
        unconditioned_prefix = self.guidance_prefix(params)
        prefix = self.prompt_prefix(params.artist)
        prompt_ids, params = self.fit_context(prefix + self.encode_text(prompt), params, keep=len(prefix))
        # The same prompt after unknown's token: the prefixes differ in that token alone.
        unconditioned_ids = None if unconditioned_prefix is None else unconditioned_prefix + prompt_ids[len(prefix):]
        return self._deltas(prompt_ids, unconditioned_ids, params, cancel)

    def _deltas(self, prompt_ids: list[int], unconditioned_ids: list[int] | None, params: SamplingParams,
                cancel: threading.Event | None) -> Iterator[TextDelta]:
        """``stream``'s deltas for fitted prompt ids (and their unconditioned twin with guidance)
        and params (max_new_tokens fits the context)."""
        assert params.max_new_tokens is not None  # fit_context sets the budget
        eos = self.tokenizer.eos_token_id
        samples = [
            SampleText(self.tokenizer, prompt_ids, eos_token_id=eos, max_new_tokens=params.max_new_tokens,
                       stop=params.stop, max_bars=0 if params.bar_controls else params.max_bars)
            for _ in range(params.num_samples)
        ]
        if params.bar_controls:
            self._check_room_for_a_bar(prompt_ids, params)
            deltas = self._bar_deltas(prompt_ids, unconditioned_ids, params, samples, cancel)
        else:
            deltas = self._token_deltas(prompt_ids, unconditioned_ids, params, samples, cancel)
        return self._finished(deltas, samples, cancel)

    def _finished(self, deltas: Iterator[TextDelta], samples: list[SampleText],
                  cancel: threading.Event | None) -> Iterator[TextDelta]:
        """``deltas``, then the last delta of each sample they left unfinished (cancelled, or out of tokens)."""
        yield from deltas
        reason = CANCELLED if cancel is not None and cancel.is_set() else LENGTH
        for index, sample in enumerate(samples):
            if sample.finish_reason is None:
                yield TextDelta(index, sample.finish(reason), reason)

    def _token_deltas(self, prompt_ids: list[int], unconditioned_ids: list[int] | None, params: SamplingParams,
                      samples: list[SampleText], cancel: threading.Event | None) -> Iterator[TextDelta]:
        """Plain decoding: each sample's text as chunks of tokens come, until all end or cancel."""
        sampling = SamplingArrays.from_params(params, self.tokenizer.eos_token_id)
        chunks = token_chunks(
            self.model, prompt_ids, sampling, num_samples=params.num_samples, unconditioned_ids=unconditioned_ids
        )
        try:
            for chunk in chunks:  # (B, k) tokens
                for index, sample in enumerate(samples):
                    if sample.finish_reason is None:
                        text = sample.push(chunk[index])
                        if text or sample.finish_reason:
                            yield TextDelta(index, text, sample.finish_reason)
                if all(sample.finish_reason for sample in samples):
                    return
                if cancel is not None and cancel.is_set():
                    return
        finally:
            chunks.close()

    def _bar_deltas(self, prompt_ids: list[int], unconditioned_ids: list[int] | None, params: SamplingParams,
                    samples: list[SampleText], cancel: threading.Event | None) -> Iterator[TextDelta]:
        """Bar by bar (``bar_decode``): each sample's kept bar as one delta carrying its record."""
        from jaxrap.sample.bar_decode import BarDecoder

        decoder = BarDecoder(self.model, self.tokenizer, prompt_ids, params, unconditioned_ids=unconditioned_ids)
        bars = [0] * params.num_samples
        while not decoder.done and not (cancel is not None and cancel.is_set()):
            kept = decoder.next_bar(cancel)
            if kept is None:
                return
            for bar in kept:
                sample = samples[bar.sample]
                text = sample.push(bar.ids)
                bars[bar.sample] += bar.bar is not None
                if sample.finish_reason is None and bar.out_of_room:
                    text += sample.finish(LENGTH)
                elif sample.finish_reason is None and bars[bar.sample] == params.max_bars:
                    text += sample.finish(BARS)
                if sample.finish_reason is not None:
                    decoder.finish(bar.sample)
                yield TextDelta(bar.sample, text, sample.finish_reason, bar.bar)

    def _check_room_for_a_bar(self, prompt_ids: list[int], params: SamplingParams) -> None:
        """Bar controls need room for one bar after the prompt: at least a token per syllable of the
        shortest bar they allow, and its newline. A FieldError on ``syllables`` (or
        ``max_new_tokens`` without a target), so that the TUI can point at it."""
        needed = max((params.syllables or 1) - params.syllable_tolerance, 1) + 1
        assert params.max_new_tokens is not None  # fit_context sets the budget
        if params.max_new_tokens < needed:  # about the syllables asked for, or the tokens left without a target
            raise FieldError(
                "syllables" if params.syllables is not None else "max_new_tokens",
                f"no room for one bar: {params.max_new_tokens} new tokens (max_new_tokens, after a"
                f" {len(prompt_ids)}-token prompt in a context of {self.model.context}) are fewer than the"
                f" {needed} a bar of {needed - 1}+ syllables needs (a token per syllable and its newline);"
                " shorten the prompt or raise max_new_tokens"
            )

    def suggest_bars(
        self,
        bars: Sequence[str],
        params: SamplingParams,
        k: int,
        *,
        index: int | None = None,
        cancel: threading.Event | None = None,
    ) -> list[Bar]:
        """The writing room's candidates for one bar of a verse: what the bar decoder draws.

        ``bars`` is the verse so far, a bar per item (no newlines). ``index`` None (or
        ``len(bars)``) asks for the bar after the last; an index below ``len(bars)`` regenerates
        that bar in place: its candidates continue ``bars[:index]`` and rhyme with its group of
        ``params.rhyme_scheme``, members below it included (``bars[index + 1:]``; the bar's own
        text is not read). Bars are numbered from the verse's first, whatever part of it the
        context holds: a verse too long for the model's context is cut from its start, silently.

        ``k`` (1..64) candidates are decoded at once (``params.candidates`` is replaced by it),
        drawn again up to ``params.redraws`` times while none meets the targets; returned are at
        most ``k`` of them, each text once, the met ones first (``BarDecoder.suggestions``),
        each a ``Bar`` (text, syllables, rhyme key, word, letter, target key, syllable range,
        met, reason...). The artist, guidance and bar controls of ``params`` apply; the same
        seed gives the same candidates. A FieldError for a ``k`` out of range (field
        ``candidates``), a JaxrapError for a bar that is blank, a [marker] or holds a newline,
        or an index outside ``0..len(bars)``. None is never returned: ``cancel`` set meanwhile
        gives []."""
        from jaxrap.sample.bar_decode import BAR_WINDOW, BarDecoder

        verse = verse_bars(bars)
        index = len(verse) if index is None else index
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= len(verse):
            raise JaxrapError(f"bar index {index!r} is outside the verse's bars 0..{len(verse)} (len(bars): the next bar)")
        for number, bar in enumerate(verse, start=1):
            if number - 1 != index and not lyric_bars(bar):
                raise JaxrapError(f"bar {number} of the verse is blank or a [section] marker: give the verse's bars only")
        params = params.replace(num_samples=1, candidates=k, max_bars=0, stop=()).with_seed()
        above = "".join(bar + "\n" for bar in verse[:index])
        unconditioned_prefix = self.guidance_prefix(params)
        prefix = self.prompt_prefix(params.artist)
        prompt_ids, budget = self.fitted_prompt(
            prefix + self.encode_text(above), min(params.new_tokens_cap, BAR_WINDOW), keep=len(prefix)
        )
        params = params.replace(max_new_tokens=budget, min_new_tokens=min(params.min_new_tokens, budget))
        self._check_room_for_a_bar(prompt_ids, params)
        unconditioned_ids = None if unconditioned_prefix is None else unconditioned_prefix + prompt_ids[len(prefix):]
        decoder = BarDecoder(
            self.model, self.tokenizer, prompt_ids, params, unconditioned_ids=unconditioned_ids,
            prompt_text=above, later_bars=verse[index + 1 :],
        )
        return decoder.suggestions(cancel) or []

    def generate(self, prompt: str, params: SamplingParams | None = None) -> list[str]:
        """The generated text of each sample (without the prompt)."""
        params = (params or SamplingParams()).with_seed()
        texts = [""] * params.num_samples
        for delta in self.stream(prompt, params):
            texts[delta.sample] += delta.text
        return texts

    def fit_context(
        self, prompt_ids: list[int], params: SamplingParams, *, keep: int = 0
    ) -> tuple[list[int], SamplingParams]:
        """``fitted_prompt``'s prompt ids, and params whose ``max_new_tokens`` is the token budget.

        A cut prompt, and a ``max_new_tokens`` or ``min_new_tokens`` the user set that does not
        fit, are announced with a ``ContextOverflowWarning``; the default ``max_new_tokens``
        (None: as many as fit, at most DEFAULT_MAX_NEW_TOKENS) becomes the budget silently.
        """
        fitted_ids, budget = self.fitted_prompt(prompt_ids, params.new_tokens_cap, keep=keep)
        S = self.model.context
        if prompt_ids and fitted_ids != prompt_ids:
            asked = (f"max_new_tokens is {params.max_new_tokens}" if params.max_new_tokens is not None
                     else f"up to {params.new_tokens_cap} new tokens are generated by default")
            warnings.warn(
                f"the prompt is {len(prompt_ids)} tokens and {asked}, more than the model's context of {S} tokens;"
                f" the model sees the prompt's last {len(fitted_ids) - (keep if len(fitted_ids) > keep else 0)} tokens",
                ContextOverflowWarning, stacklevel=3,
            )
        for name in ("max_new_tokens", "min_new_tokens"):
            value = getattr(params, name)
            if value is not None and value > budget:
                warnings.warn(
                    f"{name} {value} does not fit the model's context of {S} tokens after a {len(fitted_ids)}-token"
                    f" prompt; generating at {'most' if name == 'max_new_tokens' else 'least'} {budget}",
                    ContextOverflowWarning, stacklevel=3,
                )
        return fitted_ids, params.replace(max_new_tokens=budget, min_new_tokens=min(params.min_new_tokens, budget))

    def fitted_prompt(self, prompt_ids: list[int], max_new_tokens: int, *, keep: int = 0) -> tuple[list[int], int]:
        """The prompt ids and the new-token budget that fit the context (``DecodeModel.context``), silently, by
        ``jaxrap.sample.context.fit_prompt``'s rule (the first ``keep`` tokens are the song
        prefix). An empty prompt starts from the bos token (end-of-song for jaxrap and GPT-2
        tokenizers: the start of a new song), as transformers' generate does.
        """
        if not prompt_ids:
            bos = self.tokenizer.bos_token_id
            prompt_ids = [bos if bos is not None else self.tokenizer.eos_token_id]
        return fit_prompt(prompt_ids, max_new_tokens, self.model.context, keep=keep)


def verse_bars(bars: Sequence[str]) -> list[str]:
    """``suggest_bars``' verse as a list of strings, or a JaxrapError: a sequence of texts, none
    holding a newline."""
    if isinstance(bars, str) or not all(isinstance(bar, str) for bar in bars):
        raise JaxrapError("the verse must be a list of bars (strings), one bar per item")
    for number, bar in enumerate(bars, start=1):
        if "\n" in bar or "\r" in bar:
            raise JaxrapError(f"bar {number} of the verse holds a line break: give one bar per item")
    return list(bars)
