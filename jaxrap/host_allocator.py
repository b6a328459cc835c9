"""glibc malloc settings for XLA:CPU: memory a step frees is kept for the next step.

XLA:CPU allocates each execution's temporary buffer (298 MB for the llama-tiny training step
at 8 x 256 tokens) with ``posix_memalign`` on one of its worker threads. glibc serves an
allocation over 64 MB on a thread's own arena with a fresh ``mmap`` and unmaps it when freed,
so every step faults its whole temporary buffer back in, page by page, zeroed by the kernel:
73,000 page faults and 0.14 s of system CPU time per llama-tiny step on a 2-core VM, a sixth
of the step's CPU time (docs/training.md, "Host memory on a CPU").

``keep_freed_memory`` sends every thread to glibc's main arena (``M_ARENA_MAX`` 1), which grows
with ``brk`` instead of ``mmap`` (``M_MMAP_MAX`` 0) and never hands freed memory back to the
system (``M_TRIM_THRESHOLD`` -1): from the second step on, the buffer is reused as it is. The
process keeps its peak heap, as a caching allocator would. Small allocations keep their
per-thread caches (tcache), so threads rarely meet on the arena's lock.

The cost is memory: glibc's ``posix_memalign`` leaves small remainders between freed chunks,
so the heap settles at a few temporary buffers' worth of freed memory rather than one
(llama-tiny's step: about 500 MB more resident memory than glibc's defaults, stable over 90
steps; a bare program with a 144 MB temporary: about 5 buffers' worth more, 760 MB, then stable). That is why it applies
only where XLA runs on the host's CPU, whose programs are small: not where an accelerator's
PJRT plugin (``jax_plugins``, ``libtpu``) is installed, nor where ``JAX_PLATFORMS`` names
another platform first. ``JAXRAP_MALLOC``: ``keep`` (the default) or ``system`` (glibc's
defaults). Other C libraries (musl, macOS) are left as they are.

Call it first thing in a process, before jax starts its threads (an arena is picked at a
thread's first allocation); ``jaxrap`` and ``python tui.py`` do.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import platform

from jaxrap.errors import JaxrapError

ENV_VAR = "JAXRAP_MALLOC"
MODES = ("keep", "system")

# mallopt parameters, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8


def xla_runs_on_cpu() -> bool:
    """Whether jax will run on the CPU, told without starting it: ``JAX_PLATFORMS``' first
    platform if set, else whether no accelerator plugin is installed."""
    platforms = os.environ.get("JAX_PLATFORMS", "").strip()
    if platforms:
        return platforms.split(",")[0].strip() == "cpu"
    return importlib.util.find_spec("jax_plugins") is None and importlib.util.find_spec("libtpu") is None


def keep_freed_memory() -> bool:
    """Apply the settings above; True if glibc took them all, False where they do not apply
    (an accelerator, another C library, or ``JAXRAP_MALLOC=system``). An unknown mode is a
    JaxrapError."""
    mode = os.environ.get(ENV_VAR, "keep")
    if mode not in MODES:
        raise JaxrapError(f"{ENV_VAR}={mode!r}: use 'keep' (the default: freed memory kept on a CPU) or 'system' (glibc's defaults)")
    if mode == "system" or platform.libc_ver()[0] != "glibc" or not xla_runs_on_cpu():
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success, 0 on error; every setting is tried.
    results = [mallopt(M_ARENA_MAX, 1), mallopt(M_MMAP_MAX, 0), mallopt(M_TRIM_THRESHOLD, -1)]
    return all(results)
