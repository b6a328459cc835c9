"""One writer per run directory: a second `jaxrap train` is refused at once, naming the first,
before any work; the lock of a process killed with SIGKILL is free at once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxrap.errors import JaxrapError
from jaxrap.rundir import RunDir
from jaxrap.train.run_lock import hold_run_lock

TIMEOUT_S = 240


def test_a_second_holder_is_refused_and_the_lock_is_free_after_release(tmp_path):
    lock = RunDir(tmp_path / "run").lock_file
    with hold_run_lock(lock):
        record = json.loads(lock.read_text())
        assert (record["pid"], record["host"]) == (os.getpid(), socket.gethostname())
        # flock is per open file: a second open, even in this process, is refused.
        with pytest.raises(
            JaxrapError, match=rf"another `jaxrap train` is writing to this run directory \(pid {os.getpid()} on host"
        ):
            with hold_run_lock(lock):
                pass
    with hold_run_lock(lock):  # released on exit
        pass
    assert lock.is_file()  # never deleted (see run_lock's docstring)


def _holder(lock: Path) -> int | None:
    try:
        return json.loads(lock.read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.mark.slow
def test_a_second_jaxrap_train_is_refused_at_once_and_a_killed_first_frees_the_lock(
    tiny_corpus_dir, tiny_tokenizer_dir, tmp_path, subprocess_compilation_cache
):
    config = tmp_path / "run.yaml"
    config.write_text(
        f"model:\n  tokenizer: {tiny_tokenizer_dir}\n"
        "  shape: {n_layer: 1, n_head: 2, n_embd: 16, n_positions: 16, dropout: 0.0}\n"
        f"data: {{path: {tiny_corpus_dir}, block_size: 16}}\n"
        "train: {steps: 100000, per_device_batch_size: 2, log_every: 1, eval_every: 100000, save_every: 100000}\n"
    )
    run = RunDir(tmp_path / "run")
    command = [
        sys.executable,
        "-m",
        "jaxrap",
        "train",
        "--config",
        str(config),
        "--run-dir",
        str(run.path),
        "--samples",
        "0",
    ]
    # The second process compiles the memory plan's probe too, before it asks for the lock: it
    # loads the first one's from the persistent cache (asserted below).
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1", "JAX_PLATFORMS": "cpu",
           **subprocess_compilation_cache}
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while _holder(run.lock_file) != first.pid and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _holder(run.lock_file) == first.pid, "the first jaxrap train never took the lock"

        # The second writer: refused before any work (its corpus would be prepared elsewhere).
        elsewhere = tmp_path / "elsewhere"
        second = subprocess.run(
            [*command, "--set", f"data.path={elsewhere}", "--source", str(tmp_path / "lyrics.csv")],
            env={**env, "JAX_DEBUG_LOG_MODULES": "jax._src.compiler"},  # logs each cache hit and miss
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        assert second.returncode == 2, second.stdout + second.stderr
        holder = f"(pid {first.pid} on host {socket.gethostname()} since"
        assert f"another `jaxrap train` is writing to this run directory {holder}" in second.stderr
        assert "Traceback" not in second.stderr
        # `jaxrap train` keeps its programs in the persistent cache: the second loaded the probe.
        assert "Persistent compilation cache hit for 'jit_train_step'" in second.stderr
        assert "CACHE MISS for 'jit_train_step'" not in second.stderr
        assert not elsewhere.exists()
        assert first.poll() is None  # the first one trains on

        first.send_signal(signal.SIGKILL)  # no chance to clean up
        first.wait(timeout=TIMEOUT_S)
        with hold_run_lock(run.lock_file):  # the kernel released it with the process
            assert _holder(run.lock_file) == os.getpid()
    finally:
        if first.poll() is None:
            first.kill()
