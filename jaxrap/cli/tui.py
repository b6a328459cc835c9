"""`jaxrap tui` (and `python tui.py`): the terminal studio to write lyrics with a model."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from jaxrap.errors import JaxrapError
from jaxrap.host_allocator import keep_freed_memory

DESCRIPTION = (
    "Write rap lyrics with a model in the terminal: parameters on the left, the history of"
    " generations in the middle, a prompt at the bottom. Text streams as it is generated;"
    " Esc stops, Ctrl+R regenerates, Ctrl+S exports to Markdown, F2 opens the writing room"
    " (a verse bar by bar, with the model's candidates), F1 lists every key."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        help="a training run directory (its newest checkpoint), a Hugging Face model directory or a hub id;"
        " without it, the studio says how to get one",
    )
    parser.add_argument(
        "--write",
        nargs="?",
        const="",
        metavar="VERSE",
        help="open the writing room: write a verse bar by bar, saved as you type to the text file VERSE"
        " (one bar per line; default: verses/verse.txt in jaxrap's data directory)",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="serve the studio in a web browser (textual-serve) instead of this terminal; each tab runs its own studio",
    )
    parser.add_argument(
        "--host",
        help="with --serve: the IP address to listen on (default 127.0.0.1, this machine only; any other"
        " lets anyone who reaches the port use the model)",
    )
    parser.add_argument("--port", type=int, help="with --serve: the port to listen on (default 8000)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tui", help="the terminal studio: generate, stop, tune, regenerate, export; write a verse bar by bar", description=DESCRIPTION
    )
    add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    verse = None if args.write is None else verse_path(args.write)
    if args.serve:
        return serve(args, verse)
    if args.host is not None or args.port is not None:
        raise JaxrapError("--host and --port go with --serve (the studio in a browser)")
    # XLA's C++ logging writes straight to the terminal, over the screen; keep its errors only.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from jaxrap.tui.app import StudioApp

    StudioApp(args.model, write=verse is not None, verse=verse).run()
    return 0


def verse_path(write: str) -> Path:
    """``--write``'s file, checked (``--write`` alone: the default verse, its folder made)."""
    from jaxrap.tui.verse import check_verse_path, default_verse_path

    if write:
        return check_verse_path(write)
    default = default_verse_path()
    default.parent.mkdir(parents=True, exist_ok=True)
    return check_verse_path(default)


def serve(args: argparse.Namespace, verse: Path | None) -> int:
    """Check the address, warn when it is not this machine's loopback, serve until Ctrl+C."""
    from jaxrap.tui import serve as server

    host = server.check_host(server.LOOPBACK if args.host is None else args.host)
    port = server.check_port(server.DEFAULT_PORT if args.port is None else args.port)
    server.check_free(host, port)
    warning = server.exposure_warning(host, port)
    if warning is not None:
        print(f"jaxrap: warning: {warning}", file=sys.stderr)
    argv = [] if args.model is None else ["--model", args.model]
    if verse is not None:
        argv += ["--write", str(verse.resolve())]
    server.serve(server.app_command(argv), host, port)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python tui.py``: the same command without going through ``jaxrap``'s dispatcher."""
    parser = argparse.ArgumentParser(prog="python tui.py", description=DESCRIPTION)
    add_arguments(parser)
    try:
        keep_freed_memory()  # before jax starts its threads (jaxrap.host_allocator)
        return run(parser.parse_args(argv))
    except JaxrapError as error:
        print(f"jaxrap: error: {error}", file=sys.stderr)
        return 2
