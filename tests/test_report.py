"""`jaxrap eval`'s lyric report: fixed prompts round-robin over artists, human continuations
and samples measured alike (flow and the artist judge included), the CLI's table, JSON and
confusion PNG, sampling flags shared with generate."""

from __future__ import annotations

import json

import pytest

from jaxrap.cli import main
from jaxrap.data.artists import UNKNOWN_ARTIST, SongPrompt
from jaxrap.data.corpus import load_corpus
from jaxrap.evaluate.artist_classifier import ArtistClassifier
from jaxrap.evaluate.flow_report import FlowTargets, flow_stats
from jaxrap.evaluate.report import evaluate_model, judge_column
from jaxrap.evaluate.samples import EvalPrompt, cut_reference, eval_prompts
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


# A column's JSON keys before flow and judge were added: they must stay as they are.
COLUMN_KEYS = {"texts", "perplexity", "rep4", "loop_rate", "distinct1", "distinct2", "rhyme_rate", "rhyme_pairs",
               "memorisation", "fidelity"}


def test_report_scores_human_and_generated_continuations_alike(loaded, tiny_corpus_dir):
    params = SamplingParams(max_new_tokens=40, seed=3)
    targets = FlowTargets(rhyme_scheme="AABB", syllables=8, syllable_tolerance=3)
    report = evaluate_model(loaded, tiny_corpus_dir, samples=4, params=params, targets=targets, block_size=32)
    record = report.as_dict()
    lyrics = record["lyrics"]
    assert lyrics["prompts"] == 4 and lyrics["sampling"]["seed"] == 3 and lyrics["sampling"]["max_new_tokens"] == 40
    assert lyrics["flow_targets"] == {"rhyme_scheme": "AABB", "syllables": 8, "syllable_tolerance": 3,
                                     "rhyme_vowels": 1}
    for column in (lyrics["human"], lyrics["samples"]):
        assert set(column) == COLUMN_KEYS | {"flow", "judge"}
        # (re-tokenized text: a random model's stray bytes decode to U+FFFD, so not <= 4 * 12)
        assert column["texts"] == 4 and column["perplexity"]["tokens"] > 0 and column["perplexity"]["perplexity"] > 1
        assert 0.0 <= column["loop_rate"] <= 1.0 and 0.0 <= column["distinct1"] <= 1.0
        assert column["memorisation"]["texts"] == 4
        assert column["fidelity"]["candidates"] == 2 and column["fidelity"]["texts"] >= 1  # Médine and Shurik'n
        assert column["flow"]["scheme_pairs"] is not None and column["flow"]["syllables_within_tolerance"] is not None
        # with samples, the judge (trained on the model's two artists) judges both columns, every prompt named
        assert column["judge"]["labels"] == ["Médine", "Shurik'n"] and column["judge"]["texts"] == 4
    assert set(record["per_artist"]) == {"Médine", "Shurik'n"}
    # the human column's flow is the songs' continuations after their first bar, cut to the samples' budget
    generator = Generator(loaded)
    prompts = eval_prompts(tiny_corpus_dir, "validation", 4, loaded.song_prompt)
    expected = flow_stats(prompts, [[cut_reference(generator, p, 40)] for p in prompts], targets)
    assert report.lyrics.human.flow == expected and expected.overall.syllables.bars > 0
    again = evaluate_model(loaded, tiny_corpus_dir, samples=4, params=params, targets=targets, block_size=32).as_dict()
    assert again["lyrics"]["samples"] == lyrics["samples"]  # same seed, same samples, same numbers


def test_the_judge_trains_only_with_samples_unless_asked(loaded, tiny_corpus_dir):
    lyrics = evaluate_model(loaded, tiny_corpus_dir, block_size=32).lyrics
    assert lyrics.human.judge is None and lyrics.samples is None
    assert lyrics.as_dict()["flow_targets"] == {"rhyme_scheme": None, "syllables": None, "syllable_tolerance": 2,
                                                       "rhyme_vowels": 1}
    assert lyrics.human.flow.as_dict()["scheme_accuracy"] is None and lyrics.human.flow.overall.syllables.bars > 0
    judged = evaluate_model(loaded, tiny_corpus_dir, judge=True, block_size=32).lyrics.human.judge
    assert judged is not None and judged.texts == lyrics.prompts == 6  # every validation song; both artists named


def test_judge_column_skips_prompts_conditioned_on_unknown(loaded, tiny_corpus_dir):
    judge = ArtistClassifier.for_model(tiny_corpus_dir, loaded.song_prompt)
    prompts = [EvalPrompt("Médine", "Médine", "a\n", ""), EvalPrompt("Rare", UNKNOWN_ARTIST, "b\n", ""),
               EvalPrompt("Shurik'n", None, "c\n", "")]
    result = judge_column(judge, prompts, [["J'traîne au quartier", "Mon cœur bat"], ["x"], ["y"]])
    assert result.texts == 2 and set(result.per_artist) == {"Médine"}
    assert judge_column(judge, prompts[1:], [["x"], ["y"]]) is None


