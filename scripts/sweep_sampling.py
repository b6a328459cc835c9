"""Sampling sweep: how often a trained model's samples loop, and how likely it finds them, over a
temperature x top-p x repetition-penalty x no-repeat-n-gram grid.

    python scripts/sweep_sampling.py --model runs/tiny_cpu --data data/rap --out runs/sweep_tiny_cpu

Every grid point, plus the original app's settings (temperature 0.7, top-k 100, top-p 0.9, no
repetition penalty) and jaxrap's default (``SamplingParams()``), writes the same ``--samples``
texts: ``--samples-per-prompt`` after each of the first bars of validation songs that
``jaxrap eval --samples`` uses (``evaluate.samples``), one seed for every point (the same
random numbers, so points differ by their settings rather than their draws). Each point is
scored as ``jaxrap eval`` scores samples:

- loop rate: the share of samples that fall into a loop (``evaluate.repetition.detect_loop``),
  with its 95% Wilson interval (samples of one prompt share it, so the interval is a little
  optimistic; rerun with another ``--seed`` for the seed-to-seed spread);
- rep-4, distinct-1/2, rhyme rate (``evaluate.lyric_metrics``);
- sample perplexity: the model's perplexity of its own samples at temperature 1, no filters
  (``evaluate.samples.continuation_perplexity``). Low is text the model finds likely: fluent,
  or degenerate (a loop is very likely), so it is shown beside the perplexity of the songs'
  real continuations (the ``validation continuations`` row, cut to the same token budget);
- flow (``evaluate.flow_report``): rhyme density and syllables per bar always; scheme accuracy
  with ``--rhyme-scheme``, and syllable accuracy (the share of bars within ``--syllable-tolerance``
  of ``--syllables``) with a syllable target. Every point's samples are written with these
  targets (the sampler's bar controls, as ``jaxrap generate --rhyme-scheme ...``);
- for a model with two named artists or more, the independent artist judge's attribution of the
  samples to the requested artist (``evaluate.artist_classifier``, trained once per process on
  the train split; the validation continuations' row is its ceiling): accuracy, balanced
  accuracy and Cohen's kappa. The table ranks the points by kappa too (then balanced accuracy,
  then accuracy): a sampler that writes like the judge's favourite artist raises accuracy, not
  kappa.

Writes ``sweep.csv`` (one row per point, the validation continuations first) and ``sweep.png``
(loop rate against sample perplexity) in ``--out``. Rows are appended as points finish, and a
rerun skips points already in ``sweep.csv`` for the same model, samples, tokens, seed and flow
targets, so a long sweep can run in several sittings, or in parts that are not one product (the
plot and the table show every point of the run in ``sweep.csv``). A ``sweep.csv`` written before
a column existed still loads (and is rewritten with the new header on the next append): a
missing grid column reads as ``SamplingParams``' default, a missing target or metric as empty.

The suggested preset (``choose_preset``) loops at most half as often as the original app at a
sample perplexity no worse than its, where worse means farther from the validation
continuations' perplexity (in log ratio), not higher: text a model finds much likelier than
real lyrics is its stock phrases and loops (the lowest perplexities in the grid belong to
temperature 0.5), text it finds much less likely is noise. Among those points: the lowest loop
rate, then the perplexity nearest the validation continuations', then the lowest rep-4.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import itertools
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

from jaxrap.errors import JaxrapError
from jaxrap.evaluate.flow_report import FlowTargets
from jaxrap.sample.params import SamplingParams

ORIGINAL_APP = SamplingParams(temperature=0.7, top_k=100, top_p=0.9, repetition_penalty=1.0)
# The swept SamplingParams fields: field -> (table header, default grid values, help). One more
# axis is one more line: its flag (--field-name, values of the field's type), its CSV column (an
# older sweep.csv without it reads as the field's default) and its table column follow.
GRID = {
    "temperature": ("T", [0.5, 0.7, 0.9, 1.0], "grid values"),
    "top_k": ("top-k", [0], "grid values (0: off)"),
    "top_p": ("top-p", [0.9, 1.0], "grid values (1: off)"),
    "repetition_penalty": ("penalty", [1.0, 1.1, 1.2, 1.3], "grid values (1: off)"),
    "no_repeat_ngram_size": ("no-repeat", [0, 4], "grid values (0: off)"),
    "artist_guidance": ("W", [1.0], "grid values (1: off; others need a model trained with artist tokens)"),
}
GRID_FIELDS = tuple(GRID)
TARGET_FIELDS = tuple(field.name for field in dataclasses.fields(FlowTargets))  # "" in the CSV: none
RUN_FIELDS = ("model", "seed", "samples", "max_new_tokens", *TARGET_FIELDS)  # what makes rows of two runs comparable
FLOW_FIELDS = ("scheme_accuracy", "syllable_accuracy", "syllables_per_bar", "rhyme_density")
JUDGE_FIELDS = ("judge_accuracy", "judge_balanced_accuracy", "judge_kappa")
METRIC_FIELDS = ("texts", "loop_rate", "loop_rate_low", "loop_rate_high", "rep4", "distinct1", "distinct2",
                 "rhyme_rate", "sample_perplexity", "tokens", "seconds", *FLOW_FIELDS, *JUDGE_FIELDS)
COLUMNS = ("label", *RUN_FIELDS, *GRID_FIELDS, "repetition_window", *METRIC_FIELDS)
# What a column an older sweep.csv lacks reads as: the default of a SamplingParams field, else empty.
MISSING = {name: getattr(SamplingParams(), name, "") if name in (*GRID_FIELDS, "repetition_window") else "" for name in COLUMNS}
HUMAN = "validation continuations"


def grid_points(args: argparse.Namespace) -> list[SamplingParams]:
    """The original app's settings, jaxrap's default, then the grid, without duplicates."""
    grid = [
        SamplingParams(**dict(zip(GRID_FIELDS, values)))
        for values in itertools.product(*(getattr(args, name) for name in GRID_FIELDS))
    ]
    return list(dict.fromkeys([ORIGINAL_APP, SamplingParams(), *grid]))


def settings(point: SamplingParams | dict) -> tuple[float, ...]:
    """The swept settings of SamplingParams or of a row, comparable between the two."""
    get = point.get if isinstance(point, dict) else lambda name: getattr(point, name)
    return tuple(float(get(name)) for name in (*GRID_FIELDS, "repetition_window"))


def row_key(row: dict) -> tuple:
    """Identifies a point of a run: rows with the same key measured the same thing."""
    return (*(str(row[name]) for name in RUN_FIELDS), *settings(row))


def label(point: SamplingParams | dict) -> str:
    marks = [name for name, preset in (("original app", ORIGINAL_APP), ("jaxrap default", SamplingParams()))
             if settings(point) == settings(preset)]
    return " + ".join(marks) or "grid"


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sound near 0 and 1, unlike the normal one)."""
    from scipy.stats import binomtest

    interval = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)


