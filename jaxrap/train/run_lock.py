"""One writer per run directory: `jaxrap train` holds ``RUN/train.lock`` while it runs.

Two trainings writing one run directory would both resume, both save the same steps and log
every step twice. The lock is an ``flock`` on ``RUN/train.lock``: the kernel holds it for the
open file, so it is released when the process exits in any way (a crash, ``kill -9``, the
host's OOM killer) and can never be left stuck. The file also holds the holder's pid, host,
start time and command, for the message that refuses a second writer; it is never deleted
(unlinking a lock file lets two processes each lock a different inode of the same name).

What is guaranteed, by filesystem:

- a local disk: any two processes of the host;
- NFS (Filestore, NFSv4 or NFSv3 with its lock manager): Linux emulates ``flock`` with a
  whole-file POSIX lock the server enforces for every client host; a host that dies keeps it
  until the server's lease runs out (NFSv4: about 90 s);
- Cloud Storage through gcsfuse: Cloud Storage has no locks, so the FUSE kernel module locks
  for the one host only: a second writer on another host is not stopped there.

With several processes (a pod slice), process 0 holds the lock for the job; the others are
told whether it could (``check_others``), so that every process refuses together.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from jaxrap.errors import JaxrapError


@contextmanager
def hold_run_lock(
    lock_file: Path, *, holder: bool = True, agree: Callable[[bool], bool] | None = None
) -> Iterator[None]:
    """Hold ``lock_file`` (``RunDir.lock_file``) for the ``with`` block, or raise JaxrapError
    naming its holder.

    ``holder``: this process takes the lock (process 0 of a job); ``agree(ok)`` shares process
    0's answer with every process and returns it (None with a single process).
    """
    fd, problem = _lock(lock_file) if holder else (None, None)
    if agree is not None and not agree(problem is None):
        problem = (
            problem
            or f"{lock_file.parent}: process 0 could not lock this run directory (another `jaxrap train` writes to it)"
        )
    if problem is not None:
        raise JaxrapError(problem)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the flock


def _lock(path: Path) -> tuple[int | None, str | None]:
    """(open descriptor holding the lock, None), or (None, why it is held)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        held_by = _describe(os.read(fd, 4096))
        os.close(fd)
        return None, (
            f"{path.parent}: another `jaxrap train` is writing to this run directory ({held_by}; lock {path});"
            " wait for it to end or stop it, or pick another --run-dir"
        )
    except BaseException:
        os.close(fd)
        raise
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
    return fd, None


def _describe(content: bytes) -> str:
    """'pid 123 on host h since 2026-11-30T12:00:00+0000' from the lock file's record."""
    try:
        record = json.loads(content)
        return f"pid {record['pid']} on host {record['host']} since {record['since']}"
    except (ValueError, KeyError, TypeError):
        return "its holder has not written its name yet"
