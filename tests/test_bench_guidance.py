"""scripts/bench_guidance.py's pure parts: weighted attribution against scikit-learn, the paired
bootstrap over prompts, intervals of ratios, the arguments."""

from __future__ import annotations

import numpy as np
import pytest
from scripts_under_test import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_guidance")


def test_weighted_attribution_equals_scikit_learns_scores(bench):
    from sklearn.metrics import accuracy_score, cohen_kappa_score

    rng = np.random.default_rng(0)
    requested, attributed = rng.integers(4, size=200), rng.integers(4, size=200)
    attributed[:80] = requested[:80]  # better than chance
    weight = rng.integers(0, 3, size=200)
    accuracy, kappa = bench.weighted_attribution(requested, attributed, weight, 4)
    assert accuracy == pytest.approx(accuracy_score(requested, attributed, sample_weight=weight))
    assert kappa == pytest.approx(cohen_kappa_score(requested, attributed, sample_weight=weight))


def test_the_bootstrap_resamples_prompts_and_pairs_the_weights(bench):
    rng = np.random.default_rng(1)
    prompt_of = np.repeat(np.arange(40), 3)  # 40 prompts x 3 samples
    requested = np.repeat(rng.integers(5, size=40), 3)
    guided = np.where(rng.random(120) < 0.6, requested, rng.integers(5, size=120))
    plain = np.where(rng.random(120) < 0.2, requested, rng.integers(5, size=120))
    boot = bench.bootstrap_attribution(requested, np.stack([plain, plain, guided]), prompt_of, 5, draws=300)
    assert boot["accuracy"].shape == boot["kappa"].shape == (300, 3)
    np.testing.assert_array_equal(boot["accuracy"][:, 0], boot["accuracy"][:, 1])  # the same prompts for every W
    assert bench.interval(bench.ratio(boot["accuracy"][:, 1], boot["accuracy"][:, 0])) == (1.0, 1.0)
    point = bench.weighted_attribution(requested, guided, np.ones(120), 5)[0]
    low, high = bench.interval(boot["accuracy"][:, 2])
    assert low < point < high and high - low < 0.4
    # resampling whole prompts: a prompt's samples always come together
    single = bench.bootstrap_attribution(requested, guided[None], prompt_of, 5, draws=50)["accuracy"][:, 0]
    assert np.all(np.isclose(single * 120 % 1, 0) | np.isclose(single * 120 % 1, 1))  # counts in whole samples


def test_a_ratio_over_zero_counts_as_above_every_finite_one(bench):
    ratios = bench.ratio(np.array([0.2, 0.3, 0.1, 0.0]), np.array([0.1, 0.0, 0.1, 0.0]))
    assert np.isinf(ratios[1]) and np.isnan(ratios[3])
    assert bench.interval(ratios) == (1.0, np.inf)  # the 0 / 0 draw is left out


def test_arguments_are_checked(bench):
    assert bench.parse_args(["--model", "m", "--data", "d", "--out", "o"]).weights == [1.0, 1.5, 2.0, 3.0, 5.0]
    for bad in (["--weights", "2", "1"], ["--weights", "1", "2", "2"], ["--samples-per-prompt", "0"]):
        with pytest.raises(SystemExit):
            bench.parse_args(["--model", "m", "--data", "d", "--out", "o", *bad])


def test_the_whole_script_runs_on_a_tiny_model(bench, conditioned_model_dir, tiny_corpus_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--model", str(conditioned_model_dir), "--data", str(tiny_corpus_dir), "--out", str(out), "--prompts", "4",
            "--samples-per-prompt", "2", "--max-new-tokens", "12", "--weights", "1", "3", "--timing-rounds", "1",
            "--timing-tokens", "4"]
    assert bench.main(args) == 0
    import json

    result = json.loads((out / "guidance.json").read_text())
    assert list(result["weights"]) == ["1", "3"] and result["run"]["prompts"] == 4
    one, three = result["weights"]["1"], result["weights"]["3"]
    assert one["texts"] == three["texts"] == 8 and one["time_ratio"] == 1.0 and three["time_ratio"] > 0
    saved = json.loads((out / "samples-w3.json").read_text())
    assert bench.main(args) == 0  # the saved samples are reused
    assert json.loads((out / "samples-w3.json").read_text()) == saved
    assert "| 3 |" in capsys.readouterr().out
