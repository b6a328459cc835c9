"""Two `jax.distributed` processes on localhost train, checkpoint, and match one process.

Each process runs `jaxrap train --coordinator ...` with one CPU device (gloo collectives) and
feeds only its half of every global batch; the single-process reference has two devices, so
both see the same 2-device mesh and global batch.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.multiprocess
TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _command(config: Path, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "jaxrap", "train", "--config", str(config), "--run-dir", str(run_dir), *extra]


def _env(devices: int) -> dict[str, str]:
    return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}


def _losses(run_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_processes_train_checkpoint_and_match_one(tiny_corpus_dir, tiny_tokenizer_dir, tmp_path):
    config = tmp_path / "multihost.yaml"
    config.write_text(
        f"model:\n  tokenizer: {tiny_tokenizer_dir}\n"
        "  shape: {n_layer: 1, n_head: 2, n_embd: 16, n_positions: 16, dropout: 0.0}\n"
        f"data: {{path: {tiny_corpus_dir}, block_size: 16}}\n"
        "train: {steps: 6, per_device_batch_size: 2, log_every: 1, eval_every: 3, save_every: 3}\n"
        "optim: {lr: 3.0e-3, warmup_steps: 1}\n"
    )
    port = _free_port()
    multi = tmp_path / "multi"
    processes = [
        subprocess.Popen(
            _command(config, multi, "--coordinator", f"localhost:{port}", "--num-processes", "2", "--process-id", str(i)),
            env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for i in range(2)
    ]
    single = tmp_path / "single"
    reference = subprocess.run(_command(config, single, "--samples", "0"), env=_env(2), capture_output=True, text=True, timeout=TIMEOUT_S)
    outputs = [process.communicate(timeout=TIMEOUT_S)[0] for process in processes]
    for i, (process, output) in enumerate(zip(processes, outputs)):
        assert process.returncode == 0, f"process {i} failed:\n{output[-3000:]}"
    assert reference.returncode == 0, reference.stdout[-3000:] + reference.stderr[-3000:]

    assert "2 process(es), 2 cpu device(s)" in outputs[0]
    assert "step 1:" in outputs[0] and "loss" not in outputs[1]  # only process 0 reports
    assert "sample from the trained model with: jaxrap generate" in outputs[0]
    assert sorted(p.name for p in (multi / "checkpoints").iterdir() if p.name.isdigit()) == ["3", "6"]
    assert len(_losses(multi)) == 6
    assert _losses(multi) == pytest.approx(_losses(single), rel=1e-5)
