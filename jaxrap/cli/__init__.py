"""The ``jaxrap`` command line: one module per subcommand, imported only when used.

Each subcommand module defines ``register(subparsers)``, which adds its parser, and
``run(args) -> int``. Heavy imports (jax, transformers) live inside ``run`` so that
``jaxrap --help`` and argument errors answer instantly.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from jaxrap import __version__
from jaxrap.errors import JaxrapError
from jaxrap.host_allocator import keep_freed_memory

# Subcommand name -> module in jaxrap.cli; the order is the order of `jaxrap --help`.
COMMANDS = {
    "prepare": "prepare",
    "tokenizer": "tokenizer",
    "init": "init_model",
    "train": "train",
    "plan": "plan",
    "export": "export",
    "eval": "evaluate",
    "generate": "generate",
    "next-bar": "next_bar",
    "artists": "artists",
    "rhymes": "rhymes",
    "tui": "tui",
}

# The docs page that covers each subcommand; `--help` ends with it.
DOCS_PAGES = {
    "prepare": "docs/corpus.md",
    "tokenizer": "docs/corpus.md",
    "init": "docs/models.md",
    "train": "docs/training.md",
    "plan": "docs/lora.md",
    "export": "docs/training.md",
    "eval": "docs/evaluation.md",
    "generate": "docs/generation.md",
    "next-bar": "docs/rhymes.md",
    "artists": "docs/generation.md",
    "rhymes": "docs/rhymes.md",
    "tui": "docs/tui.md",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxrap",
        description="Fine-tune GPT-2 and Llama-family models (full or LoRA) on French rap lyrics in JAX, and generate lyrics.",
        epilog="Docs: README.md, then docs/ (a page per topic); each command's --help names its page.",
    )
    parser.add_argument("--version", action="version", version=f"jaxrap {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMANDS.values():
        module = importlib.import_module(f"jaxrap.cli.{module_name}")
        module.register(subparsers)
    for name, subparser in subparsers.choices.items():
        subparser.epilog = f"Docs: {DOCS_PAGES[name]}"
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        keep_freed_memory()  # before jax starts its threads (jaxrap.host_allocator)
        args = build_parser().parse_args(argv)
        return args.run(args) or 0
    except JaxrapError as error:
        print(f"jaxrap: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jaxrap: interrupted", file=sys.stderr)
        return 130
