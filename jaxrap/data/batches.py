"""Token cache -> fixed-shape batches: packed blocks, a resumable train order, a full eval pass.

Block layout (nanoGPT's windows). A split is one token stream,
``[eos] + song_0 + [eos] + song_1 + [eos] + ...``: songs back to back, each followed by the
end-of-song token, after one leading eos that is the context the first song starts from (as
generation starts from eos). Block ``b`` is the window ``stream[b*T : b*T + T + 1]`` of
``T + 1`` tokens: the model reads its first ``T`` (``input_ids``) and predicts its last ``T``
(``targets``). Windows overlap by one token, so every stream token after the leading eos is a
target exactly once, and every target has the token before it in its row. Songs run across
block boundaries and attention crosses eos inside a block, as in GPT-2's pretraining.

Tail: the last block usually ends past the stream; there targets are pad with ``loss_mask`` 0
(and inputs are pad, or the split's final eos). Nothing is dropped. Pads sit at the right of a
row, so causal attention already keeps real positions from seeing them: pass the model no
attention mask (an all-zero mask row would make the softmax NaN).

A batch is ``{"input_ids", "targets", "loss_mask"}``, each ``(B, T)`` int32; ``loss_mask`` is
1 where ``targets`` is a real token. The loss is the token-weighted mean
``sum(ce * loss_mask) / sum(loss_mask)`` over the whole global batch; with gradient
accumulation, sum both terms over the micro-batches before dividing. The caller splits a
process's ``(G / P, T)`` arrays into ``(accum, G / (P * accum), T)`` with a reshape.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from jaxrap.data.tokens import TokenizedSplit
from jaxrap.errors import JaxrapError

Batch = dict[str, np.ndarray]
PADDING_ROW = -1  # a block index that gathers a row of pads with loss_mask 0


@dataclass(frozen=True)
class PackedBlocks:
    """A split's token stream cut into ``num_blocks`` windows of ``block_size + 1`` tokens."""

    tokens: np.ndarray  # (N,) the split's songs, each with its eos; memory-mapped
    block_size: int
    eos_token_id: int
    pad_token_id: int
    data_key: str  # the token cache key: names the corpus, tokenizer and options

    @property
    def num_blocks(self) -> int:
        return -(-len(self.tokens) // self.block_size)

    @property
    def num_targets(self) -> int:
        """Real target tokens over all blocks: every token of the split once."""
        return len(self.tokens)

    def gather(self, block_indices: np.ndarray) -> Batch:
        """Rows for ``block_indices`` (B,); ``PADDING_ROW`` entries give fully masked rows."""
        block_indices = np.asarray(block_indices, dtype=np.int64)[:, None]  # (B, 1)
        # Window positions in `tokens`; stream position s is tokens[s - 1], s = 0 the leading eos.
        positions = block_indices * self.block_size - 1 + np.arange(self.block_size + 1)  # (B, T+1)
        in_stream = (positions < len(self.tokens)) & (block_indices != PADDING_ROW)
        window = self.tokens[np.clip(positions, 0, len(self.tokens) - 1)].astype(np.int32)
        window = np.where(positions < 0, self.eos_token_id, window)
        window = np.where(in_stream, window, self.pad_token_id)  # (B, T+1)
        return {
            "input_ids": window[:, :-1],
            "targets": window[:, 1:],
            "loss_mask": in_stream[:, 1:].astype(np.int32),
        }


def bucket_length(length: int, cap: int, smallest: int = 1) -> int:
    """The padded length of a sequence of ``length``: the smallest power of two >= length (at
    least ``smallest``), capped at ``cap``. Padding to a few such buckets keeps the shapes a
    jitted function sees, and so its compilations, few."""
    return min(cap, max(smallest, 1 << (max(length, 1) - 1).bit_length()))


def pack_blocks(split: TokenizedSplit, block_size: int) -> PackedBlocks:
    """The split's tokens as blocks of ``block_size`` targets (see the module docstring)."""
    if not isinstance(block_size, int) or block_size < 1:
        raise JaxrapError(f"block size {block_size} must be a positive integer (e.g. 1024)")
    if split.num_tokens == 0:
        raise JaxrapError(f"{split.path}: the split has no songs to make blocks of; prepare the corpus again")
    return PackedBlocks(split.tokens, block_size, split.eos_token_id, split.pad_token_id, split.key)


def _local_batch_size(global_batch_size: int, process_index: int, process_count: int) -> int:
    if global_batch_size < 1:
        raise JaxrapError(f"global batch size {global_batch_size} must be at least 1")
    if not 0 <= process_index < process_count:
        raise JaxrapError(f"process index {process_index} is outside 0..{process_count - 1}")
    if global_batch_size % process_count:
        raise JaxrapError(
            f"global batch size {global_batch_size} does not split evenly over {process_count} processes;"
            f" make it a multiple of {process_count}"
        )
    return global_batch_size // process_count


class TrainBatches:
    """Endless, deterministic, resumable training batches: this process's rows of each global batch.

    Order: epoch ``e`` visits every block once, in the permutation seeded by ``(seed, e)``; the
    epochs' permutations are laid end to end and step ``k`` takes global examples
    ``[k*G, (k+1)*G)`` of that sequence. A global batch that straddles an epoch's end takes the
    rest from the next epoch's permutation, so no block is dropped and no training row is padding.
    Process ``p`` of ``P`` gets rows ``[p*G/P, (p+1)*G/P)``, reading only those blocks.

    The position is ``state()``, a JSON-able dict (examples seen, plus seed, block count, block
    size and data key to check a resume against); pass it back as ``state=`` to continue the
    exact sequence. It counts examples, not steps, so the global batch size and the process
    count may change across a resume.
    """

    def __init__(
        self,
        blocks: PackedBlocks,
        global_batch_size: int,
        *,
        seed: int,
        process_index: int = 0,
        process_count: int = 1,
        state: Mapping[str, Any] | None = None,
    ):
        if not isinstance(seed, int) or seed < 0:
            raise JaxrapError(f"data seed {seed} must be a non-negative integer")
        self.blocks = blocks
        self.global_batch_size = global_batch_size
        self.local_batch_size = _local_batch_size(global_batch_size, process_index, process_count)
        self.process_index = process_index
        self.seed = seed
        self.examples_seen = 0
        self._permutations: dict[int, np.ndarray] = {}  # epoch -> block order; the last two used
        if state is not None:
            self._restore(state)

    @property
    def epoch(self) -> int:
        """The epoch of the next global batch's first example."""
        return self.examples_seen // self.blocks.num_blocks

    def state(self) -> dict[str, Any]:
        return {
            "examples_seen": self.examples_seen,
            "seed": self.seed,
            "num_blocks": self.blocks.num_blocks,
            "block_size": self.blocks.block_size,
            "data_key": self.blocks.data_key,
        }

    def _restore(self, state: Mapping[str, Any]) -> None:
        expected = self.state()
        for key in ("seed", "num_blocks", "block_size", "data_key"):
            if state.get(key) != expected[key]:
                raise JaxrapError(
                    f"the checkpoint's data position was saved with {key} {state.get(key)!r}, but the data"
                    f" now has {expected[key]!r}; resume with the same corpus, tokenizer, block size and"
                    f" seed, or start a new run directory"
                )
        self.examples_seen = int(state["examples_seen"])

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._permutations:
            if len(self._permutations) >= 2:
                del self._permutations[min(self._permutations)]
            rng = np.random.default_rng([self.seed, epoch])
            self._permutations[epoch] = rng.permutation(self.blocks.num_blocks)
        return self._permutations[epoch]

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        num_blocks = self.blocks.num_blocks
        first = self.examples_seen + self.process_index * self.local_batch_size
        examples = np.arange(first, first + self.local_batch_size)  # positions in the epoch sequence
        epochs = examples // num_blocks
        block_indices = np.empty_like(examples)
        for epoch in np.unique(epochs):
            in_epoch = epochs == epoch
            block_indices[in_epoch] = self._permutation(int(epoch))[examples[in_epoch] % num_blocks]
        self.examples_seen += self.global_batch_size
        return self.blocks.gather(block_indices)


class EvalBatches:
    """Every block of a split exactly once, in order, for a deterministic token-weighted loss.

    ``len()`` global batches of ``G`` rows; the last one is filled up with padding rows (all
    ``loss_mask`` 0), so summing ``ce * loss_mask`` over all batches counts each real token of
    the split once. Process ``p`` of ``P`` gets rows ``[p*G/P, (p+1)*G/P)`` of each. Iterate
    again for the next evaluation.
    """

    def __init__(self, blocks: PackedBlocks, global_batch_size: int, *, process_index: int = 0, process_count: int = 1):
        self.blocks = blocks
        self.global_batch_size = global_batch_size
        self.local_batch_size = _local_batch_size(global_batch_size, process_index, process_count)
        self.process_index = process_index

    def __len__(self) -> int:
        return -(-self.blocks.num_blocks // self.global_batch_size)

    def __iter__(self) -> Iterator[Batch]:
        for step in range(len(self)):
            first = step * self.global_batch_size + self.process_index * self.local_batch_size
            block_indices = np.arange(first, first + self.local_batch_size)
            block_indices[block_indices >= self.blocks.num_blocks] = PADDING_ROW
            yield self.blocks.gather(block_indices)
