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
Face model's prompt is encoded exactly as its tokenizer does.
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from jaxrap.errors import JaxrapError
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


@dataclasses.dataclass(frozen=True)
class TextDelta:
    sample: int  # which sample, 0 .. num_samples - 1
    text: str  # text to append to that sample (may be empty on its last delta)
    finish_reason: str | None = None  # set on a sample's last delta; see sample_text's reasons


class Generator:
    def __init__(self, loaded: LoadedModel, *, dtype: str = "float32"):
        self.loaded = loaded
        self.model = DecodeModel.from_params(loaded.config, loaded.params, dtype)  # weights on device, jitted programs

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
        context by this call, so its ContextOverflowWarnings (and an unknown artist's error)
        come before any text, not in the middle of it.
        """
        params = (params or SamplingParams()).with_seed()
        prefix = self.prompt_prefix(params.artist)
        prompt_ids, params = self.fit_context(self.encode_prompt(prompt, params.artist), params, keep=len(prefix))
        return self._deltas(prompt_ids, params, cancel)

    def _deltas(self, prompt_ids: list[int], params: SamplingParams, cancel: threading.Event | None) -> Iterator[TextDelta]:
        """``stream``'s deltas for fitted prompt ids and params (max_new_tokens fits the context)."""
        assert params.max_new_tokens is not None  # fit_context sets the budget
        eos = self.tokenizer.eos_token_id
        samples = [
            SampleText(self.tokenizer, prompt_ids, eos_token_id=eos, max_new_tokens=params.max_new_tokens,
                       stop=params.stop, max_bars=params.max_bars)
            for _ in range(params.num_samples)
        ]
        sampling = SamplingArrays.from_params(params, eos)
        chunks = token_chunks(self.model, prompt_ids, sampling, num_samples=params.num_samples)
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
        """``fitted_prompt``'s prompt ids, and params whose ``max_new_tokens`` is the token budget.

        A cut prompt, and a ``max_new_tokens`` or ``min_new_tokens`` the user set that does not
        fit, are announced with a ``ContextOverflowWarning``; the default ``max_new_tokens``
        (None: as many as fit, at most DEFAULT_MAX_NEW_TOKENS) becomes the budget silently.
        """
        fitted_ids, budget = self.fitted_prompt(prompt_ids, params.new_tokens_cap, keep=keep)
        S = self.config.n_positions
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
        """The prompt ids and the new-token budget that fit n_positions, silently, by
        ``jaxrap.sample.context.fit_prompt``'s rule (the first ``keep`` tokens are the song
        prefix). An empty prompt starts from the bos token (end-of-song for jaxrap and GPT-2
        tokenizers: the start of a new song), as transformers' generate does.
        """
        if not prompt_ids:
            bos = self.tokenizer.bos_token_id
            prompt_ids = [bos if bos is not None else self.tokenizer.eos_token_id]
        return fit_prompt(prompt_ids, max_new_tokens, self.config.n_positions, keep=keep)
