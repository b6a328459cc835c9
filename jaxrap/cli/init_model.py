"""`jaxrap init`: write a random-init model in Hugging Face format, so everything runs offline."""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxrap.errors import JaxrapError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "init",
        help="write a random-init model (config.json, model.safetensors, tokenizer) to a directory",
        description="Random-init a model of the shape in --config (a YAML or JSON file of GPT2Config"
        " fields, or a Hugging Face config.json of any supported model_type: gpt2, llama, mistral, qwen2,"
        " qwen3) with the vocabulary of --tokenizer, and save it in Hugging Face format. vocab_size and"
        " the special token ids come from the tokenizer.",
    )
    parser.add_argument("--config", required=True, type=Path, help="model shape file (YAML or JSON)")
    parser.add_argument("--tokenizer", required=True, help="tokenizer directory or hub id")
    parser.add_argument("--out", required=True, type=Path, help="directory to write the model to")
    parser.add_argument("--seed", type=int, default=0, help="initialisation seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an existing model directory")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from jaxrap.data.tokenizer import load_tokenizer
    from jaxrap.model import hf, lm
    from jaxrap.model.registry import read_config

    if args.out.exists() and any(args.out.iterdir()) and not args.overwrite:
        raise JaxrapError(f"{args.out}: directory is not empty; pick a new --out or pass --overwrite")
    shape = read_config(args.config)
    tokenizer = load_tokenizer(args.tokenizer)
    config = shape.for_tokenizer(tokenizer)
    if shape.vocab_size not in (config.vocab_size, type(shape)().vocab_size):
        print(f"note: vocab_size {shape.vocab_size} in {args.config} replaced by the tokenizer's {config.vocab_size}")
    _, params = lm.build(config, seed=args.seed)
    hf.save_pretrained(args.out, config, params, tokenizer=tokenizer)
    print(
        f"wrote a random-init {config.describe()} ({config.num_params() / 1e6:.2f}M parameters,"
        f" vocab {config.vocab_size}) to {args.out}"
    )
    return 0
