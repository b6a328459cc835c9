"""Stopping a run on request: SIGTERM (a TPU preemption) or Ctrl-C finish the current step,
then the loop saves and returns normally; a second Ctrl-C aborts at once.

With several processes they must all stop at the same step, so the request is shared (an
all-gather) only on log steps, where the loop syncs with the devices anyway.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

import numpy as np


class StopRequest:
    """SIGTERM / SIGINT set a flag the loop reads between steps (while used as a context manager)."""

    def __init__(self, multiprocess: bool):
        self.multiprocess = multiprocess
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now
        self.signal_name = signal.Signals(signum).name

    def requested(self, check_others: bool) -> str | None:
        """The signal to stop for, or None. With several processes, only a step that
        ``check_others`` (a log step) asks them all, and every process gets the same answer."""
        if not self.multiprocess:
            return self.signal_name
        if not check_others:
            return None
        from jax.experimental import multihost_utils

        flags = multihost_utils.process_allgather(np.int32(self.signal_name is not None))
        if np.any(flags) and self.signal_name is None:
            self.signal_name = "SIGTERM"  # another process was signalled
        return self.signal_name if np.any(flags) else None
