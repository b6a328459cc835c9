"""scripts/sweep_sampling.py's pure parts: grid, preset choice and ranking, interval, CSV resume (older
CSVs included), flow and judge columns, the table, bad targets."""

from __future__ import annotations

import math

import pytest
from invented_lyrics import ARTIST_STYLES, invented_artist_text, save_corpus
from scripts_under_test import load_script

from jaxrap.errors import JaxrapError
from jaxrap.evaluate.artist_classifier import ArtistClassifier
from jaxrap.evaluate.flow_report import FlowTargets
from jaxrap.evaluate.samples import EvalPrompt
from jaxrap.sample.params import SamplingParams


@pytest.fixture(scope="module")
def sweep():
    return load_script("sweep_sampling")


def point(loop_rate: float, perplexity: float, rep4: float = 0.1, name: str = "") -> dict:
    return {"label": name, "loop_rate": loop_rate, "sample_perplexity": perplexity, "rep4": rep4}


def test_choose_preset_needs_half_the_loops_at_a_perplexity_no_farther_from_the_reference(sweep):
    # reference (validation continuations) 100; the original's samples are 4x too likely (25)
    baseline = point(0.40, 25.0, name="original")
    rows = [
        baseline,
        point(0.25, 50.0, name="not enough fewer loops"),
        point(0.00, 10.0, name="no loops but degenerate: 10x too likely"),
        point(0.00, 500.0, name="no loops but noise: 5x too unlikely"),
        point(0.20, 400.0, name="exactly half, exactly as far on the other side"),
        point(0.10, 60.0, name="fewest loops"),
        point(0.10, 150.0, name="fewest loops, nearest the reference"),
    ]
    assert sweep.choose_preset(rows, baseline, 100.0)["label"] == "fewest loops, nearest the reference"
    assert sweep.choose_preset(rows[:5], baseline, 100.0)["label"] == "exactly half, exactly as far on the other side"
    assert sweep.choose_preset(rows[:4], baseline, 100.0) is None
    assert sweep.choose_preset(rows[:4], baseline, 100.0, loop_reduction=0.3)["label"] == "not enough fewer loops"


def test_choose_preset_breaks_ties_by_rep4(sweep):
    baseline = point(0.40, 25.0, name="original")
    rows = [baseline, point(0.0, 50.0, rep4=0.2, name="repeats"), point(0.0, 200.0, rep4=0.1, name="repeats less")]
    assert sweep.choose_preset(rows, baseline, 100.0)["label"] == "repeats less"  # 50 and 200 are as far from 100


def test_a_baseline_that_never_loops_cannot_be_beaten(sweep):
    baseline = point(0.0, 25.0, name="original")
    assert sweep.choose_preset([baseline, point(0.0, 100.0)], baseline, 100.0) is None


def test_preset_rank_orders_by_loops_then_perplexity_gap_then_rep4(sweep):
    rows = [point(0.1, 100.0, name="loops"), point(0.0, 400.0, name="far"), point(0.0, 50.0, rep4=0.3, name="near"),
            point(0.0, 200.0, rep4=0.1, name="as near, repeats less")]
    ranked = sorted(rows, key=lambda r: sweep.preset_rank(r, 100.0))
    assert [row["label"] for row in ranked] == ["as near, repeats less", "near", "far", "loops"]


def test_wilson_interval_matches_the_closed_form(sweep):
    # Wilson: (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), z = 1.95996
    z, n = 1.959964, 100
    for successes in (0, 20, 100):
        p = successes / n
        centre, half = p + z * z / (2 * n), z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
        expected = ((centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n))
        assert sweep.wilson_interval(successes, n) == pytest.approx(expected, abs=1e-6)


def test_grid_points_start_with_the_references_once_and_label_them(sweep):
    original, default = sweep.ORIGINAL_APP, SamplingParams()
    grid = {name: [str(getattr(original, name)), str(getattr(default, name))] for name in sweep.GRID_FIELDS}
    args = sweep.parse_args(["--model", "m", "--data", "d", "--out", "o",
                             *(arg for name, values in grid.items() for arg in (f"--{name.replace('_', '-')}", *values))])
    points = sweep.grid_points(args)
    assert points[:2] == [original, default]
    assert len(points) == math.prod(len(set(values)) for values in grid.values())  # both references are grid points
    assert [sweep.label(p) for p in points[:2]] == ["original app", "jaxrap default"]
    assert sweep.label(SamplingParams(temperature=0.05)) == "grid"


