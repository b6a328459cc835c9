"""Exact resume: a run stopped by SIGTERM halfway, then resumed, equals an uninterrupted run.

The stop is a real SIGTERM delivered to this process (from a tracker callback at a known
step), so it goes through the loop's signal handler exactly as a TPU preemption would. The
latest checkpoint of the stopped run is then damaged, so the resume must also fall back to
the one before it with a warning.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import jax
import numpy as np
import pytest
from checkpoint_damage import change_one_value, zero_data_files

from jaxrap.checkpoint import Checkpoints
from jaxrap.config import MeshConfig, load_config
from jaxrap.errors import JaxrapError
from jaxrap.load import SkippedCheckpointWarning, load_model
from jaxrap.rundir import RunDir, load_run_model
from jaxrap.sharding import make_mesh
from jaxrap.train.pipeline import run_training
from jaxrap.train.trackers import CallbackTracker, JsonlTracker, MemoryTracker

STEPS = 12


def _config(corpus: Path, tokenizer: Path, *overrides: str):
    return load_config(None, [
        f"data.path={corpus}", f"model.tokenizer={tokenizer}", "data.block_size=16",
        "model.shape.n_layer=1", "model.shape.n_head=2", "model.shape.n_embd=16", "model.shape.n_positions=16",
        "model.shape.dropout=0.1",  # dropout on: the resumed run must replay the same RNG keys
        "train.per_device_batch_size=2", "train.grad_accum_steps=2", f"train.steps={STEPS}",
        "train.log_every=1", "train.eval_every=6", "train.save_every=4", "train.keep_checkpoints=2",
        "optim.lr=3e-3", "optim.warmup_steps=2", *overrides,
    ])


def _train(config, run: RunDir, *trackers, mesh=None):
    memory = MemoryTracker()
    result = run_training(
        config, run.path, trackers=[memory, JsonlTracker(run.metrics_file), *trackers],
        say=memory.messages.append, mesh=mesh or make_mesh(MeshConfig(), jax.devices()[:1]),
    )
    return result, memory


def _damage(step_dir: Path) -> None:
    """Overwrite the params item's data files, as a disk error or a half-copied directory would."""
    zero_data_files(step_dir / "params")


@pytest.fixture(scope="module")
def runs(tiny_corpus_dir, tiny_tokenizer_dir, tmp_path_factory):
    config = _config(tiny_corpus_dir, tiny_tokenizer_dir)
    root = tmp_path_factory.mktemp("resume")
    whole, stopped = RunDir(root / "whole"), RunDir(root / "stopped")

    whole_result, whole_log = _train(config, whole)

    def terminate_at_half(step, metrics):
        if step == STEPS // 2:
            os.kill(os.getpid(), signal.SIGTERM)

    stop_result, stop_log = _train(config, stopped, CallbackTracker(terminate_at_half))
    with Checkpoints(stopped.checkpoints_dir, read_only=True) as checkpoints:
        saved_at_stop = checkpoints.steps()
    _damage(stopped.checkpoints_dir / str(stop_result.step))
    resume_result, resume_log = _train(config, stopped)
    return {
        "config": config, "whole": whole, "stopped": stopped, "whole_result": whole_result, "whole_log": whole_log,
        "stop_result": stop_result, "stop_log": stop_log, "saved_at_stop": saved_at_stop,
        "resume_result": resume_result, "resume_log": resume_log,
    }


def test_sigterm_finishes_the_step_saves_and_returns(runs):
    result, log = runs["stop_result"], runs["stop_log"]
    assert result.stopped_by == "SIGTERM"
    assert result.step == STEPS // 2 + 1  # the signal came during step 6's log; step 7 completes
    assert result.step in runs["saved_at_stop"]
    assert any("stopped by SIGTERM after step 7" in text and "resume" in text for text in log.messages)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is gone afterwards


def test_resume_falls_back_past_a_damaged_latest_checkpoint(runs):
    messages = runs["resume_log"].messages
    assert any(f"checkpoint {runs['stop_result'].step}" in text and "unreadable" in text for text in messages)
    assert "resumed from checkpoint 6" in " ".join(messages)
    assert runs["resume_log"].started == (6, STEPS)


