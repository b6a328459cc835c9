"""scripts/sweep_sampling.py's pure parts: grid, preset choice, Pareto front, interval, CSV resume."""

from __future__ import annotations

import importlib.util
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


def test_choose_preset_needs_half_the_loops_at_no_higher_perplexity(sweep):
    baseline = point(0.40, 10.0, name="original")
    rows = [
        baseline,
        point(0.25, 8.0, name="not enough fewer loops"),
        point(0.00, 12.0, name="no loops but higher perplexity"),
        point(0.20, 10.0, rep4=0.05, name="exactly half, same perplexity"),
        point(0.10, 9.5, rep4=0.30, name="fewest loops"),
        point(0.10, 9.0, rep4=0.20, name="fewest loops, less rep-4"),
    ]
    assert sweep.choose_preset(rows, baseline)["label"] == "fewest loops, less rep-4"
    assert sweep.choose_preset(rows[:4], baseline)["label"] == "exactly half, same perplexity"
    assert sweep.choose_preset(rows[:3], baseline) is None
    assert sweep.choose_preset(rows[:3], baseline, loop_reduction=0.3)["label"] == "not enough fewer loops"


def test_a_baseline_that_never_loops_cannot_be_beaten(sweep):
    baseline = point(0.0, 10.0, name="original")
    assert sweep.choose_preset([baseline, point(0.0, 5.0)], baseline) is None


def test_pareto_front_keeps_the_undominated_points_by_perplexity(sweep):
    rows = [point(0.5, 5.0, name="a"), point(0.6, 6.0, name="dominated by a"), point(0.3, 7.0, name="b"),
            point(0.3, 8.0, name="ties b's loops at a higher perplexity"), point(0.0, 12.0, name="c")]
    assert [row["label"] for row in sweep.pareto_front(rows)] == ["a", "b", "c"]


def test_wilson_interval_matches_the_closed_form(sweep):
    # Wilson: (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), z = 1.95996
    z, n = 1.959964, 100
    for successes in (0, 20, 100):
        p = successes / n
        centre, half = p + z * z / (2 * n), z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
        expected = ((centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n))
        assert sweep.wilson_interval(successes, n) == pytest.approx(expected, abs=1e-6)


def test_grid_points_start_with_the_references_once_and_label_them(sweep):
    args = sweep.parse_args(["--model", "m", "--data", "d", "--out", "o", "--temperature", "0.7", "0.9",
                             "--top-k", "0", "100", "--top-p", "0.9", "0.95", "--repetition-penalty", "1.0", "1.15",
                             "--no-repeat-ngram-size", "0"])
    points = sweep.grid_points(args)
    assert points[:2] == [sweep.ORIGINAL_APP, SamplingParams()]
    assert len(points) == 2 * 2 * 2 * 2  # both references are grid points too
    assert [sweep.label(p) for p in points[:2]] == ["original app", "jaxrap default"]
    assert sweep.label(SamplingParams(temperature=0.5)) == "grid"


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