def test_samples_must_split_evenly_over_prompts(sweep):
    with pytest.raises(SystemExit):
        sweep.parse_args(["--model", "m", "--data", "d", "--out", "o", "--samples", "10", "--samples-per-prompt", "4"])


def grid_row(sweep, params: SamplingParams, targets: FlowTargets = FlowTargets(), **metrics) -> dict:
    return {"label": "grid", "model": "runs/x", "seed": 3, "samples": 8, "max_new_tokens": 64, **sweep.target_values(targets),
            **{name: getattr(params, name) for name in (*sweep.GRID_FIELDS, "repetition_window")},
            **dict.fromkeys(sweep.METRIC_FIELDS, 0.25), **metrics}


def test_rows_read_back_with_the_same_key(sweep, tmp_path):
    path = tmp_path / "sweep.csv"
    params = SamplingParams(temperature=0.8, top_k=0, top_p=0.95, repetition_penalty=1.2)
    row = grid_row(sweep, params)
    sweep.append_row(path, row)
    sweep.append_row(path, {**row, "seed": 4})
    targeted = grid_row(sweep, params, FlowTargets("AABB", 12))
    sweep.append_row(path, targeted)
    first, second, third = sweep.read_rows(path)
    assert sweep.row_key(first) == sweep.row_key(row) != sweep.row_key(second)
    assert sweep.row_key(third) == sweep.row_key(targeted) != sweep.row_key(first)  # targets make another run
    assert first["loop_rate"] == 0.25 and first["temperature"] == 0.8 and first["rhyme_scheme"] == ""
    assert (third["rhyme_scheme"], third["syllables"], third["syllable_tolerance"]) == ("AABB", "12", "2")


# sweep.csv's header before the flow and judge columns, less top_k: a grid axis added since
OLD_HEADER = ("label,model,seed,samples,max_new_tokens,temperature,top_p,repetition_penalty,no_repeat_ngram_size,"
              "repetition_window,texts,loop_rate,loop_rate_low,loop_rate_high,rep4,distinct1,distinct2,rhyme_rate,"
              "sample_perplexity,tokens,seconds")


def test_an_older_sweep_csv_loads_resumes_and_takes_the_new_columns(sweep, tmp_path):
    path = tmp_path / "sweep.csv"
    path.write_text(OLD_HEADER + "\ngrid,runs/x,3,8,64,0.8,0.95,1.2,0,256,8,0.125,0.02,0.47,0.01,0.5,0.7,0.3,101.5,500,12.5\n")
    (old,) = sweep.read_rows(path)
    params = SamplingParams(temperature=0.8, top_p=0.95, repetition_penalty=1.2)
    assert old["top_k"] == 0.0  # the missing axis reads as SamplingParams' default
    assert old["rhyme_scheme"] == old["rhyme_density"] == old["judge_kappa"] == ""
    assert old["loop_rate"] == 0.125 and old["seconds"] == 12.5
    assert sweep.row_key(old) == sweep.row_key(grid_row(sweep, params))  # the same point: not measured again

    new = grid_row(sweep, params.replace(temperature=1.0), rhyme_density=1.5, judge_kappa=0.1)
    sweep.append_row(path, new)
    assert path.read_text().splitlines()[0] == ",".join(sweep.COLUMNS)  # rewritten with the new header
    again, added = sweep.read_rows(path)
    assert again == old and added["rhyme_density"] == 1.5 and added["judge_kappa"] == 0.1

    path.write_text(OLD_HEADER + ",guidance_from_the_future\n")
    with pytest.raises(JaxrapError, match=r"column\(s\) \['guidance_from_the_future'\] are not this script's"):
        sweep.read_rows(path)


def test_flow_and_judge_columns_on_invented_texts(sweep, tmp_path):
    prompts = [EvalPrompt("Kilo", "Kilo", "J'écris sur le mur\n", ""), EvalPrompt("Ondine", "unknown", "Je vois la mer\n", "")]
    texts = [["La vie est dure\nOn tourne en rond\nSous le plafond\n"], ["Au bout de l'hiver\nJe rentre la nuit\n"]]
    # AABB: (mur, dure), (rond, plafond), (mer, hiver) rhyme; 4+4+4 + 5+4 syllables, 4 of 5 bars within 4±0
    flow = sweep.flow_columns(prompts, texts, FlowTargets("AABB", 4, 0))
    assert flow == {"scheme_accuracy": 1.0, "syllable_accuracy": 0.8, "syllables_per_bar": 4.2,
                    "rhyme_density": pytest.approx((0 + 1 + 0) / 3)}
    untargeted = sweep.flow_columns(prompts, texts, FlowTargets())
    assert untargeted["scheme_accuracy"] == untargeted["syllable_accuracy"] == ""

    corpus = save_corpus(tmp_path / "corpus", [(invented_artist_text(a, seed, bars=16), a) for a in ARTIST_STYLES for seed in range(4)])
    judge = ArtistClassifier.train(corpus, seed=0)
    written = [[invented_artist_text("Kilo", 50, bars=4), invented_artist_text("Ondine", 51, bars=4)], ["ignored: unknown"]]
    judged = sweep.judge_columns(judge, prompts, written)  # for Kilo: one Kilo text, one Ondine text
    assert judged == {"judge_accuracy": 0.5, "judge_balanced_accuracy": 0.5, "judge_kappa": 0.0}
    assert sweep.judge_columns(None, prompts, written) == dict.fromkeys(sweep.JUDGE_FIELDS, "")


