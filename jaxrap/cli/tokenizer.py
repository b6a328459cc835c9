"""`jaxrap tokenizer`: train a byte-level BPE (or a SentencePiece-style one) on a prepared corpus' train split."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tokenizer",
        help="train a byte-level (or SentencePiece-style) BPE tokenizer on a prepared corpus",
        description="Train a byte-level BPE (GPT-2 style) on the train split of a prepared corpus"
        " and save it where transformers' AutoTokenizer and `--tokenizer DIR` load it. Special"
        " tokens: <|endoftext|> (end of song, id 0) and <|pad|> (id 1). With --style sentencepiece, a"
        " BPE laid out as Llama's (▁ word marks, byte fallback, <unk> 0, <s> 1 added before each text,"
        " </s> 2 as end of song). Prints the compression (characters per token) on the validation split.",
    )
    parser.add_argument("--style", choices=("byte-level", "sentencepiece"), default="byte-level",
                        help="byte-level BPE (GPT-2's kind, default) or SentencePiece-style (Llama's kind)")
    parser.add_argument("--data", required=True, type=Path, help="prepared corpus directory (from `jaxrap prepare`)")
    parser.add_argument("--vocab-size", required=True, type=int, help="vocabulary size, special tokens included (e.g. 8000)")
    parser.add_argument("--out", required=True, type=Path, help="directory to write the tokenizer files to")
    parser.add_argument(
        "--min-frequency", type=int, default=2, help="fewest occurrences for a pair to be merged (default 2)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from jaxrap.data.corpus import load_corpus
    from jaxrap.data.tokenizer import (
        chars_per_token,
        describe_tokenizer,
        train_sentencepiece_tokenizer,
        train_tokenizer,
    )

    started = time.perf_counter()
    if args.style == "sentencepiece":
        tokenizer = train_sentencepiece_tokenizer(args.data, args.vocab_size, args.out)
    else:
        tokenizer = train_tokenizer(args.data, args.vocab_size, args.out, min_frequency=args.min_frequency)
    seconds = time.perf_counter() - started
    print(f"trained a {args.style} BPE on the train split of {args.data} in {seconds:.1f} s -> {args.out}")
    print(describe_tokenizer(tokenizer))
    if len(tokenizer) < args.vocab_size:
        print(f"note: the corpus has too few distinct pairs for {args.vocab_size:,} entries; the vocabulary stopped at {len(tokenizer):,}")
    validation = list(load_corpus(args.data)["validation"]["text"])
    if validation:
        print(f"compression: {chars_per_token(tokenizer, validation):.2f} characters per token on the validation split")
    return 0
