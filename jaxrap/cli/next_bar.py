"""`jaxrap next-bar`: the writing room's candidates for one bar of a verse, for scripts.

Reads the verse from ``--song FILE`` (UTF-8; its lines are the bars, blank lines and
``[section]`` markers aside), asks ``Generator.suggest_bars`` for the next bar (or, with ``--bar
I``, for bar I again, in place) and prints the K candidates, met ones first, one per line, tab
separated: ``n``, ``met`` or ``miss``, syllables, the rhyme key (``-`` for none), the text (a tab
or carriage return in it printed as a space), and why it missed. ``--json`` prints them as a
JSON list of the ``Bar`` records instead. The seed drawn when none is given goes to stderr, as
`jaxrap generate` does.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from jaxrap.cli.sampling_args import add_sampling_arguments, sampling_params
from jaxrap.cli.warning_lines import warnings_as_lines
from jaxrap.errors import JaxrapError

# Sampling fields that mean nothing for one bar: the candidates come from --candidates.
_NOT_FOR_ONE_BAR = ("num_samples", "max_bars", "stop", "max_new_tokens", "min_new_tokens")
# A tab or carriage return in a bar would break its line's columns: a space in the table (not in --json).
_ONE_COLUMN = str.maketrans({"\t": " ", "\r": " "})


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "next-bar",
        help="draw candidates for the next bar of a verse (or for one of its bars again), for scripts",
        description="Read a verse (one bar per line) and print the K candidate bars the bar decoder draws for the"
        " bar after its last (or, with --bar I, for bar I in place: continuing the bars above it, rhyming with its"
        " group, members below it included), met ones first, one per line: number, met/miss, syllables, rhyme key,"
        " text and why it missed, tab separated. --candidates K (1-64) sets how many; the scheme, syllables,"
        " artist and sampling flags are generate's.",
    )
    parser.add_argument("--model", required=True,
                        help="training run directory (newest checkpoint), Hugging Face model directory, or hub id")
    parser.add_argument("--song", required=True, metavar="FILE",
                        help="the verse so far: a UTF-8 text file, one bar per line ('-' reads stdin)")
    parser.add_argument("--bar", type=int, metavar="I",
                        help="draw bar I (1-based) of the verse again, in place (default: the bar after the last)")
    parser.add_argument("--json", action="store_true", help="print the candidates as a JSON list of bar records")
    add_sampling_arguments(parser, skip=_NOT_FOR_ONE_BAR)
    parser.add_argument("--dtype", default="float32", help="float32 (default) or bfloat16 weights")
    parser.set_defaults(run=run)


def read_verse(song: str) -> list[str]:
    """The bars of the verse file (or stdin for '-'): a one-line JaxrapError for a file that
    cannot be read, is not UTF-8 or holds no bar."""
    from jaxrap.phonetics.rhyme import lyric_bars

    try:
        data = sys.stdin.buffer.read() if song == "-" else Path(song).read_bytes()
    except OSError as error:
        raise JaxrapError(f"{song}: cannot read the verse ({error.strerror or error})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JaxrapError(f"{song}: not UTF-8 text (byte {error.start}); save the verse as UTF-8") from None
    bars = lyric_bars(text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n"))
    if not bars:
        raise JaxrapError(f"{song}: the verse is empty; write at least one bar, one per line")
    return bars


def run(args: argparse.Namespace) -> int:
    params = sampling_params(args)  # bad values (--candidates 0, --rhyme-vowels 5) before the model loads
    bars = read_verse(args.song)
    if args.bar is not None and not 1 <= args.bar <= len(bars):
        raise JaxrapError(f"--bar {args.bar}: the verse has bars 1 to {len(bars)}")
    index = None if args.bar is None else args.bar - 1

    from jaxrap.compile_cache import enable_compilation_cache
    from jaxrap.sample.generator import Generator

    enable_compilation_cache()
    with warnings_as_lines():
        generator = Generator.load(args.model, dtype=args.dtype)
        if params.seed is None:
            params = params.with_seed()
            print(f"jaxrap: seed {params.seed} (pass --seed {params.seed} to get these bars again)", file=sys.stderr)
        candidates = generator.suggest_bars(bars, params, params.candidates, index=index)
    if args.json:
        print(json.dumps([dataclasses.asdict(bar) for bar in candidates], ensure_ascii=False))
        return 0
    for number, bar in enumerate(candidates, start=1):
        mark = "met" if bar.met else "miss"
        text = bar.text.translate(_ONE_COLUMN)
        print(f"{number}\t{mark}\t{bar.syllables}\t{bar.rhyme_key or '-'}\t{text}\t{bar.reason or ''}")
    return 0
