"""`jaxrap prepare`: raw lyrics (CSV, .txt, .jsonl, URLs) -> a cleaned, split corpus."""

from __future__ import annotations

import argparse
from pathlib import Path

# Options left out on the command line are not passed on, so PrepareOptions holds the only
# defaults; the "(default ...)" in each help text is checked against it by the tests.
_UNSET = argparse.SUPPRESS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="clean, deduplicate and split raw lyrics into a corpus",
        description="Read raw lyrics, clean them (one bar per line, Genius headers and boilerplate"
        " removed, apostrophes and quotes normalised), drop short songs and duplicates, split"
        " train/validation/test by song with every artist in every split, and save a Hugging Face"
        " DatasetDict with stats.json. Prints a table of songs, bars and characters per artist"
        " and split, and of the rows dropped and why.",
    )
    parser.add_argument(
        "--source", action="append", default=[], metavar="PATH_OR_URL",
        help="a .csv (FrenchRapLyricsAnalyzer columns), .txt or .jsonl file, a directory of them,"
        " or an http(s) URL (downloaded once into the user cache); repeat for several"
        " (default: the public FrenchRapLyricsAnalyzer corpus URL)",
    )
    parser.add_argument("--out", required=True, type=Path, help="directory to write the corpus to")
    parser.add_argument("--val-fraction", type=float, default=_UNSET, help="share of each artist's songs in validation (default 0.1)")
    parser.add_argument("--test-fraction", type=float, default=_UNSET, help="share of each artist's songs in test (default 0.1)")
    parser.add_argument("--seed", type=int, default=_UNSET, help="seed of the split (default 0)")
    parser.add_argument(
        "--min-chars", type=int, default=_UNSET,
        help="drop songs with fewer characters of lyrics after cleaning (default 200)",
    )
    parser.add_argument(
        "--keep-headers", action="store_true", default=_UNSET,
        help="keep section headers ([Refrain], (x2), ...) as [marker] lines instead of removing them",
    )
    parser.add_argument("--lowercase", action="store_true", default=_UNSET, help="lowercase the lyrics (case is kept by default)")
    parser.add_argument(
        "--dedup-threshold", type=float, default=_UNSET,
        help="Jaccard similarity of 5-word shingles from which two songs are near duplicates"
        " and one is dropped; 1.0 drops exact copies only (default 0.7)",
    )
    parser.add_argument(
        "--min-artist-songs", type=int, default=_UNSET,
        help="drop artists with fewer independent songs than this; 3 is the least that"
        " puts one song in each split (default 3)",
    )
    parser.add_argument("--artist", default=_UNSET, help="artist of .txt/.jsonl songs that name none (default: the file name)")
    parser.add_argument("--overwrite", action="store_true", default=_UNSET, help="replace a corpus already prepared in --out")
    parser.add_argument(
        "--cache-dir", type=Path, default=_UNSET, help="where URL sources are downloaded (default: the user cache directory)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from jaxrap.data.corpus import STATS_FILE
    from jaxrap.data.prepare import PrepareOptions, prepare_corpus, render_stats

    values = {k: v for k, v in vars(args).items() if k in PrepareOptions.model_fields}
    options = PrepareOptions.checked(**values)
    console = Console()
    with console.status("preparing the corpus...", spinner="dots"):
        stats = prepare_corpus(args.source, args.out, options)
    console.print(render_stats(stats, args.out))
    console.print(f"Saved to {args.out} (stats in {args.out / STATS_FILE}).")
    return 0