def test_resumed_run_equals_the_uninterrupted_one(runs):
    whole = dict(runs["whole_log"].records)
    stopped = dict(runs["stop_log"].records)
    resumed = dict(runs["resume_log"].records)
    assert sorted(whole) == list(range(1, STEPS + 1))
    assert sorted(resumed) == list(range(7, STEPS + 1))
    for step in range(1, STEPS + 1):
        replay = resumed[step] if step in resumed else stopped[step]
        assert replay["loss"] == whole[step]["loss"], step  # bit-identical, dropout included
        assert replay["grad_norm"] == whole[step]["grad_norm"], step
    assert resumed[STEPS]["eval_loss"] == whole[STEPS]["eval_loss"]
    assert runs["resume_result"].eval_loss == runs["whole_result"].eval_loss

    whole_model, resumed_model = load_run_model(runs["whole"].path), load_run_model(runs["stopped"].path)
    assert whole_model.step == resumed_model.step == STEPS
    jax.tree.map(np.testing.assert_array_equal, resumed_model.params, whole_model.params)


def test_metrics_jsonl_is_appended_without_duplicate_steps(runs):
    def read(run):
        return [json.loads(line) for line in run.metrics_file.read_text().splitlines()]

    whole, stopped = read(runs["whole"]), read(runs["stopped"])
    assert [r["step"] for r in stopped] == list(range(1, STEPS + 1))  # steps 7.. of the stopped run were dropped
    assert [r["loss"] for r in stopped] == [r["loss"] for r in whole]
    evaluated = [r for r in stopped if "eval_loss" in r]
    assert [r["step"] for r in evaluated] == [6, 12]
    assert all(r["eval_perplexity"] == pytest.approx(np.exp(r["eval_loss"])) for r in evaluated)


def test_keeps_the_latest_and_the_best_checkpoint(runs):
    with Checkpoints(runs["whole"].checkpoints_dir, read_only=True) as checkpoints:
        steps, best_step = checkpoints.steps(), checkpoints.best_step()
    evaluated = {6: None, 12: None}
    for record in runs["whole_log"].records:
        if record[0] in evaluated:
            evaluated[record[0]] = record[1]["eval_loss"]
    best = min(evaluated, key=evaluated.get)
    assert steps == sorted({8, 12, best})  # keep_checkpoints=2 latest, plus the best evaluated
    assert best_step == best
    assert load_run_model(runs["whole"].path, step="best").step == best


def test_load_run_model_skips_a_damaged_latest_checkpoint(runs, tmp_path):
    import shutil

    copy = RunDir(tmp_path / "copy")
    shutil.copytree(runs["whole"].path, copy.path)
    _damage(copy.checkpoints_dir / str(STEPS))
    warnings = []
    model = load_run_model(copy.path, warn=warnings.append)
    assert model.step == 8 and len(warnings) == 1 and f"checkpoint {STEPS}" in warnings[0]
    assert (copy.checkpoints_dir / str(STEPS)).is_dir()  # a reader moves nothing
    with pytest.warns(SkippedCheckpointWarning, match=rf"^checkpoint {STEPS} in .* is unreadable .*; trying the one before$"):
        assert load_model(copy.path).step == 8  # what generate, eval and the terminal UI load through
    assert model.config.vocab_size == len(model.tokenizer)
    assert model.run_config == runs["config"]
    with pytest.raises(JaxrapError, match="no checkpoint 5"):
        load_run_model(copy.path, step=5)


def test_a_damaged_latest_checkpoint_is_moved_aside_and_saved_again(runs, tmp_path):
    """The fallback resumes from the step before; reaching the damaged step again must save it
    anew (Orbax refused: the step existed), with the damaged files kept under another name."""
    import shutil

    copy = RunDir(tmp_path / "copy")
    shutil.copytree(runs["whole"].path, copy.path)
    damaged = copy.checkpoints_dir / str(STEPS)
    _damage(damaged)
    damaged_files = sorted(path.relative_to(damaged) for path in damaged.rglob("*"))
    result, log = _train(runs["config"], copy)
    assert result.step == STEPS and log.started == (8, STEPS)
    (moved,) = [path for path in copy.checkpoints_dir.iterdir() if path.name.startswith(f"{STEPS}.unreadable-")]
    assert any(f"moved unreadable checkpoint {STEPS} to {moved}" in text for text in log.messages)
    assert sorted(path.relative_to(moved) for path in moved.rglob("*")) == damaged_files  # kept whole
    resumed, whole = load_run_model(copy.path), load_run_model(runs["whole"].path)
    assert resumed.step == STEPS
    jax.tree.map(np.testing.assert_array_equal, resumed.params, whole.params)
    assert dict(log.records)[STEPS]["loss"] == dict(runs["whole_log"].records)[STEPS]["loss"]


