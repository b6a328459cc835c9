"""A kill -9 anywhere in a checkpoint save: the rerun resumes and ends with the losses of an
uninterrupted run.

`jaxrap train` runs in a subprocess that SIGKILLs itself at a chosen point of step 6's save
(tests/kill_during_save.py: while arrays are written, before the temporary directory is
renamed, right after, or while the checkpoint it replaces is deleted); the same command then
runs again. Nothing is cleaned up by hand in between, and the second run must not be refused
by the first one's lock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kill_during_save import KILL_POINTS

pytestmark = pytest.mark.slow
TIMEOUT_S = 300
STEPS, KILLED_SAVE = 10, 6  # saves at 3, 6, 9 and 10; keeping one, step 6's save deletes 3
RESUMED_FROM = {"arrays": 3, "before_rename": 3, "after_rename": 6, "pruning": 6}


def _env(compilation_cache: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
        "JAX_PLATFORMS": "cpu",
        **compilation_cache,
    }


def _command(config: Path, run_dir: Path, *before: str) -> list[str]:
    argv = ["train", "--config", str(config), "--run-dir", str(run_dir), "--samples", "0"]
    return [sys.executable, *before, *argv] if before else [sys.executable, "-m", "jaxrap", *argv]


def _run_all(commands: dict[str, list[str]], env: dict[str, str]) -> dict[str, tuple[int, str]]:
    """(exit status, output) of each command, all run at once (each is mostly jax's start-up)."""
    processes = {
        name: subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, command in commands.items()
    }
    outputs = {name: process.communicate(timeout=TIMEOUT_S)[0] for name, process in processes.items()}
    return {name: (process.returncode, outputs[name]) for name, process in processes.items()}


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tiny_corpus_dir, tiny_tokenizer_dir, tmp_path_factory, subprocess_compilation_cache) -> dict:
    """Each kill point's run killed, what it left, and its rerun; and the uninterrupted run.

    The uninterrupted run goes first and alone: the 8 processes after it load its compiled
    programs (the memory plan's probes, the step, the evaluation) from the persistent cache."""
    root = tmp_path_factory.mktemp("kill")
    config = root / "run.yaml"
    config.write_text(
        f"model:\n  tokenizer: {tiny_tokenizer_dir}\n"
        "  shape: {n_layer: 1, n_head: 2, n_embd: 16, n_positions: 16, dropout: 0.1}\n"
        f"data: {{path: {tiny_corpus_dir}, block_size: 16}}\n"
        f"train: {{steps: {STEPS}, per_device_batch_size: 2, log_every: 1, eval_every: 100, save_every: 3,"
        " keep_checkpoints: 1}\n"
        "optim: {lr: 3.0e-3, warmup_steps: 2}\n"
    )
    helper = str(Path(__file__).with_name("kill_during_save.py"))
    env = _env(subprocess_compilation_cache)
    killed = _run_all({"uninterrupted": _command(config, root / "uninterrupted")}, env)
    killed |= _run_all({point: _command(config, root / point, helper, point, str(KILLED_SAVE)) for point in KILL_POINTS}, env)
    left = {point: sorted(path.name for path in (root / point / "checkpoints").iterdir()) for point in KILL_POINTS}
    resumed = _run_all({point: _command(config, root / point) for point in KILL_POINTS}, env)
    return {"root": root, "killed": killed, "left": left, "resumed": resumed}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_kill_anywhere_in_a_save_resumes_to_the_losses_of_an_uninterrupted_run(point, runs):
    returncode, output = runs["killed"]["uninterrupted"]
    assert returncode == 0, output[-3000:]
    uninterrupted = _records(runs["root"] / "uninterrupted")

    returncode, output = runs["killed"][point]
    assert returncode == -signal.SIGKILL, output[-3000:]
    left = runs["left"][point]
    if RESUMED_FROM[point] == 3:  # step 6 never became a checkpoint: only its temporary directory
        assert "6" not in left and any(name.startswith("6.orbax-checkpoint-tmp") for name in left), left
    else:  # step 6 is whole; step 3 not yet (after_rename) or half (pruning) deleted
        assert "6" in left and "3" in left, left

    returncode, output = runs["resumed"][point]
    assert returncode == 0, output[-3000:]
    assert f"resumed from checkpoint {RESUMED_FROM[point]}" in output
    run_dir = runs["root"] / point
    records = _records(run_dir)
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    for record, reference in zip(records, uninterrupted):
        assert (record["loss"], record["grad_norm"]) == (reference["loss"], reference["grad_norm"]), record["step"]
    assert records[-1]["eval_loss"] == uninterrupted[-1]["eval_loss"]
    assert sorted(path.name for path in (run_dir / "checkpoints").iterdir()) == [str(STEPS)]  # nothing partial left


@pytest.mark.parametrize(
    "coroutine", ["_read_array_index_and_device_put", "async_deserialize", "Store._get_array_metadatas"]
)
def test_orbax_reads_left_unawaited_after_a_failed_restore_are_not_shown(coroutine, monkeypatch):
    import warnings

    from jaxrap import checkpoint

    # Python's own hook, so that the hooks go in here whatever an earlier test installed; the hook
    # and the warning filters are restored after the test.
    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)
    with warnings.catch_warnings():
        checkpoint._drop_closed_loop_callbacks()  # an earlier restore
        with warnings.catch_warnings(record=True) as shown:
            warnings.resetwarnings()  # as pytest resets them between tests; the hooks stay
            warnings.simplefilter("always")
            checkpoint._drop_closed_loop_callbacks()  # the next restore
            warnings.warn(f"coroutine '{coroutine}' was never awaited", RuntimeWarning, stacklevel=1)
            warnings.warn("coroutine 'someone_elses' was never awaited", RuntimeWarning, stacklevel=1)
    assert [str(warning.message) for warning in shown] == ["coroutine 'someone_elses' was never awaited"]
