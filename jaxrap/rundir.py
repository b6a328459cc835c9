"""A training run's directory: its layout, and loading a trained model back from it.

```
RUN/
  config.yaml          the resolved run config (jaxrap.config.RunConfig)
  model_config.json    the model's shape (any family), in Hugging Face config.json form
  tokenizer/           the tokenizer the run trains with (trained or copied here)
  jaxrap_prompt.json   how its songs start, and how many train songs started with <|artist:unknown|>
  checkpoints/<step>/  Orbax checkpoints: params, train_state, meta (see jaxrap.checkpoint)
  metrics.jsonl        one JSON record per logged step
  tensorboard/         TensorBoard event files
  train.lock           held by the `jaxrap train` writing the run (jaxrap.train.run_lock)
```

``generate``, ``eval``, ``export`` and the terminal UI load runs with ``load_run_model``, as a
``jaxrap.load.LoadedModel``. A LoRA run's checkpoints hold its adapters only: they are merged
onto its base (``model.init``, checked against the fingerprint the checkpoint records) inside
jit, once, so everything downstream runs the plain network (docs/lora.md measures merging
against applying the adapters at run time). Importing this module is cheap (no jax); loading
imports it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaxrap.data.artists import SongPrompt
from jaxrap.errors import JaxrapError
from jaxrap.load import LoadedModel

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

    from jaxrap.config import RunConfig
    from jaxrap.model.lora import LoraSpec
    from jaxrap.model.registry import LMConfig

CONFIG_FILE = "config.yaml"
MODEL_CONFIG_FILE = "model_config.json"
TOKENIZER_DIR = "tokenizer"
CHECKPOINTS_DIR = "checkpoints"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
LOCK_FILE = "train.lock"


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def model_config_file(self) -> Path:
        return self.path / MODEL_CONFIG_FILE

    @property
    def tokenizer_dir(self) -> Path:
        return self.path / TOKENIZER_DIR

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD_DIR

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_FILE

    def has_checkpoints(self) -> bool:
        """A finalized step directory exists (Orbax names them by the step number)."""
        return self.checkpoints_dir.is_dir() and any(p.name.isdigit() for p in self.checkpoints_dir.iterdir())


def is_run_dir(path: str | Path) -> bool:
    """``path`` looks like a training run (a config and a checkpoints directory)."""
    run = RunDir(Path(path))
    return run.config_file.is_file() and run.checkpoints_dir.is_dir()


def read_run_prompt(run: RunDir) -> tuple[PreTrainedTokenizerFast, RunConfig, SongPrompt]:
    """The run's tokenizer, its config (``config.yaml``) and how its songs start: everything
    loading a run needs besides the weights, and all `jaxrap artists` reads. ``config.yaml`` is
    the one source of the run's settings here (a resume may change only ``RESUMABLE_KEYS``, none
    of which says how a song starts)."""
    from jaxrap.config import load_config
    from jaxrap.data.artists import read_prompt_record
    from jaxrap.data.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(run.tokenizer_dir)
    config = load_config(run.config_file)
    # Training's record of its train songs (runs trained before it was written have none).
    record = read_prompt_record(run.path) or {}
    song_prompt = SongPrompt.for_tokenizer(
        tokenizer, artist_tokens=config.data.artist_tokens, unknown_train_songs=record.get("unknown_train_songs")
    )
    return tokenizer, config, song_prompt


@dataclass(frozen=True)
class RunParams:
    """A checkpoint's params as saved: all of the model's, or a LoRA run's adapters (``lora``)."""

    step: int
    params: Any  # on the default device: the trainable params (lm's layout, or the adapters')
    lora: LoraSpec | None = None  # the adapters' spec; None for a full fine-tuning run
    base: str | None = None  # a LoRA run's model.init
    base_fingerprint: str | None = None  # and its lora.base_fingerprint when trained


