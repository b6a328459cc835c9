"""`jaxrap train` and `jaxrap export` from the command line: errors, a real SIGTERM, the HF export."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from invented_lyrics import invented_song

from jaxrap.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.steps=-3"], "train.steps: must be > 0, got -3"),
        (["optim.lr=fast"], "optim.lr: must be a number, got 'fast'"),
        (["train.batch_size=8"], "train.batch_size: unknown key"),
        (["trainsteps"], "expected section.key=value"),
    ],
)
def test_bad_config_values_exit_2_with_the_key_named(overrides, message, tmp_path, capsys):
    argv = ["train", "--config", str(CONFIGS / "tiny_cpu.yaml"), "--run-dir", str(tmp_path / "run")]
    for override in overrides:
        argv += ["--set", override]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("jaxrap: error: ") and message in error
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_a_mesh_that_does_not_fit_is_refused_before_any_work(tmp_path, capsys):
    """The session has 4 devices: mesh.data=3 cannot cover them. Refused before the corpus is
    prepared (from a CSV that would be read) and before anything is written in the run directory."""
    _write_csv(tmp_path / "lyrics.csv")
    argv = ["train", "--config", str(CONFIGS / "tiny_cpu.yaml"), "--run-dir", str(tmp_path / "run"),
            "--source", str(tmp_path / "lyrics.csv"), "--set", f"data.path={tmp_path / 'corpus'}", "--set", "mesh.data=3"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "jaxrap: error: mesh.data (3) x mesh.fsdp (1) must equal the number of devices (4)" in captured.err
    assert "preparing" not in captured.out
    assert not (tmp_path / "corpus").exists() and not (tmp_path / "run").exists()


def test_train_needs_a_config_or_a_run_to_resume(tmp_path, capsys):
    assert main(["train", "--run-dir", str(tmp_path)]) == 2
    assert "pass --config FILE" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "no such config file" in capsys.readouterr().err


def test_export_refuses_a_non_run_and_a_non_empty_out(tmp_path, capsys):
    assert main(["export", "--run-dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "out")]) == 2
    assert "not a training run directory" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    assert main(["export", "--run-dir", str(tmp_path), "--out", str(tmp_path / "full")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err


def _write_csv(path: Path) -> None:
    """Invented songs in the FrenchRapLyricsAnalyzer columns: 2 artists x 12 songs."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Year", "Song Title", "Artist", "Lyrics", "Number of featured artists", "Featured artists"])
        for seed in range(24):
            writer.writerow([2000 + seed % 20, f"Titre {seed}", f"MC {seed % 2}", invented_song(seed), 0, ""])


