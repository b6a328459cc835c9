"""`jaxrap generate`: continue a prompt with a model, streaming the lyrics to stdout.

stdout carries the prompt followed by the generated text and nothing else, ending with a newline
(added when the text does not end with one), so it pipes and ``cat``s cleanly. With
``--num-samples N`` > 1, each sample (prompt + text, ending with a newline) comes after a
line ``--- sample i/N ---``; sample 1 streams live, the others follow as soon as it ends.
Warnings and the drawn seed go to stderr, each on its own lines and before any text (the
prompt is fitted to the context before the first byte is written); with bar controls
(``--rhyme-scheme``, ``--rhyme-with``, ``--syllables``), every bar that missed its targets and a
count of the bars that met them follow the text.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jaxrap.cli.sampling_args import add_sampling_arguments, sampling_params
from jaxrap.cli.warning_lines import warnings_as_lines
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
    with warnings_as_lines():
        generator = Generator.load(args.model, dtype=args.dtype)
        drawn_seed = params.seed is None
        params = params.with_seed()
        # An unknown --artist, guidance the model cannot give or no room for a bar fail here, before any output.
        deltas = generator.stream(prompt, params)
        if drawn_seed:
            print(f"jaxrap: seed {params.seed} (pass --seed {params.seed} to get this text again)", file=sys.stderr)
        if not params.bar_controls:
            write_samples(deltas, prompt, params.num_samples, sys.stdout)
            return 0
        bars: list = []
        write_samples(kept_bars(deltas, bars), prompt, params.num_samples, sys.stdout)
        sys.stdout.flush()  # the text ends its line first: a prompt or a last bar may end mid-line
        report_bars(bars, params.num_samples, sys.stderr)
    return 0


def kept_bars(deltas, bars: list):
    """The deltas, each one's bar record (the bar kept for a sample) appended to ``bars``."""
    for delta in deltas:
        if delta.bar is not None:
            bars.append((delta.sample, delta.bar))
        yield delta


def report_bars(bars: list, total: int, err) -> None:
    """Each bar that missed its targets, then how many met them: a miss is never silent. After
    the text, so that no line of it is cut by a warning."""
    for sample, bar in bars:
        if not bar.met:
            which = f"sample {sample + 1}, " if total > 1 else ""
            kept = "its only candidate" if bar.candidates == 1 else f"the closest of {bar.candidates} candidates"
            print(f"jaxrap: warning: {which}bar {bar.index + 1} misses its targets ({bar.reason}); kept {kept}", file=err)
    print(f"jaxrap: {sum(bar.met for _, bar in bars)} of {len(bars)} bars met their targets", file=err)


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
