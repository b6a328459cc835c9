"""How a bar-by-bar decode lays out its batch: the one place that knows which row is what.

Rows are ``samples`` groups of ``candidates`` rows each, sample-major: row ``r`` holds
candidate ``r % candidates`` of sample ``r // candidates``. Every row of a group starts each
bar from the same context (the prompt, then the sample's chosen bars); candidates of a bar
are decoded together, and the chosen one is copied over its group (``bar_decode.select``).
Classifier-free guidance's conditioned / unconditioned pair of each row is a further, innermost
factor that only the model's batch sees (``jaxrap.sample.guidance.model_rows``).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class RowLayout:
    samples: int
    candidates: int

    @property
    def size(self) -> int:
        """Rows of the batch (the static batch size of the jitted programs)."""
        return self.samples * self.candidates

    def row(self, sample: int, candidate: int) -> int:
        return sample * self.candidates + candidate

    def rows_of(self, sample: int) -> range:
        """The rows of ``sample``'s group."""
        return range(self.row(sample, 0), self.row(sample + 1, 0))

    def per_row(self, per_sample: np.ndarray) -> np.ndarray:
        """(samples, ...) values -> (rows, ...): each sample's value on every row of its group."""
        return np.repeat(np.asarray(per_sample), self.candidates, axis=0)

    def sources(self, chosen: np.ndarray) -> np.ndarray:
        """(rows,) int32: for each row, the row it becomes a copy of, given each sample's chosen
        candidate ``chosen`` (samples,)."""
        return self.per_row(np.arange(self.samples) * self.candidates + np.asarray(chosen)).astype(np.int32)
