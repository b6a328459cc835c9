"""`jaxrap eval`: perplexity of a model on a prepared corpus split (overall and per artist), and
lyric metrics of the split's continuations and, with --samples N, of generated ones: repetition,
rhyme, memorisation, artist fidelity, flow (scheme accuracy, syllables per bar, rhyme density)
and the independent artist judge's attribution."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from jaxrap.cli.sampling_args import add_sampling_arguments, sampling_params
from jaxrap.data.corpus import SPLITS
from jaxrap.errors import JaxrapError

if TYPE_CHECKING:
    from rich.console import Console

    from jaxrap.evaluate.artist_classifier import ArtistAccuracy
    from jaxrap.evaluate.fidelity import ArtistFidelity
    from jaxrap.evaluate.flow_report import FlowScores, FlowTargets
    from jaxrap.evaluate.report import EvalReport, LyricColumn, LyricsReport
    from jaxrap.sample.params import SamplingParams


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="perplexity and lyric metrics (repetition, rhyme, flow, memorisation, artist fidelity and judge) of a model",
        description="Score every token of a split once (token-weighted mean cross-entropy, padding"
        " masked; a model trained by jaxrap sees each song after its end-of-song and artist tokens, as"
        " in training), overall and per artist. Then, on prompts made of each song's first bar:"
        " the model's perplexity of what follows, repetition (rep-4, loop rate, distinct-1/2), rhyme"
        " (consecutive bars), flow (syllables per bar, rhyme density), memorisation (longest run of"
        " words copied from the train split), artist fidelity and an independent artist classifier's"
        " attribution, for the songs' real continuations and, with --samples N, for N samples"
        " generated with the sampling flags below.",
    )
    parser.add_argument("--model", required=True, help="training run directory, HF model directory or hub id")
    parser.add_argument("--data", required=True, type=Path, help="prepared corpus directory (jaxrap prepare)")
    parser.add_argument("--split", default="validation", choices=SPLITS, help="split to score (default validation)")
    parser.add_argument("--block-size", type=int, help="context per scored block (default: the run's"
                        " data.block_size, or the model's n_positions)")
    parser.add_argument("--batch-size", type=int, default=8, help="blocks per device per step (default 8)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="compute dtype")
    parser.add_argument("--samples", type=int, default=0, metavar="N",
                        help="generate one sample after each of N prompts (first bars of the split's songs,"
                        " round-robin over artists) and score them too (default 0: human continuations only)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--judge", action=argparse.BooleanOptionalAction, default=None,
                        help="train the artist classifier on the train split (7-17 s on the real corpus) and judge"
                        " which artist each text reads like, for models with two named artists or more"
                        " (default: only with --samples)")
    parser.add_argument("--confusion-png", type=Path, metavar="PATH",
                        help="write the judge's confusion matrices (requested x attributed artist; the songs'"
                        " continuations, then the samples) to this PNG; implies --judge")
    add_sampling_arguments(parser, skip=("num_samples", "artist"))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.samples < 0:
        raise JaxrapError(f"--samples must be 0 or more, got {args.samples}")
    params = sampling_params(args)
    judge = args.judge
    if args.confusion_png is not None:
        if judge is False:
            raise JaxrapError("--confusion-png draws the judge's attributions; drop --no-judge")
        judge = True

    from rich.console import Console

    from jaxrap.cli.warning_lines import warnings_as_lines
    from jaxrap.compile_cache import enable_compilation_cache
    from jaxrap.evaluate.artist_classifier import judged_artists
    from jaxrap.evaluate.perplexity import check_block_size
    from jaxrap.evaluate.report import evaluate_model
    from jaxrap.load import load_model, load_model_config

    if args.block_size is not None:  # the config alone can tell: before any weight is read
        check_block_size(load_model_config(args.model), args.block_size)
    enable_compilation_cache()  # the scoring step and the sampler, loaded by the next eval of the model
    console = Console(stderr=True)
    with warnings_as_lines(), console.status("loading the model") as status:
        loaded = load_model(args.model)
        if args.confusion_png is not None and len(judged_artists(loaded.song_prompt)) < 2:
            raise JaxrapError(f"--confusion-png: {args.model} has no artist tokens for two artists or more; no judge to draw")
        report = evaluate_model(
            loaded, args.data, args.split, samples=args.samples, params=params, judge=judge, block_size=args.block_size,
            per_device_batch_size=args.batch_size, dtype=args.dtype, progress=status.update,
        )
    columns = lyric_columns(report.lyrics)
    judged = {name: column.judge for name, column in columns.items() if column.judge is not None}
    if judged and args.split == "train":
        console.print("[yellow]warning:[/] the judge was trained on the train split: its attribution of these songs"
                      " (and its ceiling) is inflated; judge validation or test")
    if args.confusion_png is not None:
        if judged:
            draw_confusion(judged, args.confusion_png)
            console.print(f"wrote {args.confusion_png}")
        else:
            console.print(f"[yellow]warning:[/] no prompt of {args.data} asks for an artist the judge knows; no {args.confusion_png}")
    if args.json:
        print(json.dumps({"model": str(args.model), "step": loaded.step, **report.as_dict()}, ensure_ascii=False))
        return 0
    print_tables(report, str(args.model), loaded.step, Console())
    return 0


def lyric_columns(lyrics: LyricsReport) -> dict[str, LyricColumn]:
    """"human", then "samples" when there are samples."""
    return {"human": lyrics.human, **({"samples": lyrics.samples} if lyrics.samples else {})}


def draw_confusion(judged: dict[str, ArtistAccuracy], path: Path) -> None:
    from jaxrap.evaluate.artist_classifier import save_confusion_panels

    titles = {"human": "the songs' continuations (ceiling)", "samples": "samples"}
    labels = next(iter(judged.values())).labels  # one judge for both columns
    save_confusion_panels([(f"{titles[name]}: {result.accuracy:.1%}", result.confusion) for name, result in judged.items()],
                          labels, path)


def sampling_caption(sampling: SamplingParams) -> str:
    """How the samples were written: the sampler's settings, and the bar controls and artist
    guidance when they were on."""
    parts = [
        f"temperature {sampling.temperature}", f"top-k {sampling.top_k}", f"top-p {sampling.top_p}",
        f"repetition penalty {sampling.repetition_penalty}", f"no-repeat n-gram {sampling.no_repeat_ngram_size}",
    ]
    if sampling.bar_controls:
        if sampling.rhyme_scheme is not None:
            parts.append(f"scheme {sampling.rhyme_scheme}" + (f" on {sampling.rhyme_vowels} vowels" if sampling.rhyme_vowels > 1 else ""))
        if sampling.rhyme_with is not None:
            parts.append(f"rhyme with {sampling.rhyme_with!r}")
        if sampling.syllables is not None:
            parts.append(f"{sampling.syllables}±{sampling.syllable_tolerance} syllables")
        parts.append(f"{sampling.candidates} candidates, steering {sampling.steering:g}, {sampling.redraws} redraws")
    if sampling.guided:
        parts.append(f"artist guidance {sampling.artist_guidance:g}")
    return f"samples: {', '.join(parts)}, seed {sampling.seed}"


def print_tables(report: EvalReport, model: str, step: int | None, console: Console) -> None:
    """The report as four rich tables: perplexity, lyric metrics (human vs samples), per artist,
    flow and judge per artist."""
    from rich.table import Table

    split, lyrics = report.perplexity, report.lyrics
    table = Table(title=f"{model} on {split.split}" + (f" (step {step})" if step is not None else ""))
    for column in ("tokens", "block size", "loss (nats/token)", "perplexity"):
        table.add_column(column, justify="right")
    table.add_row(f"{split.tokens:,}", str(split.block_size), f"{split.loss:.4f}", f"{split.perplexity:.2f}")
    console.print(table)

    columns = lyric_columns(lyrics)
    targets = lyrics.flow_targets
    table = Table(title=f"Lyrics after the first bar of {lyrics.prompts} songs (up to {lyrics.max_new_tokens} tokens each)")
    table.add_column("metric")
    for name in columns:
        table.add_column("human continuation" if name == "human" else "samples", justify="right")

    def row(label: str, show: Callable[[LyricColumn], str]) -> None:
        table.add_row(label, *(show(column) for column in columns.values()))

    def fidelity(show: Callable[[ArtistFidelity], str]) -> Callable[[LyricColumn], str]:
        return lambda c: show(c.fidelity) if c.fidelity else "-"

    def judge(show: Callable[[ArtistAccuracy], str]) -> Callable[[LyricColumn], str]:
        return lambda c: show(c.judge) if c.judge else "-"

    row("model perplexity of the text", lambda c: f"{c.perplexity.perplexity:.1f}")
    row("repeated 4-grams (rep-4)", lambda c: f"{c.stats.rep4:.1%}")
    row("texts that loop", lambda c: f"{c.stats.loop_rate:.1%}")
    row("distinct-1 / distinct-2", lambda c: f"{c.stats.distinct1:.3f} / {c.stats.distinct2:.3f}")
    row("consecutive bars that rhyme", lambda c: f"{c.stats.rhyme_rate:.1%} of {c.stats.rhyme_pairs}")
    row("longest run copied from train (mean / max words)",
        lambda c: f"{c.memorisation.mean_longest_run:.1f} / {c.memorisation.max_longest_run}")
    row("texts copying >= 8 words in a row", lambda c: f"{c.memorisation.copy_rate:.1%}")
    if lyrics.human.fidelity:
        row(f"attributed to their own artist (chance {lyrics.human.fidelity.chance:.0%})", fidelity(lambda f: f"{f.top1:.1%}"))
        row("own-artist margin (nats/token)", fidelity(lambda f: f"{f.margin:+.3f}"))
    if targets.rhyme_scheme is not None:
        vowels = f" on {targets.rhyme_vowels} vowels" if targets.rhyme_vowels > 1 else ""
        row(f"{targets.rhyme_scheme} pairs that rhyme{vowels} (scheme accuracy)",
            lambda c: f"{c.flow.overall.scheme.accuracy:.1%} of {c.flow.overall.scheme.pairs}")
    row("syllables per bar" + (f" (target {targets.syllables})" if targets.syllables is not None else ""),
        lambda c: f"{c.flow.overall.syllables.mean:.1f}")
    if targets.syllables is not None:
        row("bars within ±1 / ±2 syllables of it",
            lambda c: f"{c.flow.overall.syllables.share_within1:.1%} / {c.flow.overall.syllables.share_within2:.1%}")
        if targets.syllable_tolerance not in (1, 2):
            row(f"bars within ±{targets.syllable_tolerance} (the tolerance)",
                lambda c: f"{c.flow.overall.syllables.share_within_tolerance:.1%}")
    row("rhyme density (matching end vowels per bar)", lambda c: f"{c.flow.overall.density.density:.2f}")
    row("bars ending on a function word (de, que, mon...)", lambda c: f"{c.flow.overall.endings.share:.1%}")
    if lyrics.human.judge:
        row(f"judge: attributed to the requested artist (chance {lyrics.human.judge.chance:.1%})",
            judge(lambda j: f"{j.accuracy:.1%} of {j.texts}"))
        row("judge: balanced accuracy / Cohen's kappa", judge(lambda j: f"{j.balanced_accuracy:.1%} / {j.kappa:.3f}"))
    if lyrics.sampling:
        table.caption = sampling_caption(lyrics.sampling)
    if lyrics.human.judge:
        table.caption = (table.caption + "\n" if table.caption else "") + (
            f"judge: an artist classifier trained on the train split's {len(lyrics.human.judge.labels)} artists;"
            " on the songs' own continuations, its ceiling"
        )
    console.print(table)

    table = Table(title=f"Per artist ({split.split})")
    table.add_column("artist")
    for column in ("songs", "tokens", "perplexity"):
        table.add_column(column, justify="right")
    by_artist = {name: c.fidelity.per_artist for name, c in columns.items() if c.fidelity}
    for name in by_artist:
        table.add_column(f"own-artist top-1 / margin ({'human' if name == 'human' else 'samples'})", justify="right")
    for artist, loss in split.per_artist.items():
        cells = [f"{loss.songs:,}", f"{loss.tokens:,}", f"{loss.perplexity:.2f}"]
        for scores in by_artist.values():
            mine = scores.get(artist)
            cells.append(f"{mine['top1']:.0%} / {mine['margin']:+.3f}" if mine else "-")
        table.add_row(artist, *cells)
    console.print(table)
    print_flow_per_artist(columns, targets, split.split, console)


def print_flow_per_artist(columns: dict[str, LyricColumn], targets: FlowTargets, split: str, console: Console) -> None:
    """Flow and judge per artist, each cell "human / samples"."""
    from rich.table import Table

    both = " (human / samples)" if "samples" in columns else ""
    table = Table(title=f"Flow and style per artist ({split}){both}")
    table.add_column("artist")
    cells: dict[str, Callable[[FlowScores], str]] = {}
    if targets.rhyme_scheme is not None:
        cells[f"{targets.rhyme_scheme} acc."] = lambda f: f"{f.scheme.accuracy:.0%}"
    cells["syllables per bar"] = lambda f: f"{f.syllables.mean:.1f}"
    if targets.syllables is not None:
        cells[f"{targets.syllables}±{targets.syllable_tolerance} syl."] = lambda f: f"{f.syllables.share_within_tolerance:.0%}"
    cells["rhyme density"] = lambda f: f"{f.density.density:.2f}"
    judged = any(column.judge for column in columns.values())
    for name in [*cells, *(["judge: requested artist"] if judged else [])]:
        table.add_column(name, justify="right")
    for artist in sorted({artist for column in columns.values() for artist in column.flow.per_artist}):
        row = []
        for show in cells.values():
            row.append(" / ".join(show(c.flow.per_artist[artist]) if artist in c.flow.per_artist else "-" for c in columns.values()))
        if judged:
            scores = [c.judge.per_artist.get(artist) if c.judge else None for c in columns.values()]
            row.append(" / ".join(f"{s['accuracy']:.0%}" if s else "-" for s in scores))
        table.add_row(artist, *row)
    console.print(table)
