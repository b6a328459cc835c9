"""The whole training job on the real lyrics slice: a tiny model learns more than word counts."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from jaxrap.config import MeshConfig, load_config
from jaxrap.data.tokenizer import load_tokenizer
from jaxrap.data.tokens import tokenize_split
from jaxrap.rundir import RunDir
from jaxrap.sharding import make_mesh
from jaxrap.train.pipeline import run_training
from jaxrap.train.trackers import MemoryTracker


def unigram_cross_entropy(corpus, tokenizer) -> float:
    """Validation loss of the best context-free model: train-split token frequencies (add-one)."""
    train = np.asarray(tokenize_split(corpus, "train", tokenizer).tokens)
    validation = np.asarray(tokenize_split(corpus, "validation", tokenizer).tokens)
    counts = np.bincount(train, minlength=len(tokenizer)) + 1.0
    return float(-np.log(counts[validation] / counts.sum()).mean())


@pytest.mark.slow
def test_loss_falls_below_the_unigram_baseline_on_the_real_corpus(real_corpus_dir, tmp_path):
    vocab = 1024
    config = load_config(None, [
        f"data.path={real_corpus_dir}", f"data.vocab_size={vocab}", "data.block_size=64",
        "model.shape.n_layer=2", "model.shape.n_head=2", "model.shape.n_embd=64", "model.shape.n_positions=64",
        "model.shape.dropout=0.0", "train.per_device_batch_size=8", "train.steps=200", "train.log_every=20",
        "train.eval_every=100", "optim.lr=1e-2", "optim.warmup_steps=10",
    ])
    memory = MemoryTracker()
    run = RunDir(tmp_path / "run")
    result = run_training(config, run.path, trackers=[memory], say=memory.messages.append,
                          mesh=make_mesh(MeshConfig(), jax.devices()[:1]))
    losses = {step: metrics["loss"] for step, metrics in memory.records}
    evals = {step: metrics["eval_loss"] for step, metrics in memory.records if "eval_loss" in metrics}
    unigram = unigram_cross_entropy(real_corpus_dir, load_tokenizer(run.tokenizer_dir))

    assert sorted(evals) == [100, 200] and result.eval_loss == evals[200]
    assert losses[20] < math.log(vocab) + 0.5  # starts near uniform
    assert losses[200] < losses[20] - 0.75, losses
    assert evals[200] < evals[100] < math.log(vocab)
    assert evals[200] < unigram - 0.2, (evals, unigram)  # it uses the context, not just frequencies
