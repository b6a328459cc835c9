"""Trackers: TensorBoard events readable without TensorFlow, metrics.jsonl, console lines."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from jaxrap.train.trackers import CallbackTracker, ConsoleTracker, JsonlTracker, TensorBoardTracker

TRAIN = {"loss": 2.5, "lr": 1e-3, "grad_norm": 0.7, "tokens_per_s": 2800.0, "mfu": 0.41}
EVAL = {**TRAIN, "eval_loss": 2.25, "eval_perplexity": 9.4877}


def test_tensorboard_event_files_hold_every_scalar(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tracker = TensorBoardTracker(tmp_path / "tb")
    tracker.start(0, 20)
    tracker.log(10, TRAIN)
    tracker.log(20, EVAL)
    tracker.finish()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["tensors"])
    assert tags == {"train/loss", "train/learning_rate", "train/grad_norm", "train/tokens_per_s", "train/mfu",
                    "eval/loss", "eval/perplexity"}
    loss = [(e.step, float(e.tensor_proto.float_val[0])) for e in events.Tensors("train/loss")]
    assert loss == [(10, 2.5), (20, 2.5)]
    assert [e.step for e in events.Tensors("eval/perplexity")] == [20]


def _logged(path: Path, steps: tuple[int, ...]) -> Path:
    """metrics.jsonl as a run that logged ``steps`` left it."""
    tracker = JsonlTracker(path)
    tracker.start(0, steps[-1])
    for step in steps:
        tracker.log(step, TRAIN)
    tracker.finish()
    return path


def test_jsonl_appends_and_drops_steps_a_resume_will_redo(tmp_path):
    path = _logged(tmp_path / "metrics.jsonl", steps=(10, 20, 30))
    with path.open("a") as handle:
        handle.write('{"step": 40, "lo')  # a torn line from a killed run

    resumed = JsonlTracker(path)
    resumed.start(20, 40)  # resumed from checkpoint 20: steps 30 and 40 come again
    resumed.log(30, {**EVAL, "loss": float("nan")})
    resumed.finish()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30]
    assert records[0]["loss"] == 2.5 and "time" in records[0]
    assert records[2]["loss"] == "nan" and records[2]["eval_perplexity"] == EVAL["eval_perplexity"]


def test_a_kill_while_jsonl_drops_the_redone_steps_keeps_the_records(tmp_path, monkeypatch):
    """Dropping the steps a resume redoes rewrites metrics.jsonl: a process killed in the middle
    of that write must leave the records as they were, not a truncated file."""
    path = _logged(tmp_path / "metrics.jsonl", steps=(10, 20, 30))
    before = path.read_text()

    def killed_halfway(self, text, *args, **kwargs):
        with open(self, "w", encoding="utf-8") as handle:
            handle.write(text[: len(text) // 2])
        raise SystemExit("killed")  # as SIGKILL would stop it, mid-write

    monkeypatch.setattr(Path, "write_text", killed_halfway)
    with pytest.raises(SystemExit):
        JsonlTracker(path).start(10, 40)
    assert path.read_text() == before


def test_console_prints_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    tracker = ConsoleTracker(Console(file=out, force_terminal=False, width=200))
    tracker.start(0, 20)
    tracker.log(10, TRAIN)
    tracker.log(20, EVAL)
    tracker.message("saved")
    tracker.finish()
    lines = out.getvalue().splitlines()
    assert lines[0] == "step 10: loss 2.5000  lr 1.00e-03  2,800 tok/s  MFU 41.0%"
    assert lines[1].endswith("eval loss 2.2500 (perplexity 9.49)")
    assert lines[2] == "saved"


def test_callback_tracker_forwards_logs_and_messages():
    logs, messages = [], []
    tracker = CallbackTracker(lambda step, metrics: logs.append((step, metrics)), messages.append)
    tracker.log(5, TRAIN)
    tracker.message("resumed")
    assert logs == [(5, TRAIN)] and messages == ["resumed"]
