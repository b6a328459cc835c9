"""JAX's persistent compilation cache: a second process loads compiled programs from disk.

Where: ``$JAXRAP_COMPILATION_CACHE`` if set (an empty value turns the cache off), else
platformdirs' user cache directory, ``jaxrap/xla`` (``~/.cache/jaxrap/xla`` on Linux).
Every program is cached, however small or quick to compile: the sampler's programs take
seconds to compile (README, Benchmarks — sampling), which a second `jaxrap generate` should
not pay, and a rerun of `jaxrap train` loads its memory plan's probes and its steps
(docs/training.md, Compilation cache).
Call before the first jitted call; `jaxrap train`, `plan`, `eval`, `generate`, `next-bar` and
the studio (`tui`) do. With several processes, JAX writes entries from process 0 only.
"""

from __future__ import annotations

import os
from pathlib import Path

from jaxrap.errors import JaxrapError

ENV_VAR = "JAXRAP_COMPILATION_CACHE"


def compilation_cache_dir() -> Path | None:
    """The cache directory this process uses, or None when the cache is off."""
    value = os.environ.get(ENV_VAR)
    if value is None:
        import platformdirs

        return Path(platformdirs.user_cache_dir("jaxrap")) / "xla"
    return Path(value).expanduser() if value else None


def enable_compilation_cache() -> Path | None:
    """Turn the persistent cache on (see the module docstring); the directory, or None if off.
    A JaxrapError when the directory cannot be made or written (JAX would only warn on each
    read and compile on)."""
    import jax

    directory = compilation_cache_dir()
    if directory is not None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if not os.access(directory, os.W_OK):
                raise PermissionError("not writable")
        except OSError as error:
            raise JaxrapError(
                f"compilation cache {directory}: cannot write there ({error.strerror or error});"
                f" set {ENV_VAR} to a writable directory, or to an empty value to compile without the cache"
            ) from None
        jax.config.update("jax_compilation_cache_dir", str(directory))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory
