"""How far the host may run ahead of the devices: a bounded window of dispatched programs.

JAX dispatches asynchronously: a jitted call returns once its program is queued, and a Python
loop over batches can queue hundreds of programs before the first one has run. Nothing gains
from more than a few (the devices are busy with the first ones), and on XLA:CPU with several
devices it deadlocks. Its runtime keeps max(cores, devices) worker threads, "enough threads for
one collective to complete": every device's part of a program with a collective (the
gradient all-reduce of a train step, the loss psum of an eval step) holds a worker until all
of them reach the collective. Each launch also takes a slot of its device's in-flight limit
(32 programs) and, when the device has none free, waits for one *on a worker thread*. Once
the host is 32 programs ahead, such a waiting launch can hold the worker the oldest program's
last device needs: three devices wait in the all-reduce for a fourth that never starts, and
XLA aborts the process after 40 s ("Expected 4 threads to join the rendezvous, but only 3 of
them arrived on time"). ``scripts/bench_train.py`` and the README's Reliability section have
the reproduction and the figures.

``DispatchWindow`` keeps at most ``limit`` programs outstanding: admitting one more waits for
the oldest to finish first. Every loop that dispatches device programs without reading their
results (the train loop, the evaluation passes) goes through one.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import jax

# Programs a loop may have queued but not finished. Far below XLA:CPU's 32 per device, and
# enough to keep any device busy: the next step is queued while the current one runs.
MAX_IN_FLIGHT = 4


class DispatchWindow:
    """``admit(result)`` after each dispatch: returns at once while fewer than ``limit`` earlier
    results are pending, else first waits until the oldest is computed (no copy to the host)."""

    def __init__(self, limit: int = MAX_IN_FLIGHT):
        if limit < 1:
            raise ValueError(f"a dispatch window holds at least one program, got {limit}")
        self.limit = limit
        self._pending: deque[Any] = deque()

    def admit(self, result: Any) -> None:
        self._pending.append(result)
        while len(self._pending) > self.limit:
            jax.block_until_ready(self._pending.popleft())