@pytest.mark.parametrize("item", ["params", "train_state"])
def test_a_checkpoint_that_reads_back_other_values_is_refused_like_an_unreadable_one(runs, tmp_path, item):
    """Files that still decode, to other values (a flipped bit, a bad copy): Orbax reads them
    without complaint, and training used to resume from them. The checksums saved with the
    checkpoint catch it; resuming falls back and ends equal to the uninterrupted run."""
    import shutil

    copy = RunDir(tmp_path / "copy")
    shutil.copytree(runs["whole"].path, copy.path)
    name = change_one_value(copy.checkpoints_dir / str(STEPS) / item)
    changed = re.compile(rf"\(DamagedCheckpoint: {item}\[\S*{name}\S*: values differ from the checksums saved with them\)")
    warnings = []
    model = load_run_model(copy.path, warn=warnings.append)  # reads params only
    if item == "params":
        assert model.step == 8 and len(warnings) == 1
        assert f"checkpoint {STEPS}" in warnings[0] and changed.search(warnings[0]), warnings[0]
    else:
        assert model.step == STEPS and warnings == []  # its params are intact

    result, log = _train(runs["config"], copy)
    assert log.started == (8, STEPS) and result.step == STEPS
    assert any(f"checkpoint {STEPS}" in text and changed.search(text) for text in log.messages), log.messages
    resumed, whole = load_run_model(copy.path), load_run_model(runs["whole"].path)
    jax.tree.map(np.testing.assert_array_equal, resumed.params, whole.params)


@pytest.mark.parametrize("saved_sums", ["none", "another algorithm"])
def test_checkpoints_without_checksums_of_this_algorithm_restore_unchecked(runs, tmp_path, saved_sums):
    """Runs saved before checkpoints recorded checksums resume and load as before, and checksums
    made another way (a jaxrap whose algorithm differs) are not taken for damage."""
    import shutil

    copy = RunDir(tmp_path / "copy")
    shutil.copytree(runs["whole"].path, copy.path)
    for meta_file in copy.checkpoints_dir.glob("*/meta/metadata"):
        meta = json.loads(meta_file.read_text())
        sums = meta.pop("checksums")
        assert len(sums["params"]) == len(jax.tree.leaves(load_run_model(runs["whole"].path).params))
        if saved_sums == "another algorithm":
            meta["checksums"] = {"algorithm": "another", **{name: ["0" * 8] * len(sums[name]) for name in ("params", "train_state")}}
        meta_file.write_text(json.dumps(meta))
    warnings = []
    assert load_run_model(copy.path, warn=warnings.append).step == STEPS and warnings == []
    result, log = _train(runs["config"].model_copy(update={"train": runs["config"].train.model_copy(update={"steps": STEPS + 1})}), copy)
    assert log.started == (STEPS, STEPS + 1) and not any("warning" in text for text in log.messages), log.messages


def test_a_changed_config_is_refused_on_resume(runs):
    other = runs["config"].model_copy(update={"optim": runs["config"].optim.model_copy(update={"lr": 1.0})})
    with pytest.raises(JaxrapError, match=r"optim.lr \(0.003 -> 1.0\)"):
        run_training(other, runs["whole"].path, trackers=[])


def test_nan_loss_stops_the_run_naming_the_step(tiny_corpus_dir, tiny_tokenizer_dir, tmp_path):
    config = _config(tiny_corpus_dir, tiny_tokenizer_dir, "optim.lr=1e12", "optim.clip_norm=null",
                     "optim.warmup_steps=0", "model.shape.dropout=0.0", "train.log_every=4")
    run = RunDir(tmp_path / "nan")
    with pytest.raises(JaxrapError, match=r"training loss is nan at step \d+; stopped without saving"):
        _train(config, run)
    with Checkpoints(run.checkpoints_dir, read_only=True) as checkpoints:
        assert checkpoints.steps() == []  # nothing non-finite was saved


