"""jaxrap.host_allocator: memory freed by a worker thread is reused without page faults, and both
entry points (``jaxrap``, ``python tui.py``) set it up before anything else."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

# A child process allocates 128 MB on a worker thread with posix_memalign, as XLA:CPU allocates a
# step's temporary buffer, writes every byte and frees it, 16 times, and prints the page faults
# and the resident memory of the last 4 rounds. Before that, SETUP runs: the entry point under
# test. (Not numpy: it asks for transparent huge pages, 512 times fewer faults.)
CHILD = """
import ctypes, resource, threading
{setup}
libc = ctypes.CDLL(None)
libc.free.argtypes = (ctypes.c_void_p,)
def round_trip():
    buffer = ctypes.c_void_p()
    assert libc.posix_memalign(ctypes.byref(buffer), 64, ctypes.c_size_t(128 << 20)) == 0
    ctypes.memset(buffer, 1, 128 << 20)
    libc.free(buffer)
def resident():
    return int(open("/proc/self/statm").read().split()[1])
measured = []
def rounds():
    for _ in range(12):
        round_trip()
    for _ in range(4):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        round_trip()
        measured.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, resident()))
worker = threading.Thread(target=rounds)
worker.start()
worker.join()
print(*(faults for faults, _ in measured), *(pages for _, pages in measured))
"""
PAGES = (128 << 20) // 4096  # 32,768 pages of 4 KiB

ENTRY_POINTS = {
    "keep_freed_memory": "from jaxrap.host_allocator import keep_freed_memory\nassert keep_freed_memory()",
    "jaxrap": "from jaxrap.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass",
    "python tui.py": "from jaxrap.cli.tui import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
}


def last_rounds(setup: str, **env: str) -> tuple[list[int], list[int]]:
    """(page faults, resident pages) of each of the child's last 4 rounds."""
    inherited = {name: value for name, value in os.environ.items() if name not in ("JAXRAP_MALLOC", "JAX_PLATFORMS")}
    result = subprocess.run(
        [sys.executable, "-c", CHILD.format(setup=setup)],
        env={**inherited, **env}, capture_output=True, text=True, timeout=120, check=True,
    )
    numbers = [int(word) for word in result.stdout.splitlines()[-1].split()]  # after --version or --help
    return numbers[:4], numbers[4:]


needs_glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt settings only")


@needs_glibc
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_a_freed_buffer_is_reused_without_page_faults(entry):
    faults, resident = last_rounds(ENTRY_POINTS[entry])
    assert max(faults) < PAGES // 100
    assert max(resident) - min(resident) < PAGES // 100  # the heap has stopped growing (a page may come and go)


@needs_glibc
@pytest.mark.parametrize("env", [{}, {"JAXRAP_MALLOC": "system"}, {"JAX_PLATFORMS": "tpu"}, {"JAX_PLATFORMS": "cuda,cpu"}])
def test_glibc_defaults_fault_every_page_in_again_and_stay_where_asked_or_on_an_accelerator(env):
    # The reference (no setup): with glibc's defaults every round maps fresh pages and faults each
    # one in. So does the jaxrap entry point turned off, or with jax bound for another platform.
    setup = ENTRY_POINTS["jaxrap"] if env else ""
    faults, _ = last_rounds(setup, **env)
    assert min(faults) > PAGES * 0.9


def test_the_cpu_is_told_from_jax_platforms_first(monkeypatch):
    from jaxrap.host_allocator import xla_runs_on_cpu

    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    assert xla_runs_on_cpu()
    monkeypatch.setenv("JAX_PLATFORMS", "cuda,cpu")
    assert not xla_runs_on_cpu()
    monkeypatch.delenv("JAX_PLATFORMS")
    assert xla_runs_on_cpu()  # this machine has no accelerator plugin


@pytest.mark.parametrize("command", [[sys.executable, "-m", "jaxrap", "rhymes", "rue"], [sys.executable, "tui.py", "--model", "runs/none"]])
def test_an_unknown_mode_is_one_line_and_exit_2(command):
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(command, cwd=root, env={**os.environ, "JAXRAP_MALLOC": "off"}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr == (
        "jaxrap: error: JAXRAP_MALLOC='off': use 'keep' (the default: freed memory kept on a CPU) or 'system' (glibc's defaults)\n"
    )
