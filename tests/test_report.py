"""`jaxrap eval`'s lyric report: fixed prompts round-robin over artists, human continuations
and samples measured alike, the CLI's table and JSON, sampling flags shared with generate."""

from __future__ import annotations

import json

import pytest

from jaxrap.cli import main
from jaxrap.data.artists import UNKNOWN_ARTIST, SongPrompt
from jaxrap.data.corpus import load_corpus
from jaxrap.evaluate.report import evaluate_model
from jaxrap.evaluate.samples import cut_reference, eval_prompts
from jaxrap.load import load_model
from jaxrap.sample.generator import Generator
from jaxrap.sample.params import SamplingParams


def test_prompts_are_first_bars_round_robin_over_artists(tiny_corpus_dir):
    prompts = eval_prompts(tiny_corpus_dir, "validation", 0, None)
    songs = load_corpus(tiny_corpus_dir)["validation"]
    assert len(prompts) == len(songs)  # every invented song has several bars
    first = prompts[0]
    song = next(s for s in songs if s["artist"] == first.artist)
    assert first.prompt + first.reference == song["text"] and first.prompt.endswith("\n") and "\n" not in first.prompt[:-1]
    artists = [p.artist for p in prompts]
    assert artists[:2] == sorted(set(artists))  # one song of each artist before a second one
    assert eval_prompts(tiny_corpus_dir, "validation", 3, None) == prompts[:3]
    assert all(p.condition is None for p in prompts)

    conditioned = SongPrompt(0, {UNKNOWN_ARTIST: 2, "Médine": 3})
    assert {(p.artist, p.condition) for p in eval_prompts(tiny_corpus_dir, "validation", 0, conditioned)} == {
        ("Médine", "Médine"), ("Shurik'n", UNKNOWN_ARTIST)
    }


@pytest.fixture(scope="module")
def loaded(conditioned_model_dir):
    return load_model(conditioned_model_dir)


def test_references_are_cut_to_the_samples_token_budget(loaded, tiny_corpus_dir):
    generator = Generator(loaded)
    prompt = eval_prompts(tiny_corpus_dir, "validation", 1, loaded.song_prompt)[0]
    cut = cut_reference(generator, prompt, 5)
    assert generator.encode_text(cut) == generator.encode_text(prompt.reference)[:5]


def test_report_scores_human_and_generated_continuations_alike(loaded, tiny_corpus_dir):
    params = SamplingParams(max_new_tokens=12, seed=3)
    record = evaluate_model(loaded, tiny_corpus_dir, samples=4, params=params, block_size=32).as_dict()
    lyrics = record["lyrics"]
    assert lyrics["prompts"] == 4 and lyrics["sampling"]["seed"] == 3 and lyrics["sampling"]["max_new_tokens"] == 12
    for column in (lyrics["human"], lyrics["samples"]):
        # (re-tokenized text: a random model's stray bytes decode to U+FFFD, so not <= 4 * 12)
        assert column["texts"] == 4 and column["perplexity"]["tokens"] > 0 and column["perplexity"]["perplexity"] > 1
        assert 0.0 <= column["loop_rate"] <= 1.0 and 0.0 <= column["distinct1"] <= 1.0
        assert column["memorisation"]["texts"] == 4
        assert column["fidelity"]["candidates"] == 2 and column["fidelity"]["texts"] >= 1  # Médine and Shurik'n
    assert set(record["per_artist"]) == {"Médine", "Shurik'n"}
    again = evaluate_model(loaded, tiny_corpus_dir, samples=4, params=params, block_size=32).as_dict()
    assert again["lyrics"]["samples"] == lyrics["samples"]  # same seed, same samples, same numbers


def test_cli_table_json_and_shared_sampling_flags(conditioned_model_dir, tiny_corpus_dir, capsys):
    args = ["eval", "--model", str(conditioned_model_dir), "--data", str(tiny_corpus_dir), "--block-size", "32",
            "--samples", "2", "--max-new-tokens", "8", "--seed", "1", "--temperature", "0.7", "--top-k", "100"]
    assert main([*args, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["lyrics"]["sampling"]["temperature"] == 0.7 and record["lyrics"]["sampling"]["top_k"] == 100
    assert record["lyrics"]["samples"]["texts"] == 2

    assert main(args) == 0
    table = capsys.readouterr().out
    for label in ("texts that loop", "consecutive bars that rhyme", "copied from train", "own-artist margin", "Shurik'n"):
        assert label in table

    assert main([*args, "--temperature", "-1"]) == 2
    assert "temperature must be >= 0" in capsys.readouterr().err
    assert main([*args, "--samples", "-1"]) == 2
    assert "--samples must be 0 or more" in capsys.readouterr().err
