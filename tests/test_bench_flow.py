"""scripts/bench_flow.py's pure parts: the grid of settings, the targets, the choice of defaults."""

from __future__ import annotations

import pytest
from scripts_under_test import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_flow")


def test_settings_name_each_lever_and_skip_the_point_without_one(bench):
    args = bench.parse_args(
        ["--model", "m", "--data", "d", "--candidates", "1", "4", "--steering", "0", "2.5", "--redraws", "0", "3"]
    )
    settings = bench.settings(args)
    assert [(s.name, s.lever) for s in settings] == [
        (bench.SONGS, "songs"),
        (bench.UNCONSTRAINED, "none"),
        ("steering 2.5", "steering"),
        ("candidates 4, redraws 0", "candidates"),
        ("candidates 4, redraws 3", "candidates"),
        ("steering 2.5 + candidates 4, redraws 0", "both"),
        ("steering 2.5 + candidates 4, redraws 3", "both"),
    ]
    steering_only = settings[2].params
    assert (steering_only.candidates, steering_only.redraws, steering_only.rhyme_scheme, steering_only.syllables) == (
        1,
        0,
        "AABB",
        12,
    )
    assert settings[1].params.bar_controls is False and settings[1].params.max_bars == 8


def row(lever="both", scheme=0.95, within2=0.95, ratio=2.0, perplexity=110.0, copied=3.0, name="x", low=0.92, met=0.95):
    return {
        "name": name,
        "met": met,
        "lever": lever,
        "scheme_accuracy": scheme,
        "scheme_interval": (low, 0.99),
        "within2": within2,
        "within2_interval": (0.93, 0.99),
        "time_ratio": ratio,
        "sample_perplexity": perplexity,
        "mean_copied_run": copied,
    }


def test_targets_are_the_issues(bench):
    songs, unconstrained = row(perplexity=100.0), row(perplexity=110.0, ratio=1.0)  # gap log(1.1)
    assert all(bench.meets_targets(row(), unconstrained, songs).values())
    assert bench.meets_targets(row(perplexity=137.0), unconstrained, songs)["perplexity"]  # 1.37 <= 1.1 x 1.25
    assert not bench.meets_targets(row(perplexity=138.0), unconstrained, songs)["perplexity"]
    assert not bench.meets_targets(row(perplexity=72.0), unconstrained, songs)["perplexity"]  # too likely, as far
    missed = bench.meets_targets(row(scheme=0.89, within2=0.5, ratio=4.1, copied=3.5), unconstrained, songs)
    assert missed == {"scheme": False, "syllables": False, "time": False, "perplexity": True, "memorisation": False}


def test_defaults_meet_every_target_surely_then_miss_least_then_are_fastest(bench):
    songs, unconstrained = row(perplexity=100.0), row(perplexity=110.0, ratio=1.0)
    rows = [
        row(lever="steering", ratio=1.1, met=1.0, name="steering"),
        row(ratio=3.0, name="slow"),
        row(ratio=2.5, name="fast"),
        row(ratio=3.5, met=0.99, name="fewest misses"),
        row(ratio=2.0, low=0.89, met=1.0, name="interval below the target"),
        row(ratio=1.5, scheme=0.8, met=1.0, name="misses the scheme"),
    ]
    assert bench.choose_defaults(rows, unconstrained, songs)["name"] == "fewest misses"
    assert bench.choose_defaults(rows[:3], unconstrained, songs)["name"] == "fast"
    assert bench.choose_defaults(rows[4:], unconstrained, songs)["name"] == "interval below the target"
    short = [row(ratio=1.5, scheme=0.8, met=0.9, name="a"), row(ratio=1.2, scheme=0.85, met=0.8, name="b")]
    assert bench.choose_defaults(short, unconstrained, songs)["name"] == "a"  # most targets, then fewest misses
    assert bench.choose_defaults([row(lever="candidates")], unconstrained, songs) is None


def test_rhyme_vowels_are_a_grid_axis_and_several_are_held_to_issue_20s_targets(bench):
    args = bench.parse_args(["--model", "m", "--data", "d", "--candidates", "4", "--steering", "6", "--rhyme-vowels", "1", "2"])
    settings = bench.settings(args)
    assert [(s.name, s.vowels) for s in settings] == [
        (bench.SONGS, 1), (bench.UNCONSTRAINED, 1),
        ("steering 6 + candidates 4, redraws 2", 1), ("steering 6 + candidates 4, redraws 2, 2 vowels", 2),
    ]
    assert settings[3].params.rhyme_vowels == 2 and settings[1].params.rhyme_vowels == 1
    songs, unconstrained = row(perplexity=100.0), {**row(perplexity=110.0, ratio=1.0), "function_word_share": 0.05}
    two = {**row(scheme=0.8, ratio=5.0), "vowels": 2, "rhyme_density": 1.8, "function_word_share": 0.05}
    assert all(bench.row_targets(two, unconstrained, songs).values())
    missed = {**two, "scheme_accuracy": 0.79, "rhyme_density": 1.3, "time_ratio": 5.1, "function_word_share": 0.06}
    assert bench.row_targets(missed, unconstrained, songs) == {
        "scheme": False, "density": False, "time": False, "perplexity": True, "function words": False
    }
    assert bench.choose_defaults([two], unconstrained, songs) is None  # defaults come from one-vowel settings


def test_pair_rhyme_length_counts_the_vowels_the_schemes_pairs_share(bench):
    bars = ["J'traîne au quartier", "Toute ma vie", "Je donne mon avis", "Sous la pluie", "Tu fais du bruit"]
    # AABB from the prompt's bar: (quartier, vie) share nothing (a-e / a-i), (avis, pluie) a-i; bar 4 opens a group
    assert bench.pair_rhyme_length(bars, "AABB", first=1) == (0 + 2, 2)
    # without the prompt: (vie, avis) a-i, (pluie, bruit) i only (a-i / y-i)
    assert bench.pair_rhyme_length(bars[1:], "AABB", first=0) == (2 + 1, 2)
    assert bench.pair_rhyme_length(bars[1:], "AABB", first=2) == (1, 1)  # pairs before `first` are the prompt's
