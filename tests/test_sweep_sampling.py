"""scripts/sweep_sampling.py's pure parts: grid, preset choice and ranking, interval, CSV resume."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from jaxrap.sample.params import SamplingParams

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "sweep_sampling.py"


@pytest.fixture(scope="module")
def sweep():
    spec = importlib.util.spec_from_file_location("sweep_sampling", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_rows_read_back_with_the_same_key(sweep, tmp_path):
    path = tmp_path / "sweep.csv"
    params = SamplingParams(temperature=0.8, top_k=0, top_p=0.95, repetition_penalty=1.2)
    row = {"label": "grid", "model": "runs/x", "seed": 3, "samples": 8, "max_new_tokens": 64,
           **{name: getattr(params, name) for name in (*sweep.GRID_FIELDS, "repetition_window")},
           **dict.fromkeys(sweep.METRIC_FIELDS, 0.25)}
    sweep.append_row(path, row)
    sweep.append_row(path, {**row, "seed": 4})
    first, second = sweep.read_rows(path)
    assert sweep.row_key(first) == sweep.row_key(row) != sweep.row_key(second)
    assert first["loop_rate"] == 0.25 and first["temperature"] == 0.8
