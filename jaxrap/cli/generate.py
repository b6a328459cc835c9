"""`jaxrap generate`: continue a prompt with a model, streaming the lyrics to stdout.

stdout carries the prompt followed by the generated text and nothing else, so it pipes. With
``--num-samples N`` > 1, each sample (prompt + text, ending with a newline) comes after a
line ``--- sample i/N ---``; sample 1 streams live, the others follow as soon as it ends.
Warnings and the drawn seed go to stderr.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from jaxrap.errors import JaxrapError
from jaxrap.sample.params import SamplingParams

SEPARATOR = "--- sample {index}/{total} ---\n"


def register(subparsers: argparse._SubParsersAction) -> None:
    defaults = SamplingParams()
    parser = subparsers.add_parser(
        "generate",
        help="continue a prompt with a model, streaming lyrics to stdout",
        description="Continue --prompt with a model, streaming the text to stdout as it is decoded."
        " stdout gets the prompt followed by the generated text and nothing else; with"
        " --num-samples N > 1 each sample follows a line '--- sample i/N ---'.",
    )
    parser.add_argument("--model", required=True,
                        help="training run directory (newest checkpoint), Hugging Face model directory, or hub id")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--prompt", default="", help="text to continue (default: empty, a new song)")
    source.add_argument("--prompt-file", help="read the prompt from this UTF-8 file; '-' reads stdin")
    option = _option_adder(parser, defaults)
    option("--max-new-tokens", int, "most tokens to generate per sample")
    option("--min-new-tokens", int, "no end-of-song before this many tokens")
    option("--temperature", float, "0 is greedy; higher is more random")
    option("--top-k", int, "keep the k likeliest tokens; 0 is off")
    option("--top-p", float, "keep the likeliest tokens holding this probability, in (0, 1]; 1 is off")
    option("--min-p", float, "drop tokens below min-p times the likeliest token's probability; 0 is off")
    option("--repetition-penalty", float, "> 1 discourages tokens already in the context (transformers' semantics)")
    option("--repetition-window", int, "the repetition penalty looks at the last n tokens; 0 means all")
    option("--frequency-penalty", float, "subtract this times a token's count in the generated text, in [-2, 2]")
    option("--presence-penalty", float, "subtract this from tokens already generated, in [-2, 2]")
    option("--no-repeat-ngram-size", int, "never repeat an n-gram of the context; 0 is off")
    option("--num-samples", int, "independent samples of the prompt, decoded together")
    option("--max-bars", int, "end a sample after this many lines; 0 is off")
    parser.add_argument("--seed", type=int, default=None, help="PRNG seed (default: a fresh one, printed on stderr)")
    parser.add_argument("--stop", action="append", default=[], metavar="TEXT",
                        help=r"end a sample where TEXT appears, TEXT excluded; repeatable; \n is a newline")
    parser.add_argument("--dtype", default="float32", help="float32 (default) or bfloat16 weights")
    parser.set_defaults(run=run)


def _option_adder(parser: argparse.ArgumentParser, defaults: SamplingParams):
    def add(flag: str, kind: type, help_text: str) -> None:
        default = getattr(defaults, flag[2:].replace("-", "_"))
        parser.add_argument(flag, type=kind, default=default, help=f"{help_text} (default {default})")

    return add


def sampling_params(args: argparse.Namespace) -> SamplingParams:
    """The flags as SamplingParams (validated: a bad value raises JaxrapError)."""
    names = [name for name in SamplingParams.__dataclass_fields__ if name != "stop"]
    # \n, \t and \\ in --stop mean what they do in Python strings; other text stays as typed.
    stop = tuple(s.encode("latin-1", "backslashreplace").decode("unicode_escape") for s in args.stop)
    return SamplingParams(**{name: getattr(args, name) for name in names}, stop=stop)


def read_prompt(args: argparse.Namespace) -> str:
    if args.prompt_file is None:
        return args.prompt
    if args.prompt_file == "-":
        return sys.stdin.read()
    try:
        return Path(args.prompt_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise JaxrapError(f"{args.prompt_file}: cannot read the prompt ({error})") from None


def run(args: argparse.Namespace) -> int:
    params = sampling_params(args)
    prompt = read_prompt(args)

    from jaxrap.compile_cache import enable_compilation_cache
    from jaxrap.sample.generator import Generator

    enable_compilation_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *_args, **_kw: print(f"jaxrap: warning: {message}", file=sys.stderr)
        generator = Generator.load(args.model, dtype=args.dtype)
        if params.seed is None:
            params = params.with_seed()
            print(f"jaxrap: seed {params.seed} (pass --seed {params.seed} to get this text again)", file=sys.stderr)
        write_samples(generator.stream(prompt, params), prompt, params.num_samples, sys.stdout)
    return 0


def write_samples(deltas, prompt: str, total: int, out) -> None:
    """Sample 1 as it streams, then each next one (buffered meanwhile) once the previous ends."""
    texts, finished, current = [""] * total, [False] * total, 0

    def write(text: str) -> None:
        out.write(text)
        out.flush()

    def start(index: int) -> None:
        write((SEPARATOR.format(index=index + 1, total=total) if total > 1 else "") + prompt + texts[index])

    start(0)
    for delta in deltas:
        texts[delta.sample] += delta.text
        finished[delta.sample] = finished[delta.sample] or delta.finish_reason is not None
        if delta.sample == current:
            write(delta.text)
        while current < total and finished[current]:
            if (total > 1 or out.isatty()) and not (prompt + texts[current]).endswith("\n"):
                write("\n")
            current += 1
            if current < total:
                start(current)
