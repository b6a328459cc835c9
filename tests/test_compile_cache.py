"""The persistent compilation cache's directory as each command meets it (jaxrap.compile_cache)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "tiny_cpu.yaml")


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--config", CONFIG],
        ["plan", "--config", CONFIG],
        ["eval", "--model", "no-such-model-dir/", "--data", "no-such-data"],
        ["generate", "--model", "no-such-model-dir/", "--prompt", "Yo"],
    ],
    ids=lambda command: command[0],
)
def test_a_cache_directory_that_cannot_be_written_is_refused_in_one_line_before_any_work(command, tmp_path):
    (tmp_path / "a-file").write_text("")
    cache = tmp_path / "a-file" / "xla"  # under a file: cannot be made
    result = subprocess.run(
        [sys.executable, "-m", "jaxrap", *command, *(["--run-dir", str(tmp_path / "run")] if command[0] == "train" else [])],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "JAXRAP_COMPILATION_CACHE": str(cache), "XLA_FLAGS": "--xla_force_host_platform_device_count=1"},
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr == (
        f"jaxrap: error: compilation cache {cache}: cannot write there (Not a directory); set JAXRAP_COMPILATION_CACHE"
        " to a writable directory, or to an empty value to compile without the cache\n"
    )
    assert not (tmp_path / "run").exists()
