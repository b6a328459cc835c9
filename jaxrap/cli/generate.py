"""`jaxrap generate`: continue a prompt with a model, streaming the lyrics to stdout.

stdout carries the prompt followed by the generated text and nothing else, ending with a newline
(added when the text does not end with one), so it pipes and ``cat``s cleanly. With
``--num-samples N`` > 1, each sample (prompt + text, ending with a newline) comes after a
line ``--- sample i/N ---``; sample 1 streams live, the others follow as soon as it ends.
Warnings and the drawn seed go to stderr, each on its own lines and before any text (the
prompt is fitted to the context before the first byte is written); with bar controls
(``--rhyme-scheme``, ``--rhyme-with``, ``--syllables``) so does every bar that misses its
targets, and a count of the bars that met them.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from jaxrap.cli.sampling_args import add_sampling_arguments, sampling_params
from jaxrap.errors import JaxrapError

SEPARATOR = "--- sample {index}/{total} ---\n"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="continue a prompt with a model, streaming lyrics to stdout",
        description="Continue --prompt with a model, streaming the text to stdout as it is decoded."
        " stdout gets the prompt followed by the generated text and nothing else (ending with a newline); with"
        " --num-samples N > 1 each sample follows a line '--- sample i/N ---'. A model trained by"
        " jaxrap starts the prompt as its training songs started (--artist picks the artist token).",
    )
    parser.add_argument("--model", required=True,
                        help="training run directory (newest checkpoint), Hugging Face model directory, or hub id")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--prompt", default="", help="text to continue (default: empty, a new song)")
    source.add_argument("--prompt-file", help="read the prompt from this UTF-8 file; '-' reads stdin")
    add_sampling_arguments(parser)
    parser.add_argument("--dtype", default="float32", help="float32 (default) or bfloat16 weights")
    parser.set_defaults(run=run)


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
    from jaxrap.data.tokenizer import require_unicode

    params = sampling_params(args)
    prompt = require_unicode(read_prompt(args))  # before any output: undecodable argv bytes

    from jaxrap.compile_cache import enable_compilation_cache
    from jaxrap.sample.generator import Generator

    enable_compilation_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *_args, **_kw: print(f"jaxrap: warning: {message}", file=sys.stderr)
        generator = Generator.load(args.model, dtype=args.dtype)
        drawn_seed = params.seed is None
        params = params.with_seed()
        # An unknown --artist, guidance the model cannot give or no room for a bar fail here, before any output.
        deltas = generator.stream(prompt, params)
        if drawn_seed:
            print(f"jaxrap: seed {params.seed} (pass --seed {params.seed} to get this text again)", file=sys.stderr)
        if params.bar_controls:
            deltas = report_bars(deltas, params.num_samples, sys.stderr)
        write_samples(deltas, prompt, params.num_samples, sys.stdout)
    return 0


def report_bars(deltas, total: int, err):
    """The deltas, each bar that misses its targets named on ``err`` as it comes, and a count at
    the end: a miss is never silent."""
    met = kept = 0
    for delta in deltas:
        bar = delta.bar
        if bar is not None:
            kept += 1
            met += bar.met
            if not bar.met:
                sample = f"sample {delta.sample + 1}, " if total > 1 else ""
                print(f"jaxrap: warning: {sample}bar {bar.index + 1} misses its targets ({bar.reason});"
                      f" kept the closest of {bar.candidates} candidates", file=err)
        yield delta
    print(f"jaxrap: {met} of {kept} bars met their targets", file=err)


def write_samples(deltas, prompt: str, total: int, out) -> None:
    """Sample 1 as it streams, then each next one (buffered meanwhile) once the previous ends;
    each ends with a newline."""
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
            if not (prompt + texts[current]).endswith("\n"):
                write("\n")
            current += 1
            if current < total:
                start(current)