def perplexity_gap(row: dict, reference_perplexity: float) -> float:
    """|log(sample perplexity / reference)|: how far a row's samples are from being as likely,
    to the model, as the reference (the validation continuations), too likely or too unlikely."""
    return abs(math.log(row["sample_perplexity"] / reference_perplexity))


def preset_rank(row: dict, reference_perplexity: float) -> tuple[float, float, float]:
    """Sort key of the candidates, best first: loop rate, then ``perplexity_gap``, then rep-4."""
    return row["loop_rate"], perplexity_gap(row, reference_perplexity), row["rep4"]


def meets_criterion(row: dict, baseline: dict, reference_perplexity: float, loop_reduction: float = 0.5) -> bool:
    """Loops at most ``1 - loop_reduction`` times as often as ``baseline`` (and less often: a
    baseline that never loops cannot be beaten) with a ``perplexity_gap`` no larger than its."""
    return (row["loop_rate"] <= (1 - loop_reduction) * baseline["loop_rate"] and row["loop_rate"] < baseline["loop_rate"]
            and perplexity_gap(row, reference_perplexity) <= perplexity_gap(baseline, reference_perplexity))


def choose_preset(rows: Sequence[dict], baseline: dict, reference_perplexity: float, *,
                  loop_reduction: float = 0.5) -> dict | None:
    """The best row by ``preset_rank`` among those that ``meets_criterion``; None when none does."""
    qualifying = [row for row in rows if meets_criterion(row, baseline, reference_perplexity, loop_reduction)]
    return min(qualifying, key=lambda r: preset_rank(r, reference_perplexity), default=None)


