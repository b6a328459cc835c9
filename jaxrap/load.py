"""Load a model by what users type for ``--model``: a training run, a HF directory or a hub id.

``generate``, ``eval`` and the terminal UI all load through ``load_model``, so a name means
the same model everywhere. A model trained by jaxrap (a run directory, or its ``jaxrap
export``) comes with the ``SongPrompt`` its training used (end-of-song, then the artist token
when conditioned); ``load_song_prompt`` reads just that, without the weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jaxrap.data.artists import SongPrompt
from jaxrap.errors import JaxrapError
from jaxrap.model.config import GPT2Config


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """What a loader returns: float32 host params, their tokenizer, and how prompts encode."""

    config: GPT2Config
    params: Any  # nested dict of float32 numpy arrays (gpt2 params layout)
    tokenizer: Any  # PreTrainedTokenizerFast with eos set
    step: int | None = None  # the checkpoint's step for a training run; None for a HF model
    run_config: Any = None  # the RunConfig of a training run; None for a HF model
    # How prompts start for a model trained by jaxrap (eos, artist token); None for a plain
    # HF model, whose prompts encode exactly as its tokenizer does (as transformers' generate).
    song_prompt: SongPrompt | None = None


def load_run_directory(path: str | Path) -> LoadedModel | None:
    """A training run directory's newest readable checkpoint; None when ``path`` is not a run."""
    from jaxrap.rundir import is_run_dir, load_run_model

    if not is_run_dir(path):
        return None
    run = load_run_model(path)
    song_prompt = SongPrompt.for_tokenizer(run.tokenizer, artist_tokens=run.run_config.data.artist_tokens)
    return LoadedModel(run.config, run.params, run.tokenizer, step=run.step, run_config=run.run_config, song_prompt=song_prompt)


def load_hf_model(name_or_dir: str | Path) -> LoadedModel:
    """A Hugging Face GPT-2 directory or hub id, with the tokenizer saved beside it."""
    from jaxrap.data.artists import read_prompt_format
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
    return LoadedModel(config, params, tokenizer, song_prompt=read_prompt_format(model_dir, tokenizer))


# Each loader takes the --model value and returns a LoadedModel, or None when the value is
# not its kind; the first answer wins. The Hugging Face loader answers for everything else.
MODEL_LOADERS: tuple[Callable[[str | Path], LoadedModel | None], ...] = (load_run_directory, load_hf_model)


def load_model(model: str | Path) -> LoadedModel:
    """The model of a training run directory (newest checkpoint), HF directory or hub id."""
    for loader in MODEL_LOADERS:
        loaded = loader(model)
        if loaded is not None:
            return loaded
    raise JaxrapError(f"{model}: not a model directory, training run or hub id")


def load_song_prompt(model: str | Path) -> tuple[Any, SongPrompt | None]:
    """(tokenizer, SongPrompt or None) of ``model`` without loading its weights: what
    ``jaxrap artists`` lists."""
    from jaxrap.config import load_config
    from jaxrap.data.artists import read_prompt_format
    from jaxrap.data.tokenizer import load_tokenizer
    from jaxrap.model import hf
    from jaxrap.rundir import RunDir, is_run_dir

    if is_run_dir(model):
        run = RunDir(Path(model))
        tokenizer = load_tokenizer(run.tokenizer_dir)
        artist_tokens = load_config(run.config_file).data.artist_tokens
        return tokenizer, SongPrompt.for_tokenizer(tokenizer, artist_tokens=artist_tokens)
    model_dir = hf.resolve_model_dir(model)
    tokenizer = load_tokenizer(model_dir)
    return tokenizer, read_prompt_format(model_dir, tokenizer)
