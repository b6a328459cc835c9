"""`jaxrap eval`'s perplexity against transformers' GPT2LMHeadModel scoring the same blocks, with
the song prefix of a model conditioned on artists, and per artist."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers

from jaxrap.cli import main
from jaxrap.data.batches import EvalBatches, pack_blocks
from jaxrap.data.corpus import load_corpus
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


def test_a_conditioned_model_is_scored_on_songs_prefixed_as_in_training(conditioned_model_dir, tiny_corpus_dir):
    """Each song after its eos and artist token, as the run trained on them; per-artist losses
    are the tokens of each artist's songs and average back to the overall loss."""
    loaded = load_model(conditioned_model_dir)
    assert loaded.song_prompt is not None and loaded.song_prompt.conditioned
    result = split_perplexity(loaded, tiny_corpus_dir, "validation", block_size=24, per_device_batch_size=2)

    prefixed = tokenize_split(tiny_corpus_dir, "validation", loaded.tokenizer, song_prefix=loaded.song_prompt.row_prefix)
    plain = tokenize_split(tiny_corpus_dir, "validation", loaded.tokenizer)
    assert result.tokens == prefixed.num_tokens == plain.num_tokens + plain.num_songs  # one artist token per song
    artists = load_corpus(tiny_corpus_dir)["validation"]["artist"]
    assert [int(prefixed.song(i)[0]) for i in range(prefixed.num_songs)] == [
        loaded.song_prompt.artist_ids[a] for a in artists
    ]
    reference = transformers.GPT2LMHeadModel.from_pretrained(conditioned_model_dir).eval()
    loss_sum, count = 0.0, 0
    for batch in EvalBatches(pack_blocks(prefixed, 24), 4):
        with torch.no_grad():
            logits = reference(torch.tensor(batch["input_ids"])).logits
        losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), torch.tensor(batch["targets"]).long(), reduction="none")
        loss_sum += float((losses.numpy() * batch["loss_mask"]).sum())
        count += int(batch["loss_mask"].sum())
    assert result.loss == pytest.approx(loss_sum / count, abs=1e-4)

    assert set(result.per_artist) == set(artists)
    assert sum(a.songs for a in result.per_artist.values()) == len(artists)
    assert sum(a.tokens for a in result.per_artist.values()) == result.tokens
    weighted = sum(a.loss * a.tokens for a in result.per_artist.values()) / result.tokens
    assert weighted == pytest.approx(result.loss, abs=1e-6)