def attribution_rank(row: dict) -> tuple[float, float, float]:
    """Sort key of the points by the judge, best first: kappa, then balanced accuracy, then accuracy."""
    return -row["judge_kappa"], -row["judge_balanced_accuracy"], -row["judge_accuracy"]


def target_values(targets: FlowTargets) -> dict:
    """The targets as CSV values: "" for none (the tolerance too, without a syllable target; the
    rhyme vowels without a scheme or at 1, so that a sweep.csv from before that column keys alike)."""
    values = {name: "" if value is None else value for name, value in targets.as_dict().items()}
    return {**values, "syllable_tolerance": values["syllable_tolerance"] if targets.syllables is not None else "",
            "rhyme_vowels": targets.rhyme_vowels if targets.rhyme_scheme is not None and targets.rhyme_vowels != 1 else ""}


def flow_columns(prompts, texts: list[list[str]], targets: FlowTargets) -> dict:
    """The flow columns of ``texts[i]`` after ``prompts[i]``; "" for what needs a target not given."""
    from jaxrap.evaluate.flow_report import flow_stats

    flow = flow_stats(prompts, texts, targets).overall
    return {
        "scheme_accuracy": flow.scheme.accuracy if targets.rhyme_scheme is not None else "",
        "syllable_accuracy": flow.syllables.share_within_tolerance if targets.syllables is not None else "",
        "syllables_per_bar": flow.syllables.mean,
        "rhyme_density": flow.density.density,
    }


def judge_columns(judge, prompts, texts: list[list[str]]) -> dict:
    """The judge's columns ("" without a judge, or without a prompt asking for one of its artists)."""
    from jaxrap.evaluate.report import judge_column

    result = judge_column(judge, prompts, texts) if judge is not None else None
    if result is None:
        return dict.fromkeys(JUDGE_FIELDS, "")
    return {"judge_accuracy": result.accuracy, "judge_balanced_accuracy": result.balanced_accuracy, "judge_kappa": result.kappa}


def measure(generator, scorer, prompts, texts: list[list[str]], targets: FlowTargets = FlowTargets(), judge=None) -> dict:
    """The metric columns of ``texts[i]``, the texts written after ``prompts[i]``."""
    from jaxrap.evaluate.lyric_metrics import lyric_stats
    from jaxrap.evaluate.samples import continuation_perplexity

    flat = [text for prompt_texts in texts for text in prompt_texts]
    stats = lyric_stats(flat)
    perplexity = continuation_perplexity(scorer, generator, prompts, texts)
    low, high = wilson_interval(round(stats.loop_rate * stats.texts), stats.texts)
    return {
        "texts": stats.texts, "loop_rate": stats.loop_rate, "loop_rate_low": low, "loop_rate_high": high,
        "rep4": stats.rep4, "distinct1": stats.distinct1, "distinct2": stats.distinct2, "rhyme_rate": stats.rhyme_rate,
        "sample_perplexity": perplexity.perplexity, "tokens": perplexity.tokens,
        **flow_columns(prompts, texts, targets), **judge_columns(judge, prompts, texts),
    }


def read_rows(path: Path) -> list[dict]:
    """sweep.csv's rows, numbers as floats, columns it lacks filled from ``MISSING`` (an empty
    list when there is no file yet)."""
    if not path.exists():
        return []
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
    unknown = [name for name in reader.fieldnames or () if name not in COLUMNS]
    if unknown:
        raise JaxrapError(f"{path}: column(s) {unknown} are not this script's; use another --out")
    numeric = set(GRID_FIELDS) | set(METRIC_FIELDS) | {"repetition_window"}
    rows = [{name: row.get(name, MISSING[name]) for name in COLUMNS} for row in rows]
    return [{name: float(value) if name in numeric and value != "" else value for name, value in row.items()} for row in rows]


