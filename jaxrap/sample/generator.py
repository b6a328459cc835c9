"""Generator: the one Python API for generating lyrics, shared by the CLI and the terminal UI.

    generator = Generator.load("path/to/model")             # HF directory or hub id
    for delta in generator.stream("J'ai grandi", SamplingParams(seed=1)):
        print(delta.text, end="", flush=True)                # delta.sample says which sample
    texts = generator.generate("J'ai grandi", SamplingParams(num_samples=3))

``stream`` yields text as chunks of tokens come off the device (a few tokens per jitted call),
UTF-8 safe, and stops between chunks when ``cancel`` is set. A prompt too long for the
context is cut from the left with a ``ContextOverflowWarning``, never an error.
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from jaxrap.errors import JaxrapError
from jaxrap.model.config import GPT2Config
from jaxrap.sample.decode import DecodeModel, token_chunks
from jaxrap.sample.params import SamplingParams
from jaxrap.sample.processors import SamplingArrays
from jaxrap.sample.sample_text import CANCELLED, LENGTH, SampleText


class ContextOverflowWarning(UserWarning):
    """The prompt (or max_new_tokens) was cut to fit the model's context."""


@dataclasses.dataclass(frozen=True)
class TextDelta:
    sample: int  # which sample, 0 .. num_samples - 1
    text: str  # text to append to that sample (may be empty on its last delta)
    finish_reason: str | None = None  # set on a sample's last delta; see sample_text's reasons


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """What a loader returns: float32 host params, their tokenizer, and how prompts encode."""

    config: GPT2Config
    params: Any  # nested dict of float32 numpy arrays (gpt2 params layout)
    tokenizer: Any  # PreTrainedTokenizerFast with eos set
    step: int | None = None  # the checkpoint's step for a training run; None for a HF model
    # Hook: models trained by jaxrap may put their song / artist prefix here (issue 6);
    # None encodes the prompt exactly as the tokenizer does, as transformers' generate does.
    encode_prompt: Callable[[str], list[int]] | None = None


def load_run_directory(path: str | Path) -> LoadedModel | None:
    """A training run directory's newest readable checkpoint; None when ``path`` is not a run."""
    from jaxrap.rundir import is_run_dir, load_run_model

    if not is_run_dir(path):
        return None
    run = load_run_model(path)
    return LoadedModel(run.config, run.params, run.tokenizer, step=run.step)


def load_hf_model(name_or_dir: str | Path) -> LoadedModel:
    """A Hugging Face GPT-2 directory or hub id, with the tokenizer saved beside it."""
    from jaxrap.data.tokenizer import load_tokenizer
    from jaxrap.model import hf

    model_dir = hf.resolve_model_dir(name_or_dir)
    config, params = hf.load_pretrained(model_dir)
    tokenizer = load_tokenizer(model_dir)
    if len(tokenizer) > config.vocab_size:
        raise JaxrapError(
            f"{model_dir}: the tokenizer has {len(tokenizer)} tokens but the model only"
            f" {config.vocab_size}; the directory mixes a model and another model's tokenizer"
        )
    return LoadedModel(config, params, tokenizer)


# Each loader takes the --model value and returns a LoadedModel, or None when the value is
# not its kind; the first answer wins. The Hugging Face loader answers for everything else.
MODEL_LOADERS: tuple[Callable[[str | Path], LoadedModel | None], ...] = (load_run_directory, load_hf_model)


class Generator:
    def __init__(self, loaded: LoadedModel, *, dtype: str = "float32"):
        self.config = loaded.config
        self.tokenizer = loaded.tokenizer
        self.step = loaded.step
        self.model = DecodeModel.from_params(loaded.config, loaded.params, dtype)
        self.encode_prompt = loaded.encode_prompt or (lambda text: self.tokenizer(text)["input_ids"])

    @classmethod
    def load(cls, model: str | Path, *, dtype: str = "float32") -> Generator:
        """A generator for a training run directory (its newest checkpoint), a Hugging Face
        directory or a hub id (see MODEL_LOADERS), computing in ``dtype``."""
        for loader in MODEL_LOADERS:
            loaded = loader(model)
            if loaded is not None:
                return cls(loaded, dtype=dtype)
        raise JaxrapError(f"{model}: not a model directory, training run or hub id")

    def stream(
        self, prompt: str, params: SamplingParams | None = None, cancel: threading.Event | None = None
    ) -> Iterator[TextDelta]:
        """Text deltas of every sample as they come; each sample's last delta has a finish_reason.

        ``params.seed`` None draws a fresh seed. Setting ``cancel`` ends every sample (reason
        "cancelled") after the chunk being decoded.
        """
        params = (params or SamplingParams()).with_seed()
        prompt_ids, params = self.fit_context(self.encode_prompt(prompt), params)
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

    def fit_context(self, prompt_ids: list[int], params: SamplingParams) -> tuple[list[int], SamplingParams]:
        """Prompt ids and params that fit n_positions: the prompt keeps its last tokens.

        An empty prompt starts from the bos token (end-of-song for jaxrap and GPT-2
        tokenizers: the start of a new song), as transformers' generate does.
        """
        S = self.config.n_positions
        if not prompt_ids:
            bos = self.tokenizer.bos_token_id
            prompt_ids = [bos if bos is not None else self.tokenizer.eos_token_id]
        if params.max_new_tokens >= S:
            warnings.warn(
                f"max_new_tokens {params.max_new_tokens} does not fit the model's context of {S}"
                f" tokens; generating at most {S - 1}", ContextOverflowWarning, stacklevel=3,
            )
            params = params.replace(max_new_tokens=S - 1, min_new_tokens=min(params.min_new_tokens, S - 1))
        room = S - params.max_new_tokens
        if len(prompt_ids) > room:
            warnings.warn(
                f"the prompt is {len(prompt_ids)} tokens and max_new_tokens is {params.max_new_tokens}, more"
                f" than the model's context of {S} tokens; the model sees the prompt's last {room} tokens",
                ContextOverflowWarning, stacklevel=3,
            )
            prompt_ids = prompt_ids[-room:]
        return list(prompt_ids), params