def test_cli_table_json_and_shared_sampling_flags(conditioned_model_dir, tiny_corpus_dir, tmp_path, capsys):
    args = ["eval", "--model", str(conditioned_model_dir), "--data", str(tiny_corpus_dir), "--block-size", "32",
            "--samples", "2", "--max-new-tokens", "8", "--seed", "1", "--temperature", "0.7", "--top-k", "100"]
    png = tmp_path / "confusion.png"
    assert main([*args, "--json", "--confusion-png", str(png)]) == 0
    out, err = capsys.readouterr()
    record = json.loads(out)
    assert record["lyrics"]["sampling"]["temperature"] == 0.7 and record["lyrics"]["sampling"]["top_k"] == 100
    assert record["lyrics"]["samples"]["texts"] == 2
    assert record["lyrics"]["samples"]["judge"]["texts"] == 2 and record["lyrics"]["human"]["flow"]["bars"] >= 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {png}" in err.replace("\n", "")

    assert main([*args, "--split", "train"]) == 0
    table, err = capsys.readouterr()
    for label in ("texts that loop", "consecutive bars that rhyme", "copied from train", "own-artist margin", "Shurik'n",
                  "syllables per bar", "rhyme density", "bars ending on a function word", "judge: attributed", "Cohen's",
                  "Flow and style per artist (train)"):
        assert label in table
    assert "judge was trained on the train split" in err

    assert main([*args, "--no-judge", "--confusion-png", str(png)]) == 2
    assert "--confusion-png draws the judge's attributions; drop --no-judge" in capsys.readouterr().err

    assert main([*args, "--temperature", "-1"]) == 2
    assert "temperature must be >= 0" in capsys.readouterr().err
    assert main([*args, "--samples", "-1"]) == 2
    assert "--samples must be 0 or more" in capsys.readouterr().err
    assert main([*args, "--rhyme-vowels", "5"]) == 2
    assert capsys.readouterr().err == "jaxrap: error: rhyme_vowels must be in [1, 4], got 5\n"


def test_the_samples_caption_names_bar_controls_and_guidance_only_when_on():
    from jaxrap.cli.evaluate import sampling_caption
    from jaxrap.sample.params import SamplingParams

    plain = sampling_caption(SamplingParams(seed=3))
    assert plain == ("samples: temperature 1.0, top-k 0, top-p 0.9, repetition penalty 1.1, no-repeat n-gram 0,"
                     " seed 3")
    controlled = sampling_caption(SamplingParams(seed=3, rhyme_scheme="AABB", syllables=12, artist="X",
                                                 artist_guidance=12.0))
    assert controlled.endswith(", scheme AABB, 12±2 syllables, 4 candidates, steering 6, 2 redraws,"
                               " artist guidance 12, seed 3")


def test_cli_measures_against_the_targets_of_the_sampling_flags(conditioned_model_dir, tiny_corpus_dir, capsys):
    args = ["eval", "--model", str(conditioned_model_dir), "--data", str(tiny_corpus_dir), "--block-size", "32",
            "--rhyme-scheme", "AABB", "--syllables", "6", "--syllable-tolerance", "3"]
    assert main([*args, "--json"]) == 0
    lyrics = json.loads(capsys.readouterr().out)["lyrics"]
    assert lyrics["flow_targets"] == {"rhyme_scheme": "AABB", "syllables": 6, "syllable_tolerance": 3, "rhyme_vowels": 1}
    flow = lyrics["human"]["flow"]
    assert flow["scheme_pairs"] > 0 and 0 <= flow["scheme_accuracy"] <= 1
    assert flow["syllables_within1"] <= flow["syllables_within2"] <= flow["syllables_within_tolerance"]

    assert main([*args, "--samples", "2", "--max-new-tokens", "24", "--seed", "0"]) == 0
    table = capsys.readouterr().out
    main_table, per_artist = table.split("Flow and style per artist")
    for label in ("AABB pairs that rhyme", "bars within ±1 / ±2", "within ±3 (the"):
        assert label in main_table
    assert "AABB" in per_artist and "6±3" in per_artist

    for flags, message in ((["--rhyme-scheme", "aabb"], "'a' (position 1) is not a scheme letter"),
                           (["--syllables", "0"], "syllables must be in [1, 32], got 0"),
                           (["--syllables", "6", "--syllable-tolerance", "-1"], "syllable_tolerance must be in [0, 32], got -1")):
        assert main([*args, *flags]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
