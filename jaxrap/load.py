"""Load a model by what users type for ``--model``: a training run, a HF directory or a hub id.

``generate``, ``eval``, ``export``, the terminal UI and the sweep all load through
``load_model`` (or ``jaxrap.rundir.load_run_model`` for a run's given step), and all get one
record, ``LoadedModel``. A model trained by jaxrap (a run directory, or its ``jaxrap export``)
comes with the ``SongPrompt`` its training used (end-of-song, then the artist token when
conditioned); ``load_song_prompt`` reads just that, without the weights.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaxrap.data.artists import SongPrompt
from jaxrap.errors import JaxrapError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

    from jaxrap.config import RunConfig
    from jaxrap.model.registry import LMConfig


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A model as loaded, whatever it came from: float32 host params, their tokenizer, and how
    prompts encode. The one record every loader returns and every user of a model takes."""

    config: LMConfig  # of any family (jaxrap.model.registry)
    params: Any  # nested dict of float32 numpy arrays (host memory; the family's params layout, jaxrap.model.lm)
    tokenizer: PreTrainedTokenizerFast  # with eos (and pad) set, see jaxrap.data.tokenizer
    step: int | None = None  # the checkpoint's step for a training run; None for a HF model
    run_config: RunConfig | None = None  # the training run's config (RUN/config.yaml); None for a HF model
    # How prompts start for a model trained by jaxrap (eos, artist token); None for a plain
    # HF model, whose prompts encode exactly as its tokenizer does (as transformers' generate).
    song_prompt: SongPrompt | None = None

    def unknown_train_songs(self) -> int | None:
        """Train songs that started with <|artist:unknown|> (0: its embedding is the random init,
        so guidance against it mixes in noise). Training records it (``SongPrompt``); for a run
        trained before that, it is counted again from the corpus its config names, when that is
        found (a relative ``data.path`` is read from the working directory). None: unknowable."""
        song_prompt = self.song_prompt
        if song_prompt is None or not song_prompt.conditioned:
            return None
        if song_prompt.unknown_train_songs is not None or self.run_config is None:
            return song_prompt.unknown_train_songs
        from jaxrap.data.corpus import is_corpus, load_corpus

        data, seed = self.run_config.data, self.run_config.train.seed
        if not is_corpus(data.path):
            return None
        return song_prompt.unknown_songs(load_corpus(data.path)["train"], artist_dropout=data.artist_dropout, seed=seed)

    @property
    def artists(self) -> tuple[str, ...]:
        """The values of ``SamplingParams.artist`` it accepts: named artists, sorted, then
        ``unknown`` (as `jaxrap artists` lists them); () for a model without artist tokens."""
        return self.song_prompt.artists if self.song_prompt is not None else ()


class SkippedCheckpointWarning(UserWarning):
    """A run's newest checkpoint could not be read, or read back damaged: an older one was loaded."""


def load_run_directory(path: str | Path) -> LoadedModel | None:
    """A training run directory's newest readable checkpoint (a ``SkippedCheckpointWarning`` for
    each newer one skipped: the commands print it, the terminal UI notifies it); None when
    ``path`` is not a run."""
    from jaxrap.rundir import is_run_dir, load_run_model

    def warn(text: str) -> None:
        warnings.warn(text.removeprefix("warning: "), SkippedCheckpointWarning, stacklevel=2)

    return load_run_model(path, warn=warn) if is_run_dir(path) else None


def load_hf_model(name_or_dir: str | Path) -> LoadedModel:
    """A Hugging Face model directory or hub id (any family of ``jaxrap.model.registry``), with the
    tokenizer saved beside it. A tokenizer larger than the embedding is refused before any
    weight is read."""
    from jaxrap.data.artists import read_prompt_format
    from jaxrap.data.tokenizer import load_tokenizer
    from jaxrap.model import hf

    model_dir = hf.resolve_model_dir(name_or_dir)
    config = hf.load_config(model_dir)
    tokenizer = load_tokenizer(model_dir)
    if len(tokenizer) > config.vocab_size:
        raise JaxrapError(
            f"{model_dir}: the tokenizer has {len(tokenizer)} tokens but the model only"
            f" {config.vocab_size}; the directory mixes a model and another model's tokenizer"
        )
    config, params = hf.load_pretrained(model_dir)
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


def load_model_config(model: str | Path) -> LMConfig:
    """The config of ``model`` (a run's model_config.json, a HF directory's config.json), without
    its weights: what callers check an input against before loading them."""
    from jaxrap.model import hf
    from jaxrap.model.registry import read_config
    from jaxrap.rundir import RunDir, is_run_dir

    if is_run_dir(model):
        return read_config(RunDir(Path(model)).model_config_file)
    return hf.load_config(hf.resolve_model_dir(model))


def load_song_prompt(model: str | Path) -> tuple[PreTrainedTokenizerFast, SongPrompt | None]:
    """(tokenizer, SongPrompt or None) of ``model`` without loading its weights: what
    ``jaxrap artists`` lists."""
    from jaxrap.data.artists import read_prompt_format
    from jaxrap.data.tokenizer import load_tokenizer
    from jaxrap.model import hf
    from jaxrap.rundir import RunDir, is_run_dir, read_run_prompt

    if is_run_dir(model):
        tokenizer, _, song_prompt = read_run_prompt(RunDir(Path(model)))
        return tokenizer, song_prompt
    model_dir = hf.resolve_model_dir(model)
    tokenizer = load_tokenizer(model_dir)
    return tokenizer, read_prompt_format(model_dir, tokenizer)