def _metrics_lines(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory, subprocess_compilation_cache):
    """`jaxrap train` from a raw CSV, SIGTERMed after a few steps, then rerun to resume (loading
    the first run's compiled programs from the persistent cache)."""
    root = tmp_path_factory.mktemp("cli_train")
    _write_csv(root / "lyrics.csv")
    config = root / "run.yaml"
    config.write_text(
        "model:\n  shape: {n_layer: 1, n_head: 2, n_embd: 16, n_positions: 32, dropout: 0.0}\n"
        f"data: {{path: {root / 'corpus'}, block_size: 32, vocab_size: 300}}\n"
        "train: {steps: 5000, per_device_batch_size: 2, log_every: 1, eval_every: 5000, save_every: 5000}\n"
    )
    run_dir = root / "run"
    command = [sys.executable, "-m", "jaxrap", "train", "--config", str(config), "--run-dir", str(run_dir)]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1", **subprocess_compilation_cache}
    process = subprocess.Popen([*command, "--source", str(root / "lyrics.csv")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while _metrics_lines(run_dir) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    stopped_output = process.communicate(timeout=120)[0]
    stopped_lines = _metrics_lines(run_dir)
    resumed = subprocess.run([*command, "--set", f"train.steps={stopped_lines + 3}"], env=env,
                             capture_output=True, text=True, timeout=240)
    return {"root": root, "run_dir": run_dir, "returncode": process.returncode, "output": stopped_output,
            "stopped_at": stopped_lines, "resumed": resumed}


@pytest.mark.slow
def test_sigterm_saves_and_exits_0_then_the_rerun_resumes(stopped_run):
    output, stopped_at = stopped_run["output"], stopped_run["stopped_at"]
    assert stopped_run["returncode"] == 0, output[-3000:]
    assert "holds no prepared corpus; preparing it from" in output and "prepared 24 songs" in output
    assert f"stopped by SIGTERM after step {stopped_at}; saved checkpoint {stopped_at}" in output
    assert (stopped_run["run_dir"] / "checkpoints" / str(stopped_at)).is_dir()

    resumed = stopped_run["resumed"]
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"resumed from checkpoint {stopped_at}" in resumed.stdout
    assert "holds no prepared corpus" not in resumed.stdout and "training a" not in resumed.stdout
    assert "validation loss" in resumed.stdout and f"at step {stopped_at + 3}" in resumed.stdout
    assert f"--- sample 3 (step {stopped_at + 3}) ---" in resumed.stdout  # bars from the trained model
    assert "--- sample" not in output  # a stopped run saves and exits without sampling
    assert _metrics_lines(stopped_run["run_dir"]) == stopped_at + 3


@pytest.mark.slow
def test_a_rerun_skips_a_newest_checkpoint_that_reads_back_other_values(stopped_run, tmp_path, subprocess_compilation_cache):
    """The fault as a user met it: files of the newest checkpoint that still decode, to other
    values. `jaxrap train` run again says which array differs, resumes from the one before and
    moves the damaged one aside; nothing else on its output, no traceback."""
    import shutil

    from checkpoint_damage import change_one_value

    stopped_at, run_dir = stopped_run["stopped_at"], tmp_path / "run"
    shutil.copytree(stopped_run["run_dir"], run_dir)
    newest = stopped_at + 3
    name = change_one_value(run_dir / "checkpoints" / str(newest) / "params")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1", **subprocess_compilation_cache}
    command = [sys.executable, "-m", "jaxrap", "train", "--run-dir", str(run_dir), "--set", f"train.steps={newest + 1}",
               "--samples", "0"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert f"warning: checkpoint {newest} in" in output and "unreadable (DamagedCheckpoint: params[" in output
    assert f"{name}']: values differ from the checksums saved with them); trying the one before" in output
    assert f"warning: moved unreadable checkpoint {newest} to" in output
    assert f"resumed from checkpoint {stopped_at} in" in output and f"at step {newest + 1}" in output
    assert "Traceback" not in output and result.stderr == "", result.stderr[-3000:]


@pytest.mark.slow
def test_export_writes_what_transformers_loads(stopped_run, capsys):
    import jax
    import torch
    import transformers

    from jaxrap.model import gpt2
    from jaxrap.rundir import load_run_model

    out = stopped_run["root"] / "exported"
    assert main(["export", "--run-dir", str(stopped_run["run_dir"]), "--out", str(out)]) == 0
    assert "exported step" in capsys.readouterr().out
    ours = load_run_model(stopped_run["run_dir"])
    model = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    ids = tokenizer("J'avance dans le quartier\nla nuit")["input_ids"]
    assert tokenizer.decode(ids) == "J'avance dans le quartier\nla nuit"
    with torch.no_grad():
        expected = model(torch.tensor([ids])).logits.numpy()
    graphdef, _ = gpt2.abstract(ours.config)
    logits = jax.jit(lambda params, x: gpt2.forward(graphdef, params, x)[0])(ours.params, np.array([ids], np.int32))
    np.testing.assert_allclose(np.asarray(logits), expected, atol=1e-4)


# XLA aborts a collective that waits past this many seconds (its default is 40): a run that
# deadlocks fails in a minute instead of hanging the suite.
_COLLECTIVE_TIMEOUT_FLAGS = "--xla_cpu_collective_call_terminate_timeout_seconds=20 --xla_cpu_collective_call_warn_stuck_timeout_seconds=10"


@pytest.mark.slow
def test_four_devices_train_save_and_evaluate_through_the_cli_every_time(real_corpus_dir, tmp_path, subprocess_compilation_cache):
    """Issue 17's hang, as a user met it: `jaxrap train` on 4 devices of a 2-core CPU, on the real
    corpus, with saves and evaluations during the run. The evaluation dispatched one collective
    program per validation batch without waiting (73 batches here), and once a device had 32
    queued, XLA:CPU deadlocked in the all-reduce and aborted the process (exit 134) in about
    half the runs: three runs in a row must all finish. The existing 4-device tests evaluated 6
    songs (a few batches) and logged every step, so they never ran far enough ahead. The second
    and third runs load the first one's compiled programs from the persistent cache: the hang
    was in running them, not in compiling them."""
    env = {**os.environ, "XLA_FLAGS": f"{os.environ['XLA_FLAGS']} {_COLLECTIVE_TIMEOUT_FLAGS}", **subprocess_compilation_cache}
    overrides = [
        f"data.path={real_corpus_dir}", "data.vocab_size=512", "data.block_size=128",
        "model.shape.n_layer=2", "model.shape.n_embd=128", "model.shape.n_positions=128",
        "train.steps=12", "train.save_every=4", "train.eval_every=6", "train.log_every=12",
        "train.per_device_batch_size=2", "train.eval_batch_size=4",
    ]
    command = [sys.executable, "-m", "jaxrap", "train", "--config", str(CONFIGS / "tiny_cpu.yaml"), "--samples", "0"]
    for override in overrides:
        command += ["--set", override]
    for attempt in range(3):
        run_dir = tmp_path / f"run{attempt}"
        result = subprocess.run([*command, "--run-dir", str(run_dir)], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"attempt {attempt + 1}: exit {result.returncode}\n{result.stderr[-3000:]}"
        assert "rendezvous" not in result.stderr
        evaluated = [record for record in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if "eval_loss" in record]
        assert [record["step"] for record in evaluated] == [6, 12]
        assert sorted(int(path.name) for path in (run_dir / "checkpoints").iterdir()) == [8, 12]
