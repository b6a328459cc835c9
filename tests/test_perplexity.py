"""`jaxrap eval`'s perplexity against transformers' GPT2LMHeadModel scoring the same blocks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers

from jaxrap.cli import main
from jaxrap.data.batches import EvalBatches, pack_blocks
from jaxrap.data.tokens import tokenize_split
from jaxrap.errors import JaxrapError
from jaxrap.evaluate.perplexity import split_perplexity
from jaxrap.load import load_model


@pytest.fixture(scope="module")
def loaded(tiny_lyrics_model_dir):
    return load_model(tiny_lyrics_model_dir)


def test_loss_equals_transformers_on_the_same_tokens(loaded, tiny_lyrics_model_dir, tiny_corpus_dir):
    result = split_perplexity(loaded, tiny_corpus_dir, "validation", block_size=24, per_device_batch_size=2)

    blocks = pack_blocks(tokenize_split(tiny_corpus_dir, "validation", loaded.tokenizer), 24)
    reference = transformers.GPT2LMHeadModel.from_pretrained(tiny_lyrics_model_dir).eval()
    loss_sum, count = 0.0, 0
    for batch in EvalBatches(blocks, 5):
        with torch.no_grad():
            logits = reference(torch.tensor(batch["input_ids"])).logits  # (B, T, V)
        losses = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), torch.tensor(batch["targets"]).long(), reduction="none"
        ).numpy()
        loss_sum += float((losses * batch["loss_mask"]).sum())
        count += int(batch["loss_mask"].sum())
    assert result.tokens == count == blocks.num_targets  # every token once, no padding counted
    assert result.loss == pytest.approx(loss_sum / count, abs=1e-4)
    assert result.perplexity == pytest.approx(np.exp(loss_sum / count), rel=1e-3)


def test_batch_size_does_not_change_the_result(loaded, tiny_corpus_dir):
    one = split_perplexity(loaded, tiny_corpus_dir, "test", block_size=16, per_device_batch_size=1)
    many = split_perplexity(loaded, tiny_corpus_dir, "test", block_size=16, per_device_batch_size=3)
    assert one.tokens == many.tokens
    assert one.loss == pytest.approx(many.loss, abs=1e-5)


def test_bad_block_size_is_refused(loaded, tiny_corpus_dir):
    with pytest.raises(JaxrapError, match="block size must be in 1..128"):
        split_perplexity(loaded, tiny_corpus_dir, block_size=129)


def test_cli_prints_json_and_refuses_a_missing_corpus(tiny_lyrics_model_dir, tiny_corpus_dir, tmp_path, capsys):
    args = ["eval", "--model", str(tiny_lyrics_model_dir), "--data", str(tiny_corpus_dir), "--block-size", "32"]
    assert main([*args, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["split"] == "validation" and record["tokens"] > 0 and record["step"] is None
    assert record["perplexity"] == pytest.approx(np.exp(record["loss"]))

    assert main(args + ["--split", "test"]) == 0
    assert "perplexity" in capsys.readouterr().out

    assert main(["eval", "--model", str(tiny_lyrics_model_dir), "--data", str(tmp_path)]) == 2
    assert "not a prepared corpus" in capsys.readouterr().err
