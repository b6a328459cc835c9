"""`jaxrap tui` (and `python tui.py`): the terminal studio to write lyrics with a model."""

from __future__ import annotations

import argparse
import os

DESCRIPTION = (
    "Write rap lyrics with a model in the terminal: parameters on the left, the history of"
    " generations in the middle, a prompt at the bottom. Text streams as it is generated;"
    " Esc stops, Ctrl+R regenerates, Ctrl+S exports to Markdown, F1 lists every key."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        help="a training run directory (its newest checkpoint), a Hugging Face model directory or a hub id;"
        " without it, the studio says how to get one",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tui", help="the terminal studio: generate, stop, tune, regenerate, export", description=DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # XLA's C++ logging writes straight to the terminal, over the screen; keep its errors only.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from jaxrap.tui.app import StudioApp

    StudioApp(args.model).run()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python tui.py``: the same command without going through ``jaxrap``'s dispatcher."""
    parser = argparse.ArgumentParser(prog="python tui.py", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))
