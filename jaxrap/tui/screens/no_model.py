"""The screen shown without a usable model: what is missing, and how to get a model.

``model_problem`` checks a --model value with path tests only (no jax), so a missing or
wrong path is reported the moment the UI appears; problems found while loading (a run
without checkpoints yet, a hub id offline) land here too, as the loader's one-line message.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from jaxrap.hub import is_hub_id
from jaxrap.rundir import RunDir, is_run_dir

if TYPE_CHECKING:
    from jaxrap.tui.app import StudioApp

RUNS_DIR = Path("runs")  # where `jaxrap train` writes runs by default
HOW_TO_GET_A_MODEL = """\
A model is a training run directory, a Hugging Face GPT-2 directory (config.json and weights), \
or a Hugging Face hub id (needs the network once).

• Train the tiny default, a few minutes on a CPU:
    jaxrap train --config configs/tiny_cpu.yaml
  then start the studio on it:
    python tui.py --model runs/tiny_cpu

• Or point at a model you have:
    python tui.py --model path/to/model      (or: jaxrap tui --model path/to/model)

• Or type a path below and press Enter."""


def model_problem(model: str | None) -> str | None:
    """Why ``model`` cannot be a model, from the file system alone; None when it may be one."""
    if not model:
        return "No model given: start with --model DIR."
    path = Path(model).expanduser()
    if path.is_file():
        return f"{model}: is a file; pass the directory that holds it."
    if path.is_dir():
        run = RunDir(path)
        if is_run_dir(path):
            return None if run.has_checkpoints() else f"{model}: this training run has no checkpoint yet; wait for train.save_every steps."
        if (path / "config.json").is_file():
            return None
        return f"{model}: neither a training run (config.yaml + checkpoints/) nor a Hugging Face model (config.json)."
    if not is_hub_id(model):
        return f"{model}: no such directory."
    return None  # may be a hub id such as "gpt2" or "antoinelouis/belgpt2"


def trained_runs(runs_dir: Path = RUNS_DIR) -> list[Path]:
    """Run directories under ``runs_dir`` that have a checkpoint, newest first."""
    if not runs_dir.is_dir():
        return []
    runs = [path for path in runs_dir.iterdir() if is_run_dir(path) and RunDir(path).has_checkpoints()]
    return sorted(runs, key=lambda path: path.stat().st_mtime, reverse=True)


class NoModelScreen(Screen):
    def __init__(self, reason: str):
        super().__init__()
        self.reason = reason

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="no-model"):
            yield Static("No model to write with", classes="panel-title")
            yield Static(self.reason, id="no-model-reason")
            yield Static(HOW_TO_GET_A_MODEL, id="no-model-help")
            runs = trained_runs()
            if runs:
                yield Static("Trained runs here: " + ", ".join(str(run) for run in runs), id="no-model-runs")
            yield Input(
                str(runs[0]) if runs else "",
                placeholder="model directory, training run or hub id; Enter loads it",
                id="model-path",
            )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#model-path", Input).focus()

    @on(Input.Submitted, "#model-path")
    def open_model(self, event: Input.Submitted) -> None:
        model = event.value.strip()
        problem = model_problem(model)
        if problem is not None:
            self.query_one("#no-model-reason", Static).update(problem)
            return
        cast("StudioApp", self.app).open_model(model)
