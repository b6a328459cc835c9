"""`jaxrap eval`: token-weighted loss and perplexity of a model on a prepared corpus split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from jaxrap.data.corpus import SPLITS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="loss and perplexity of a model on a prepared corpus split",
        description="Score every token of a split once (token-weighted mean cross-entropy, padding"
        " masked) with a training run directory (newest checkpoint), a Hugging Face directory or a hub id.",
    )
    parser.add_argument("--model", required=True, help="training run directory, HF model directory or hub id")
    parser.add_argument("--data", required=True, type=Path, help="prepared corpus directory (jaxrap prepare)")
    parser.add_argument("--split", default="validation", choices=SPLITS, help="split to score (default validation)")
    parser.add_argument("--block-size", type=int, help="context per scored block (default: the run's"
                        " data.block_size, or the model's n_positions)")
    parser.add_argument("--batch-size", type=int, default=8, help="blocks per device per step (default 8)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="compute dtype")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from jaxrap.evaluate.perplexity import split_perplexity
    from jaxrap.load import load_model

    loaded = load_model(args.model)
    result = split_perplexity(
        loaded, args.data, args.split, block_size=args.block_size,
        per_device_batch_size=args.batch_size, dtype=args.dtype,
    )
    record = {"model": str(args.model), "step": loaded.step, **result.as_dict()}
    if args.json:
        print(json.dumps(record))
        return 0
    table = Table(title=f"{args.model} on {args.data} ({args.split})")
    for column in ("tokens", "block size", "loss (nats/token)", "perplexity"):
        table.add_column(column, justify="right")
    table.add_row(f"{result.tokens:,}", str(result.block_size), f"{result.loss:.4f}", f"{result.perplexity:.2f}")
    Console().print(table)
    return 0
