"""`jaxrap artists`: the artists a model trained with artist tokens can write as."""

from __future__ import annotations

import argparse

from jaxrap.errors import JaxrapError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "artists",
        help="list the artists a model knows (values of generate --artist)",
        description="Print, one per line, the artists a model trained with data.artist_tokens knows:"
        " the values `jaxrap generate --artist` and the terminal UI's artist selector accept. 'unknown'"
        " (last) is the shared token of artists with too few songs. Reads only the tokenizer and config.",
    )
    parser.add_argument("--model", required=True, help="training run directory or `jaxrap export` directory")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from jaxrap.load import load_song_prompt

    _, song_prompt = load_song_prompt(args.model)
    if song_prompt is None or not song_prompt.conditioned:
        kind = "a plain Hugging Face model" if song_prompt is None else "trained without artist tokens"
        raise JaxrapError(f"{args.model}: {kind}, so it knows no artists; train with data.artist_tokens: true")
    print("\n".join(song_prompt.artists))
    return 0