def load_run_model(
    run_dir: str | Path, step: int | str | None = None, *, warn: Callable[[str], None] | None = None
) -> LoadedModel:
    """The model of a run's checkpoint: ``step`` (an int, ``"best"`` by validation loss, or None
    for the newest readable one; an unreadable newest one is skipped with a warning). A LoRA
    run's adapters are merged, inside jit, onto its base (``model.init``, refused when it is
    no longer the base they were trained on)."""
    import jax

    from jaxrap.model import lora
    from jaxrap.model.partition import join
    from jaxrap.model.registry import read_config

    run = RunDir(Path(run_dir))
    config = read_config(_checked(run).model_config_file)
    saved = load_run_params(run.path, step, warn=warn)
    tokenizer, run_config, song_prompt = read_run_prompt(run)
    if saved.lora is None:
        params = jax.device_get(saved.params)
    else:
        assert saved.base is not None  # a LoRA run's record names its base
        params = lora.merged(config, saved.lora, join(saved.params, load_lora_base(config, saved, seed=run_config.train.seed)))
    return LoadedModel(config, params, tokenizer, saved.step, run_config, song_prompt)


def load_run_params(run_dir: str | Path, step: int | str | None = None, *, warn: Callable[[str], None] | None = None) -> RunParams:
    """The params of a run's checkpoint as saved (``load_run_model`` has ``step`` and ``warn``),
    on the default device."""
    import jax

    from jaxrap.checkpoint import Checkpoints
    from jaxrap.model import lm, lora
    from jaxrap.model.partition import partition
    from jaxrap.model.registry import read_config

    run = _checked(RunDir(Path(run_dir)))
    say = warn or (lambda text: print(text, file=sys.stderr))
    config = read_config(run.model_config_file)
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

    def restore(checkpoints: Checkpoints, step: int) -> RunParams:
        record = checkpoints.restore_meta(step).get("model", {}).get("lora")
        if not record:
            return RunParams(step, checkpoints.restore_params(step, on_device(lm.abstract(config)[1])))
        spec = lora.LoraSpec.from_record(config, record)
        trainable = partition(lora.abstract(config, spec)[1], lora.is_trainable)[0]
        params = checkpoints.restore_params(step, on_device(trainable))
        return RunParams(step, params, spec, record["base"], record["base_fingerprint"])

    def on_device(abstract: Any) -> Any:
        return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device), abstract)

    with Checkpoints(run.checkpoints_dir, read_only=True) as checkpoints:
        steps = checkpoints.steps()
        if not steps:
            raise JaxrapError(f"{run.checkpoints_dir}: no checkpoints yet; wait for train.save_every steps or the end of training")
        if step == "best":
            step = checkpoints.best_step()
            if step is None:
                raise JaxrapError(f"{run.checkpoints_dir}: no kept checkpoint was evaluated, so none is best; pass a step")
        if step is not None and int(step) not in steps:
            raise JaxrapError(f"{run.checkpoints_dir}: no checkpoint {step}; available: {', '.join(map(str, steps))}")
        restored = checkpoints.restore_newest_valid(
            lambda s: restore(checkpoints, s), warn=say, steps=[int(step)] if step is not None else None
        )
    assert restored is not None  # steps is not empty: a step restored, or restore_newest_valid raised
    return restored[1]


def load_lora_base(config: LMConfig, saved: RunParams, *, seed: int) -> Any:
    """A LoRA run's frozen base as it trained on (float32 host arrays, the embedding and untied
    head grown for the run's new tokens as training grew them), refused in one line when
    ``model.init`` no longer holds the base the adapters were trained on."""
    from jaxrap.model import hf, lora
    from jaxrap.model.embeddings import grow_as_loaded

    assert saved.lora is not None and saved.base is not None
    model_dir = hf.resolve_model_dir(saved.base)
    fingerprint = lora.checkpoint_fingerprint(model_dir)
    if fingerprint != saved.base_fingerprint:
        raise JaxrapError(
            f"checkpoint {saved.step}'s adapters were trained on {saved.base} with fingerprint {saved.base_fingerprint},"
            f" but {model_dir} now holds a model with fingerprint {fingerprint} (another config or other tensors);"
            " put the base back, or export the run with the base it was trained on"
        )
    adapt = grow_as_loaded(config, saved.lora.new_ids, seed=seed) if saved.lora.new_ids else None
    return hf.load_pretrained(model_dir, adapt=adapt)[1]


def _checked(run: RunDir) -> RunDir:
    if not is_run_dir(run.path):
        raise JaxrapError(
            f"{run.path}: not a training run directory (no {CONFIG_FILE} and {CHECKPOINTS_DIR}/); train one with `jaxrap train`"
        )
    return run