def test_the_table_shows_flow_and_judge_columns_and_ranks_by_kappa(sweep, capsys):
    targets = FlowTargets("AABB", 12)
    human = {**grid_row(sweep, SamplingParams(), targets), "label": sweep.HUMAN, "loop_rate": 0.1, "sample_perplexity": 100.0}
    original = grid_row(sweep, sweep.ORIGINAL_APP, targets, label="original app", loop_rate=0.2, sample_perplexity=20.0,
                        judge_kappa=0.05, judge_balanced_accuracy=0.2, judge_accuracy=0.3)
    styled = grid_row(sweep, SamplingParams(temperature=0.5), targets, loop_rate=0.2, sample_perplexity=20.0,
                      judge_kappa=0.4, judge_balanced_accuracy=0.5, judge_accuracy=0.5)
    older = grid_row(sweep, SamplingParams(temperature=0.7), targets, **dict.fromkeys((*sweep.FLOW_FIELDS, *sweep.JUDGE_FIELDS), ""))
    rows = [original, styled, older]
    assert sorted([original, styled], key=sweep.attribution_rank) == [styled, original]
    sweep.print_table(rows, human, original, None, top=3)
    table = capsys.readouterr().out
    for header in ("density", "AABB acc.", "12±2 syl.", "judge acc. / bal. / kappa", "then by the judge's kappa"):
        assert header in table
    assert "50.0% / 50.0% / 0.400" in table and "- / - / -" in table  # the older row has no judge
    last_section = table.split("judge's kappa")[1].rsplit("├", 1)[1]
    assert last_section.index("0.400") < last_section.index("0.050")  # by kappa, the older row left out
    assert "- / - / -" not in last_section


@pytest.mark.parametrize("flags,message", [
    (["--rhyme-scheme", "aabb"], "'a' (position 1) is not a scheme letter"),
    (["--syllables", "0"], "syllables must be in [1, 32], got 0"),
    (["--syllables", "12", "--syllable-tolerance", "-1"], "syllable_tolerance must be in [0, 32], got -1"),
])
def test_bad_targets_are_refused_before_the_model_loads(sweep, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        sweep.parse_args(["--model", "m", "--data", "d", "--out", "o", *flags])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]


def test_the_guidance_axis_is_swept_on_a_model_with_artists(sweep, conditioned_model_dir, tiny_corpus_dir, tmp_path):
    flags = ["--data", str(tiny_corpus_dir), "--out", str(tmp_path), "--samples", "2", "--samples-per-prompt", "1",
             "--max-new-tokens", "8", "--temperature", "1.0", "--top-p", "1.0", "--repetition-penalty", "1.0",
             "--no-repeat-ngram-size", "0", "--artist-guidance", "1", "3"]
    assert sweep.main(["--model", str(conditioned_model_dir), *flags]) == 0
    rows = [row for row in sweep.read_rows(tmp_path / "sweep.csv") if row["label"] == "grid"]
    assert sorted(row["artist_guidance"] for row in rows) == [1.0, 3.0]
    assert all(row["judge_accuracy"] != "" for row in rows)  # both points judged


def test_guidance_on_a_model_without_artists_is_refused_before_sampling(sweep, tiny_lyrics_model_dir, tiny_corpus_dir, tmp_path):
    with pytest.raises(JaxrapError, match="--artist-guidance other than 1 needs a model trained with artist tokens"):
        sweep.main(["--model", str(tiny_lyrics_model_dir), "--data", str(tiny_corpus_dir), "--out", str(tmp_path),
                    "--artist-guidance", "2"])
    assert not (tmp_path / "sweep.csv").exists()
