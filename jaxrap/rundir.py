"""A training run's directory: its layout, and loading a trained model back from it.

```
RUN/
  config.yaml          the resolved run config (jaxrap.config.RunConfig)
  model_config.json    the GPT-2 shape, in Hugging Face config.json form
  tokenizer/           the tokenizer the run trains with (trained or copied here)
  checkpoints/<step>/  Orbax checkpoints: params, train_state, meta (see jaxrap.checkpoint)
  metrics.jsonl        one JSON record per logged step
  tensorboard/         TensorBoard event files
```

``generate``, ``eval``, ``export`` and the terminal UI load runs with ``load_run_model``.
Importing this module is cheap (no jax); loading imports it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from jaxrap.errors import JaxrapError

CONFIG_FILE = "config.yaml"
MODEL_CONFIG_FILE = "model_config.json"
TOKENIZER_DIR = "tokenizer"
CHECKPOINTS_DIR = "checkpoints"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


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

    def has_checkpoints(self) -> bool:
        """A finalized step directory exists (Orbax names them by the step number)."""
        return self.checkpoints_dir.is_dir() and any(p.name.isdigit() for p in self.checkpoints_dir.iterdir())


def is_run_dir(path: str | Path) -> bool:
    """``path`` looks like a training run (a config and a checkpoints directory)."""
    run = RunDir(Path(path))
    return run.config_file.is_file() and run.checkpoints_dir.is_dir()


class RunModel(NamedTuple):
    config: Any  # GPT2Config
    params: Any  # nested dict of float32 numpy arrays (host memory)
    tokenizer: Any  # PreTrainedTokenizerFast, loaded from RUN/tokenizer
    step: int  # the checkpoint's step
    run_config: Any  # RunConfig


def load_run_model(run_dir: str | Path, step: int | str | None = None, *, warn=None) -> RunModel:
    """The model of a run's checkpoint: ``step`` (an int, ``"best"`` by validation loss, or None
    for the newest readable one; an unreadable newest one is skipped with a warning)."""
    import jax

    from jaxrap.config import config_from_dict
    from jaxrap.data.tokenizer import load_tokenizer
    from jaxrap.model import gpt2
    from jaxrap.model.config import GPT2Config
    from jaxrap.checkpoint import Checkpoints

    run = RunDir(Path(run_dir))
    if not is_run_dir(run.path):
        raise JaxrapError(f"{run.path}: not a training run directory (no {CONFIG_FILE} and {CHECKPOINTS_DIR}/); train one with `jaxrap train`")
    warn = warn or (lambda text: print(text, file=sys.stderr))
    config = GPT2Config.from_file(run.model_config_file)
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    _, abstract = gpt2.abstract(config)
    target = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device), abstract)
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
        step, (params, meta) = checkpoints.restore_newest_valid(
            lambda s: checkpoints.restore_params(s, target), warn=warn, steps=[int(step)] if step is not None else None
        )
    return RunModel(
        config=config,
        params=jax.device_get(params),
        tokenizer=load_tokenizer(run.tokenizer_dir),
        step=step,
        run_config=config_from_dict(meta["config"], source=f"{run.checkpoints_dir}/{step}"),
    )
