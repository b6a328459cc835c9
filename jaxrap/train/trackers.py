"""Where a run's numbers go: a small Tracker protocol (as in Levanter) and its implementations.

The loop calls ``log(step, metrics)`` on logged steps only (one host sync per log, never one
per step) and ``message(text)`` for events (resumed, saved, stopped). Metric names:
``loss``, ``lr``, ``grad_norm``, ``tokens_per_s``, ``mfu`` on train records, plus
``eval_loss`` and ``eval_perplexity`` on the steps that evaluated.

- ``ConsoleTracker``: a rich progress bar with loss and tokens/s on a terminal, plain lines
  otherwise (CI logs, pipes).
- ``TensorBoardTracker``: event files in the run directory, written with TensorBoard's own
  numpy-only writer (no TensorFlow).
- ``JsonlTracker``: ``metrics.jsonl``, one JSON record per logged step, appended across resumes.
- ``MemoryTracker`` for tests and ``CallbackTracker`` for a UI.

The loop talks to one ``CompositeTracker``, which passes every call on to the run's trackers.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from tensorboard.summary import Writer

Metrics = dict[str, float]

# TensorBoard tag of each metric; eval metrics get their own section.
_TB_TAGS = {
    "loss": "train/loss", "lr": "train/learning_rate", "grad_norm": "train/grad_norm",
    "tokens_per_s": "train/tokens_per_s", "mfu": "train/mfu",
    "eval_loss": "eval/loss", "eval_perplexity": "eval/perplexity",
}


class Tracker(Protocol):
    def start(self, start_step: int, total_steps: int) -> None:
        """The run begins (or resumes) after ``start_step`` updates, and ends at ``total_steps``."""

    def log(self, step: int, metrics: Metrics) -> None:
        """Metrics after update ``step`` (1-based)."""

    def message(self, text: str) -> None:
        """A one-line event for the user."""

    def finish(self) -> None:
        """The run ended (normally or not): flush and close."""


class CompositeTracker:
    """Several trackers as one: every call goes to each of them, in order."""

    def __init__(self, trackers: Sequence[Tracker]):
        self.trackers = list(trackers)

    def start(self, start_step: int, total_steps: int) -> None:
        for tracker in self.trackers:
            tracker.start(start_step, total_steps)

    def log(self, step: int, metrics: Metrics) -> None:
        for tracker in self.trackers:
            tracker.log(step, metrics)

    def message(self, text: str) -> None:
        for tracker in self.trackers:
            tracker.message(text)

    def finish(self) -> None:
        for tracker in self.trackers:
            tracker.finish()


class ConsoleTracker:
    def __init__(self, console: Console | None = None):
        from rich.console import Console

        self.console = console or Console(stderr=False)
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def start(self, start_step: int, total_steps: int) -> None:
        if not self.console.is_terminal:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(), console=self.console,
        )
        self._task = self._progress.add_task("train", total=total_steps, completed=start_step, stats="")
        self._progress.start()

    def log(self, step: int, metrics: Metrics) -> None:
        stats = _format(metrics)
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=step, stats=stats)
            if "eval_loss" in metrics:
                self._progress.console.print(f"step {step}: {_format_eval(metrics)}")
        else:
            self.console.print(f"step {step}: {stats}", highlight=False, soft_wrap=True)

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _format(metrics: Metrics) -> str:
    parts = []
    if "loss" in metrics:
        parts.append(f"loss {metrics['loss']:.4f}")
    if "lr" in metrics:
        parts.append(f"lr {metrics['lr']:.2e}")
    if "tokens_per_s" in metrics:
        parts.append(f"{metrics['tokens_per_s']:,.0f} tok/s")
    if "mfu" in metrics:
        parts.append(f"MFU {metrics['mfu']:.1%}")
    if "eval_loss" in metrics:
        parts.append(_format_eval(metrics))
    return "  ".join(parts)


def _format_eval(metrics: Metrics) -> str:
    return f"eval loss {metrics['eval_loss']:.4f} (perplexity {metrics['eval_perplexity']:.2f})"


class TensorBoardTracker:
    def __init__(self, log_dir: str | Path):
        self.log_dir = Path(log_dir)
        self._writer: Writer | None = None

    def start(self, start_step: int, total_steps: int) -> None:
        from tensorboard.summary import Writer  # numpy-only writer: no TensorFlow needed

        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writer = Writer(str(self.log_dir))

    def log(self, step: int, metrics: Metrics) -> None:
        assert self._writer is not None, "log() before start()"
        for name, value in metrics.items():
            if name in _TB_TAGS and math.isfinite(value):
                self._writer.add_scalar(_TB_TAGS[name], value, step)
        self._writer.flush()

    def message(self, text: str) -> None:
        pass

    def finish(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class JsonlTracker:
    """``metrics.jsonl``: ``{"step": 10, "loss": ..., "time": ...}`` per logged step.

    On resume from step ``s``, records after ``s`` (logged by the interrupted run after its last
    checkpoint, about to be logged again) are dropped first, so no step appears twice.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file: TextIO | None = None

    def start(self, start_step: int, total_steps: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            kept = [line for line in self.path.read_text(encoding="utf-8").splitlines() if _record_step(line) <= start_step]
            # Written beside, then renamed over the old file: a kill mid-write (a preemption
            # right after a resume) leaves the old records whole instead of a truncated file.
            rewritten = self.path.with_name(f"{self.path.name}.tmp")
            rewritten.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
            rewritten.replace(self.path)
        self._file = self.path.open("a", encoding="utf-8")

    def log(self, step: int, metrics: Metrics) -> None:
        assert self._file is not None, "log() before start()"
        record = {"step": step, **{k: _json_number(v) for k, v in metrics.items()}, "time": round(time.time(), 3)}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def message(self, text: str) -> None:
        pass

    def finish(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _record_step(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf  # a torn last line from a killed run: drop it


def _json_number(value: float) -> float | str:
    # JSON has no NaN/inf; write them as strings so the file stays valid JSON per line.
    return value if math.isfinite(value) else str(value)


class MemoryTracker:
    """Keeps everything in lists, for tests."""

    def __init__(self):
        self.records: list[tuple[int, Metrics]] = []
        self.messages: list[str] = []
        self.started: tuple[int, int] | None = None
        self.finished = False

    def start(self, start_step: int, total_steps: int) -> None:
        self.started = (start_step, total_steps)

    def log(self, step: int, metrics: Metrics) -> None:
        self.records.append((step, dict(metrics)))

    def message(self, text: str) -> None:
        self.messages.append(text)

    def finish(self) -> None:
        self.finished = True


class CallbackTracker:
    """Forwards logs and messages to callables, e.g. a UI's thread-safe ``post_message``."""

    def __init__(self, on_log: Callable[[int, Metrics], None], on_message: Callable[[str], None] | None = None):
        self.on_log = on_log
        self.on_message = on_message

    def start(self, start_step: int, total_steps: int) -> None:
        pass

    def log(self, step: int, metrics: Metrics) -> None:
        self.on_log(step, metrics)

    def message(self, text: str) -> None:
        if self.on_message is not None:
            self.on_message(text)

    def finish(self) -> None:
        pass