def append_row(path: Path, row: dict) -> None:
    """Append ``row`` to sweep.csv; a file with an older header is first rewritten with this one
    (to a temporary file, then moved over it: an interruption loses nothing)."""
    if path.exists():
        with path.open(newline="") as file:
            header = next(csv.reader(file), [])
        if header != list(COLUMNS):
            rows = read_rows(path)
            temporary = path.with_name(path.name + ".tmp")
            with temporary.open("w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
            os.replace(temporary, path)
    new = not path.exists()
    with path.open("a", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def plot(rows: Sequence[dict], human: dict, preset: dict | None, path: Path) -> None:
    """Loop rate against sample perplexity: grid points coloured by repetition penalty, shaped
    by no-repeat n-gram size, the original app, jaxrap's default and the preset marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(12, 6), layout="constrained")
    x = [row["sample_perplexity"] for row in rows]
    y = [100 * row["loop_rate"] for row in rows]
    axes.errorbar(x, y, yerr=[[100 * (r["loop_rate"] - r["loop_rate_low"]) for r in rows],
                              [100 * (r["loop_rate_high"] - r["loop_rate"]) for r in rows]],
                  fmt="none", ecolor="0.85", elinewidth=0.8, zorder=1)
    penalties = sorted({row["repetition_penalty"] for row in rows})
    colours = matplotlib.colormaps["viridis"].resampled(max(len(penalties), 2))
    shapes = dict(zip(sorted({row["no_repeat_ngram_size"] for row in rows}), "osD^vP*"))
    for (penalty, size), group in itertools.groupby(
        sorted(rows, key=lambda r: (r["repetition_penalty"], r["no_repeat_ngram_size"])),
        key=lambda r: (r["repetition_penalty"], r["no_repeat_ngram_size"]),
    ):
        group = list(group)
        axes.scatter([r["sample_perplexity"] for r in group], [100 * r["loop_rate"] for r in group],
                     color=colours(penalties.index(penalty)), marker=shapes[size], s=28, zorder=2,
                     label=f"penalty {penalty:g}, no-repeat {int(size) or 'off'}")
    original = next(row for row in rows if "original app" in row["label"])
    default = next(row for row in rows if "jaxrap default" in row["label"])
    # the criterion's region: a sample perplexity at most as far from the validation
    # continuations' as the original's, on either side (log scale), and half its loop rate
    low, high = sorted((original["sample_perplexity"], human["sample_perplexity"] ** 2 / original["sample_perplexity"]))
    axes.add_patch(matplotlib.patches.Rectangle(
        (low, 0), high - low, 50 * original["loop_rate"], color="tab:green", alpha=0.12, zorder=0,
        label="half the original's loop rate or less, perplexity no farther from the validation continuations'"))
    marks = [(original, "*", "tab:red", "original app (T 0.7, top-k 100, top-p 0.9)"), (default, "X", "black", "jaxrap default")]
    if preset is not None:
        marks.append((preset, "o", "none", "suggested preset"))
    for row, marker, colour, name in marks:
        axes.scatter([row["sample_perplexity"]], [100 * row["loop_rate"]], marker=marker, s=220 if marker == "o" else 160,
                     facecolors=colour, edgecolors="tab:green" if marker == "o" else colour, linewidths=2, zorder=3, label=name)
    axes.axvline(human["sample_perplexity"], color="tab:blue", linestyle="--", linewidth=1,
                 label=f"validation continuations (perplexity {human['sample_perplexity']:.1f},"
                       f" loop rate {human['loop_rate']:.1%})")
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes.xaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
    axes.set_xlim(0.9 * min([*x, human["sample_perplexity"]]), 1.1 * max([*x, human["sample_perplexity"]]))
    axes.set_ylim(bottom=0)
    axes.set_xlabel("sample perplexity (the model's own, temperature 1, no filters; log scale)")
    axes.set_ylabel(f"samples that loop, % (95% Wilson interval; {int(original['texts'])} samples per point)")
    axes.set_title(f"{original['model']}: sampling sweep, {int(original['max_new_tokens'])} new tokens, seed {original['seed']}")
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    figure.savefig(path, dpi=130)
    plt.close(figure)


def print_table(rows: Sequence[dict], human: dict, baseline: dict, preset: dict | None, top: int = 12) -> None:
    """The reference rows, then the ``top`` best points by ``preset_rank``, then, when the judge
    scored them, the ``top`` best by ``attribution_rank``. Flow and judge columns appear when the
    run measured them (a target given, a model with artists)."""
    from rich.console import Console
    from rich.table import Table

    reference = human["sample_perplexity"]
    judged = [row for row in rows if row["judge_kappa"] != ""]  # (rows of an older sweep.csv have no judge)

    def cell(value, spec: str) -> str:
        return "-" if value == "" else format(value, spec)

    table = Table(title=f"Sampling sweep: reference rows, then the {top} best points (loop rate, then perplexity"
                        f" nearest the validation continuations')" + (", then by the judge's kappa" if judged else "")
                        + f"; {int(baseline['texts'])} samples per point")
    # column -> how a row shows it; flow and judge columns only where the run has them
    shown = {
        "loop rate (95% CI)": lambda r: f"{r['loop_rate']:.1%} ({r['loop_rate_low']:.1%}-{r['loop_rate_high']:.1%})",
        "rep-4": lambda r: f"{r['rep4']:.1%}",
        "distinct-2": lambda r: f"{r['distinct2']:.3f}",
        "sample ppl": lambda r: f"{r['sample_perplexity']:.1f}",
        "density": lambda r: cell(r["rhyme_density"], ".2f"),
    }
    if human["rhyme_scheme"]:
        shown[f"{human['rhyme_scheme']} acc."] = lambda r: cell(r["scheme_accuracy"], ".1%")
    if human["syllables"]:
        shown[f"{human['syllables']}±{human['syllable_tolerance']} syl."] = lambda r: cell(r["syllable_accuracy"], ".1%")
    if judged:
        shown["judge acc. / bal. / kappa"] = lambda r: " / ".join(
            cell(r[name], spec) for name, spec in zip(JUDGE_FIELDS, (".1%", ".1%", ".3f")))
    for column in ("", *(header for header, _, _ in GRID.values()), *shown, "criterion"):
        table.add_column(column, justify="left" if not column else "right")

    def add(name: str, row: dict) -> None:
        grid = [f"{row[f]:g}" if row[f] != "" else "-" for f in GRID_FIELDS]
        met = "" if row is human else "met" if meets_criterion(row, baseline, reference) else "-"
        table.add_row(name, *grid, *(show(row) for show in shown.values()), met)

    add(HUMAN, human)
    for row in rows:
        if row["label"] != "grid":
            add(row["label"], row)
    if preset is not None:
        add("suggested preset", preset)
    table.add_section()
    for row in sorted(rows, key=lambda r: preset_rank(r, reference))[:top]:
        add(row["label"], row)
    if judged:
        table.add_section()
        for row in sorted(judged, key=attribution_rank)[:top]:
            add(row["label"], row)
    Console(width=max(Console().width, 140 + 25 * (len(shown) - 5))).print(table)  # wide enough for every column


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="training run directory, HF model directory or hub id")
    parser.add_argument("--data", required=True, type=Path, help="prepared corpus directory (its validation split gives the prompts)")
    parser.add_argument("--samples", type=int, default=256, help="samples per grid point (default 256)")
    parser.add_argument("--samples-per-prompt", type=int, default=4,
                        help="samples of each prompt, decoded as one batch; --samples / this many prompts (default 4)")
    parser.add_argument("--max-new-tokens", type=int, default=224,
                        help="tokens per sample, at most (default 224; fewer when the prompt leaves less room)")
    for name, (_, values, help_text) in GRID.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(getattr(SamplingParams(), name)), nargs="+",
                            default=values, help=help_text)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed shared by every point (default 0)")
    parser.add_argument("--rhyme-scheme", help="write every point's samples with this rhyme scheme (AABB, ABAB...; x a free"
                        " bar) and measure their scheme accuracy")
    parser.add_argument("--syllables", type=int, help="write every point's samples with this many syllables per bar and"
                        " measure their syllable accuracy")
    parser.add_argument("--syllable-tolerance", type=int, default=FlowTargets().syllable_tolerance,
                        help="a bar within this many syllables of --syllables meets it (default %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="directory for sweep.csv and sweep.png")
    args = parser.parse_args(argv)
    if args.samples < 1 or args.samples_per_prompt < 1 or args.samples % args.samples_per_prompt:
        parser.error(f"--samples ({args.samples}) must be a positive multiple of --samples-per-prompt ({args.samples_per_prompt})")
    try:  # checked as the sampler will check them, before the model loads
        args.targets = FlowTargets.from_params(SamplingParams(
            num_samples=args.samples_per_prompt, rhyme_scheme=args.rhyme_scheme, syllables=args.syllables,
            syllable_tolerance=args.syllable_tolerance))
    except JaxrapError as error:
        parser.error(str(error))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    points = grid_points(args)  # validates every value (JaxrapError) before the model loads

    from jaxrap.evaluate.artist_classifier import ArtistClassifier
    from jaxrap.evaluate.likelihood import ContinuationScorer
    from jaxrap.evaluate.samples import cut_reference, eval_prompts, generate_samples
    from jaxrap.load import load_model
    from jaxrap.sample.generator import Generator

    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / "sweep.csv"
    loaded = load_model(args.model)
    generator, scorer = Generator(loaded), ContinuationScorer(loaded)
    if any(point.guided for point in points) and not (loaded.song_prompt and loaded.song_prompt.conditioned):
        raise JaxrapError(f"{args.model}: --artist-guidance other than 1 needs a model trained with artist tokens")
    count = args.samples // args.samples_per_prompt
    prompts = eval_prompts(args.data, "validation", count, loaded.song_prompt)
    if len(prompts) < count:
        raise JaxrapError(f"{args.data}: {len(prompts)} validation prompts, fewer than --samples / --samples-per-prompt = {count}")
    run = {"model": args.model, "seed": args.seed, "samples": args.samples, "max_new_tokens": args.max_new_tokens,
           **target_values(args.targets)}

    @functools.cache
    def judge() -> ArtistClassifier | None:  # trained once per process, when a point is measured
        print("training the artist judge on the train split", flush=True)
        return ArtistClassifier.for_model(args.data, loaded.song_prompt, seed=0)

    done = {row_key(row): row for row in read_rows(csv_path) if row["label"] != HUMAN}
    humans = [row for row in read_rows(csv_path) if row["label"] == HUMAN and all(str(row[k]) == str(v) for k, v in run.items())]
    if humans:
        human = humans[0]
    else:
        references = [[cut_reference(generator, prompt, args.max_new_tokens)] for prompt in prompts]
        human = {**dict.fromkeys(COLUMNS, ""), **run, "label": HUMAN,
                 **measure(generator, scorer, prompts, references, args.targets, judge())}
        append_row(csv_path, human)
    for index, params in enumerate(points):
        row = {"label": label(params), **run, **{name: getattr(params, name) for name in (*GRID_FIELDS, "repetition_window")}}
        key = row_key(row)
        if key not in done:
            classifier = judge()  # (its training, once, is no point's time)
            start = time.perf_counter()
            texts = generate_samples(generator, prompts, params.replace(
                num_samples=args.samples_per_prompt, max_new_tokens=args.max_new_tokens, seed=args.seed, **args.targets.as_dict()))
            row.update(measure(generator, scorer, prompts, texts, args.targets, classifier), seconds=round(time.perf_counter() - start, 1))
            append_row(csv_path, row)
            done[key] = row
            print(f"[{index + 1}/{len(points)}] {row['label']}: " + ", ".join(f"{n} {row[n]:g}" for n in GRID_FIELDS)
                  + f" -> loop rate {row['loop_rate']:.1%}, sample perplexity {row['sample_perplexity']:.1f}"
                  + f" ({row['seconds']:g} s)", flush=True)
    # every point of this run in sweep.csv, so a grid that is not one product can be swept in parts
    this_run = tuple(str(run[name]) for name in RUN_FIELDS)
    rows = [{**row, "label": label(row)} for row in done.values() if row_key(row)[: len(RUN_FIELDS)] == this_run]
    baseline = next(row for row in rows if "original app" in row["label"])
    preset = choose_preset(rows, baseline, human["sample_perplexity"])
    plot(rows, human, preset, args.out / "sweep.png")
    print_table(rows, human, baseline, preset)
    if preset is None:
        print("no grid point loops at most half as often as the original app at a sample perplexity as near the"
              " validation continuations' as its")
    print(f"wrote {csv_path} and {args.out / 'sweep.png'}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except JaxrapError as error:
        raise SystemExit(f"sweep_sampling: error: {error}") from None
