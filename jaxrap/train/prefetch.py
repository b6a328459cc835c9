"""The next training batches, gathered and placed on the devices by a background thread while
the current step runs, so the loop only dispatches."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from jaxrap.data.batches import TrainBatches
from jaxrap.train.step import Batch


class Prefetcher:
    """``next()``: (device batch, data position after it), ``depth`` batches ahead."""

    def __init__(self, batches: TrainBatches, put: Callable[[dict[str, np.ndarray]], Batch], depth: int):
        self._batches = batches
        self._put = put
        self._queue: queue.Queue[tuple[Batch, dict[str, Any]] | BaseException] = queue.Queue(maxsize=depth)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jaxrap-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._closed.is_set():
                local = next(self._batches)
                item = (self._put(local), self._batches.state())  # state after this batch
                while not self._closed.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as error:  # noqa: BLE001 - re-raised in the training thread
            self._queue.put(error)

    def next(self) -> tuple[Batch, dict[str, Any]]:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