def test_a_run_dir_without_checkpoints_is_rebuilt_from_the_new_config(tiny_corpus_dir, tiny_tokenizer_dir, tmp_path):
    """A first attempt that died before its first checkpoint must not leave its shape behind."""
    from jaxrap.model.config import GPT2Config
    from jaxrap.train.pipeline import ensure_tokenizer, model_from_config

    run = RunDir(tmp_path / "retry")
    first = _config(tiny_corpus_dir, tiny_tokenizer_dir)
    tokenizer = ensure_tokenizer(first, run, tiny_corpus_dir, print, reuse=False)
    run.model_config_file.write_text("{\"n_layer\": 7, \"n_embd\": 16, \"n_head\": 2}")  # the stale attempt
    retry = _config(tiny_corpus_dir, tiny_tokenizer_dir, "model.shape.n_layer=2")
    model_config, _ = model_from_config(retry, run, tokenizer, resuming=run.has_checkpoints())
    assert model_config.n_layer == 2 and model_config.vocab_size == len(tokenizer)
    assert model_config == GPT2Config(n_layer=2, n_head=2, n_embd=16, n_positions=16).for_tokenizer(tokenizer)


@pytest.mark.parametrize(("global_batch", "devices", "max_per_device", "layout"), [
    (8, 4, 2, (2, 1)),
    (8, 2, 2, (2, 2)),  # fewer devices: more micro-batches, never a larger per-device batch
    (8, 8, 2, (1, 1)),  # more devices: smaller per-device batches
    (12, 2, 4, (3, 2)),  # the largest per-device batch that divides a device's 6 rows
    (8, 3, 2, None),
])
def test_batch_layout_keeps_the_global_batch(global_batch, devices, max_per_device, layout):
    from jaxrap.train.loop import batch_layout

    assert batch_layout(global_batch, devices, max_per_device) == layout


def test_a_run_resumed_on_fewer_devices_keeps_its_global_batch(tiny_corpus_dir, tiny_tokenizer_dir, tmp_path):
    """4 devices x 2 sequences, stopped, resumed on 2 devices: 2 x 2 x 2 accumulation steps, so
    the updates and the data order are those of the uninterrupted 4-device run. Dropout is off:
    with accumulation the dropout keys of a micro-batch cover other rows (fold_in of the
    micro-batch index), so masks would differ; what remains is the order in which float32
    gradient sums add up over devices and micro-batches."""
    config = _config(tiny_corpus_dir, tiny_tokenizer_dir, "train.grad_accum_steps=1", "model.shape.dropout=0.0")
    four, two = make_mesh(MeshConfig(), jax.devices()), make_mesh(MeshConfig(), jax.devices()[:2])
    _, whole = _train(config, RunDir(tmp_path / "whole"), mesh=four)

    def terminate_at_half(step, metrics):
        if step == STEPS // 2:
            os.kill(os.getpid(), signal.SIGTERM)

    moved = RunDir(tmp_path / "moved")
    stopped_result, _ = _train(config, moved, CallbackTracker(terminate_at_half), mesh=four)
    result, resumed = _train(config, moved, mesh=two)
    assert result.step == STEPS
    assert any("the global batch stays 8 sequences as 2 per device x 2 devices x 2 accumulation steps" in text
               for text in resumed.messages)
    whole_records, resumed_records = dict(whole.records), dict(resumed.records)
    assert sorted(resumed_records) == list(range(stopped_result.step + 1, STEPS + 1))
    for step, record in resumed_records.items():
        np.testing.assert_allclose(record["loss"], whole_records[step]["loss"], rtol=1e-6, err_msg=f"step {step}")
    np.testing.assert_allclose(resumed_records[STEPS]["eval_loss"], whole_records[STEPS]["eval_loss"], rtol=1e-6)

    with pytest.raises(JaxrapError, match=r"global batch of 8 sequences, which 3 devices cannot split; .* \(1, 2, 4, 8\)"):
        _train(config.model_copy(update={"train": config.train.model_copy(update={"steps": STEPS + 2})}), moved,
               mesh=make_mesh(MeshConfig(), jax.devices()[:3]))
