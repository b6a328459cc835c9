"""Generator: the one Python API for generating lyrics, shared by the CLI and the terminal UI.

    generator = Generator.load("path/to/model")             # HF directory or hub id
    for delta in generator.stream("J'ai grandi", SamplingParams(seed=1)):
        print(delta.text, end="", flush=True)                # delta.sample says which sample
    texts = generator.generate("J'ai grandi", SamplingParams(num_samples=3))

``stream`` yields text as chunks of tokens come off the device (a few tokens per jitted call),
UTF-8 safe, and stops between chunks when ``cancel`` is set. A prompt and ``max_new_tokens``
too long for the context are cut (``fit_context``) with a ``ContextOverflowWarning``, never an
error.

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
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from jaxrap.data.artists import UNKNOWN_ARTIST, artist_token
from jaxrap.errors import FieldError, JaxrapError
from jaxrap.load import LoadedModel, load_model
from jaxrap.sample.context import fit_prompt
from jaxrap.sample.decode import DecodeModel, token_chunks
from jaxrap.sample.params import SamplingParams
from jaxrap.sample.processors import SamplingArrays
from jaxrap.sample.sample_text import CANCELLED, LENGTH, SampleText

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

    from jaxrap.data.artists import SongPrompt
    from jaxrap.model.config import GPT2Config


class ContextOverflowWarning(UserWarning):
    """The prompt (or max_new_tokens) was cut to fit the model's context."""


class UntrainedGuidanceWarning(UserWarning):
    """Guidance against an unknown-artist token that training never saw (its random init)."""


@dataclasses.dataclass(frozen=True)
class TextDelta:
    sample: int  # which sample, 0 .. num_samples - 1
    text: str  # text to append to that sample (may be empty on its last delta)
    finish_reason: str | None = None  # set on a sample's last delta; see sample_text's reasons


class Generator:
    def __init__(self, loaded: LoadedModel, *, dtype: str = "float32"):
        self.loaded = loaded
        self.model = DecodeModel.from_params(loaded.config, loaded.params, dtype)  # weights on device, jitted programs
        self._unknown_checked = False  # the untrained-unknown warning is given once per generator

    @property
    def config(self) -> GPT2Config:
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
        "cancelled") after the chunk being decoded.
        """
        params = (params or SamplingParams()).with_seed()
        unconditioned_prefix = self.guidance_prefix(params)
        prefix = self.prompt_prefix(params.artist)
        prompt_ids, params = self.fit_context(self.encode_prompt(prompt, params.artist), params, keep=len(prefix))
        # The same prompt after unknown's token: the prefixes differ in that token alone.
        unconditioned_ids = None if unconditioned_prefix is None else unconditioned_prefix + prompt_ids[len(prefix):]
        eos = self.tokenizer.eos_token_id
        samples = [
            SampleText(self.tokenizer, prompt_ids, eos_token_id=eos, max_new_tokens=params.max_new_tokens,
                       stop=params.stop, max_bars=params.max_bars)
            for _ in range(params.num_samples)
        ]
        sampling = SamplingArrays.from_params(params, eos)
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
                    break
            reason = CANCELLED if cancel is not None and cancel.is_set() else LENGTH
            for index, sample in enumerate(samples):
                if sample.finish_reason is None:
                    yield TextDelta(index, sample.finish(reason), reason)
        finally:
            chunks.close()

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
        """``fitted_prompt``'s prompt ids and token budget as params, each cut announced with a
        ``ContextOverflowWarning``."""
        fitted_ids, budget = self.fitted_prompt(prompt_ids, params.max_new_tokens, keep=keep)
        S = self.config.n_positions
        if prompt_ids and fitted_ids != prompt_ids:
            warnings.warn(
                f"the prompt is {len(prompt_ids)} tokens and max_new_tokens is {params.max_new_tokens}, more"
                f" than the model's context of {S} tokens; the model sees the prompt's last"
                f" {len(fitted_ids) - (keep if len(fitted_ids) > keep else 0)} tokens", ContextOverflowWarning,
                stacklevel=3,
            )
        if params.max_new_tokens > budget:
            warnings.warn(
                f"max_new_tokens {params.max_new_tokens} does not fit the model's context of {S} tokens"
                f" after a {len(fitted_ids)}-token prompt; generating at most {budget}",
                ContextOverflowWarning, stacklevel=3,
            )
            params = params.replace(max_new_tokens=budget, min_new_tokens=min(params.min_new_tokens, budget))
        return fitted_ids, params

    def fitted_prompt(self, prompt_ids: list[int], max_new_tokens: int, *, keep: int = 0) -> tuple[list[int], int]:
        """The prompt ids and the new-token budget that fit n_positions, silently, by
        ``jaxrap.sample.context.fit_prompt``'s rule (the first ``keep`` tokens are the song
        prefix). An empty prompt starts from the bos token (end-of-song for jaxrap and GPT-2
        tokenizers: the start of a new song), as transformers' generate does.
        """
        if not prompt_ids:
            bos = self.tokenizer.bos_token_id
            prompt_ids = [bos if bos is not None else self.tokenizer.eos_token_id]
        return fit_prompt(prompt_ids, max_new_tokens, self.config.n_positions, keep=keep)
