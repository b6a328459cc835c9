"""Packing, the resumable train order and the full eval pass, checked token by token."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import numpy as np
import pytest

from jaxrap.data.batches import PADDING_ROW, EvalBatches, TrainBatches, pack_blocks
from jaxrap.data.tokenizer import load_tokenizer
from jaxrap.data.tokens import TokenizedSplit, tokenize_split
from jaxrap.errors import JaxrapError

EOS, PAD = 0, 1


def _split(song_lengths=(5, 9, 1, 13, 4, 7, 6, 11, 3, 8)) -> TokenizedSplit:
    """Songs of distinct tokens (2, 3, 4, ...) each followed by EOS, so a token names its place."""
    songs, next_token = [], 2
    for length in song_lengths:
        songs.append(list(range(next_token, next_token + length)) + [EOS])
        next_token += length
    offsets = np.cumsum([0] + [len(song) for song in songs])
    tokens = np.array([token for song in songs for token in song], dtype=np.uint16)
    return TokenizedSplit(tokens, offsets, EOS, PAD, vocab_size=next_token, key="synthetic", path=Path("synthetic"))


def _block_ids(batch, blocks) -> list[int]:
    """Which block each row is (rows of distinct tokens are distinct)."""
    every_block = blocks.gather(np.arange(blocks.num_blocks))["targets"]
    index = {row.tobytes(): block for block, row in enumerate(every_block)}
    return [index[row.tobytes()] for row in batch["targets"]]


@pytest.mark.parametrize("block_size", [1, 4, 7, 16, 77, 200])
def test_packing_keeps_every_token_once_with_separators(block_size):
    split = _split()
    blocks = pack_blocks(split, block_size)
    batch = blocks.gather(np.arange(blocks.num_blocks))
    inputs, targets, mask = batch["input_ids"], batch["targets"], batch["loss_mask"].astype(bool)
    assert inputs.shape == targets.shape == mask.shape == (blocks.num_blocks, block_size)
    assert inputs.dtype == targets.dtype == batch["loss_mask"].dtype == np.int32
    # Every token of the split (songs and their eos) is a target exactly once, in order.
    np.testing.assert_array_equal(targets[mask], split.tokens)
    # The stream starts with eos, and each target's input is the token before it in the stream.
    stream = np.concatenate([[EOS], split.tokens])
    np.testing.assert_array_equal(inputs[mask], stream[:-1])
    # Only the tail is masked, at the end of the last row, and its targets are pad.
    tail = len(split.tokens) - (blocks.num_blocks - 1) * block_size
    assert mask[:-1].all() and mask[-1].sum() == tail and mask[-1, :tail].all()
    assert (targets[~mask] == PAD).all()


def test_padding_rows_are_fully_masked():
    batch = pack_blocks(_split(), 8).gather(np.array([PADDING_ROW, 0]))
    assert (batch["input_ids"][0] == PAD).all() and (batch["targets"][0] == PAD).all()
    assert batch["loss_mask"][0].sum() == 0 and batch["loss_mask"][1].sum() == 8


def test_same_seed_same_batches_other_seed_other_batches():
    blocks = pack_blocks(_split(), 4)
    first, same, other = (TrainBatches(blocks, 4, seed=s) for s in (3, 3, 4))
    for _ in range(5):
        a, b, _ = next(first), next(same), next(other)  # other advances in step
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert any(_block_ids(next(first), blocks) != _block_ids(next(other), blocks) for _ in range(5))


def test_each_epoch_is_a_new_permutation_and_nothing_is_dropped():
    blocks = pack_blocks(_split(), 4)  # 20 blocks; a global batch of 3 does not divide them
    assert blocks.num_blocks == 20
    batches = TrainBatches(blocks, 3, seed=0)
    order = [block for _ in range(20) for block in _block_ids(next(batches), blocks)]  # 60 examples
    epochs = [order[0:20], order[20:40], order[40:60]]
    for epoch in epochs:
        assert sorted(epoch) == list(range(20))  # straddling batches take the rest from the next epoch
    assert epochs[0] != epochs[1] != epochs[2]
    assert batches.epoch == 3 and batches.state()["examples_seen"] == 60


def test_restored_state_continues_exactly():
    blocks = pack_blocks(_split(), 4)
    uninterrupted = TrainBatches(blocks, 6, seed=7)
    expected = [next(uninterrupted) for _ in range(12)]  # crosses three epoch ends

    interrupted = TrainBatches(blocks, 6, seed=7)
    got = [next(interrupted) for _ in range(5)]
    saved = json.loads(json.dumps(interrupted.state()))  # as a checkpoint stores it
    resumed = TrainBatches(blocks, 6, seed=7, state=saved)
    got += [next(resumed) for _ in range(7)]
    for want, have in zip(expected, got, strict=True):
        for key in want:
            np.testing.assert_array_equal(want[key], have[key])


def test_resume_with_another_global_batch_continues_the_example_sequence():
    blocks = pack_blocks(_split(), 4)
    small = TrainBatches(blocks, 2, seed=1)
    [next(small) for _ in range(3)]
    big = TrainBatches(blocks, 4, seed=1, state=small.state())
    expected = _block_ids(next(small), blocks) + _block_ids(next(small), blocks)
    assert _block_ids(next(big), blocks) == expected


@pytest.mark.parametrize("change", [{"seed": 8}, {"block_size": 5}, {"data_key": "other"}])
def test_restoring_onto_other_data_is_refused(change):
    blocks = pack_blocks(_split(), 4)
    state = {**TrainBatches(blocks, 2, seed=7).state(), **change}
    with pytest.raises(JaxrapError, match=f"saved with {next(iter(change))}"):
        TrainBatches(blocks, 2, seed=7, state=state)


def test_process_slices_partition_the_global_batch():
    blocks = pack_blocks(_split(), 4)
    whole = TrainBatches(blocks, 8, seed=5)
    parts = [TrainBatches(blocks, 8, seed=5, process_index=p, process_count=4) for p in range(4)]
    for _ in range(6):
        global_batch = next(whole)
        local = [next(part) for part in parts]
        assert local[0]["input_ids"].shape == (2, 4)
        for key in global_batch:
            np.testing.assert_array_equal(np.concatenate([batch[key] for batch in local]), global_batch[key])


@pytest.mark.parametrize("process_count", [1, 2])
def test_eval_covers_every_token_once_and_repeats_identically(process_count):
    split = _split()
    blocks = pack_blocks(split, 6)  # 14 blocks -> 4 batches of 4 rows, 2 of them padding
    passes = []
    for _ in range(2):
        rows = {key: [] for key in ("input_ids", "targets", "loss_mask")}
        readers = [EvalBatches(blocks, 4, process_index=p, process_count=process_count) for p in range(process_count)]
        assert len(readers[0]) == 4
        for step_batches in zip(*readers, strict=True):
            for batch in step_batches:
                for key in rows:
                    rows[key].append(batch[key])
        passes.append({key: np.concatenate(value) for key, value in rows.items()})
    first, second = passes
    mask = first["loss_mask"].astype(bool)
    np.testing.assert_array_equal(first["targets"][mask], split.tokens)
    assert mask.sum() == blocks.num_targets and mask[blocks.num_blocks :].sum() == 0
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


def test_bad_shapes_are_refused():
    blocks = pack_blocks(_split(), 4)
    with pytest.raises(JaxrapError, match="does not split evenly over 4 processes"):
        TrainBatches(blocks, 6, seed=0, process_index=0, process_count=4)
    with pytest.raises(JaxrapError, match="block size 0"):
        pack_blocks(_split(), 0)
    with pytest.raises(JaxrapError, match="global batch size 0"):
        EvalBatches(blocks, 0)
    with pytest.raises(JaxrapError, match="no songs"):
        pack_blocks(_split(song_lengths=()), 4)


def test_corpus_to_eval_batches_end_to_end(tiny_corpus_dir, tiny_tokenizer_dir, tmp_path):
    tokenizer = load_tokenizer(tiny_tokenizer_dir)
    split = tokenize_split(tiny_corpus_dir, "validation", tokenizer, cache_dir=tmp_path)
    blocks = pack_blocks(split, 32)
    targets = np.concatenate([batch["targets"][batch["loss_mask"] == 1] for batch in EvalBatches(blocks, 3)])
    songs = tokenizer.decode(targets).split(tokenizer.eos_token)
    assert songs[:-1] == datasets.load_from_disk(str(tiny_corpus_dir))["validation"]["text"]
    assert songs[-1] == ""  # the split's last song ends with eos too
