"""The sampling flags shared by `jaxrap generate` and `jaxrap eval --samples`.

One flag per ``SamplingParams`` field, with its default shown from ``SamplingParams`` (the
only place defaults live), and the reverse: the parsed flags as validated ``SamplingParams``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Collection

from jaxrap.sample.params import DEFAULT_MAX_NEW_TOKENS, SamplingParams

# What a None default means, as --help shows it.
_NONE_DEFAULTS = {
    "--max-new-tokens": f"as many as fit the model's context after the prompt, at most {DEFAULT_MAX_NEW_TOKENS}",
    "--artist": "none: the unknown-artist token",
}
# flag -> (type, help); every SamplingParams field but seed and stop, which take no default
# from SamplingParams and are added by hand.
_FLAGS = {
    "--max-new-tokens": (int, "most tokens to generate per sample"),
    "--min-new-tokens": (int, "no end-of-song before this many tokens"),
    "--temperature": (float, "0 is greedy; higher is more random"),
    "--top-k": (int, "keep the k likeliest tokens; 0 is off"),
    "--top-p": (float, "keep the likeliest tokens holding this probability, in (0, 1]; 1 is off"),
    "--min-p": (float, "drop tokens below min-p times the likeliest token's probability; 0 is off"),
    "--repetition-penalty": (float, "> 1 discourages tokens already in the context (transformers' semantics)"),
    "--repetition-window": (int, "the repetition penalty looks at the last n tokens; 0 means all"),
    "--frequency-penalty": (float, "subtract this times a token's count in the generated text, in [-2, 2]"),
    "--presence-penalty": (float, "subtract this from tokens already generated, in [-2, 2]"),
    "--no-repeat-ngram-size": (int, "never repeat an n-gram of the context; 0 is off"),
    "--num-samples": (int, "independent samples of the prompt, decoded together"),
    "--max-bars": (int, "end a sample after this many lines; 0 is off"),
    "--artist": (str, "write as this artist (models trained with artist tokens; list them with `jaxrap artists`)"),
    "--rhyme-scheme": (str, "rhyme letters per bar, repeated over the bars: AABB, ABAB, ABBA, AAAA; x is a free bar"),
    "--rhyme-with": (str, "the first rhyme group written ends on this word's sound (needs --rhyme-scheme)"),
    "--rhyme-vowels": (int, "with --rhyme-scheme: a rhyme group's bars end on the same last N vowel sounds, 1..4"
                            " (2: 'ma vie' rhymes with 'l'avis')"),
    "--syllables": (int, "target syllables per bar"),
    "--syllable-tolerance": (int, "bars of syllables - T to syllables + T syllables meet the target"),
    "--candidates": (int, "with bar controls: candidate bars drawn at once for each bar, 1..64; one meeting the"
                          " targets is kept"),
    "--steering": (float, "with bar controls: on-device steering (rhyme bias in logits, bar-length masks); 0 is off"),
    "--redraws": (int, "with bar controls: times a bar is drawn again when no candidate meets its targets"),
    "--artist-guidance": (float, "classifier-free guidance towards --artist's style: logits l_unknown + W (l_artist -"
                                 " l_unknown), W > 0; 1 is off"),
}


def _field(flag: str) -> str:
    return flag[2:].replace("-", "_")


def add_sampling_arguments(parser: argparse.ArgumentParser, *, skip: Collection[str] = ()) -> None:
    """Add the sampling flags to ``parser``, except the fields named in ``skip``."""
    defaults = SamplingParams()
    group = parser.add_argument_group("sampling")
    for flag, (kind, help_text) in _FLAGS.items():
        if _field(flag) in skip:
            continue
        default = getattr(defaults, _field(flag))
        shown = _NONE_DEFAULTS.get(flag, "none") if default is None else default
        group.add_argument(flag, type=kind, default=default, help=f"{help_text} (default {shown})")
    group.add_argument("--seed", type=int, default=None, help="PRNG seed (default: a fresh one, printed on stderr)")
    if "stop" not in skip:
        group.add_argument("--stop", action="append", default=[], metavar="TEXT",
                           help=r"end a sample where TEXT appears, TEXT excluded; repeatable; \n is a newline")


def sampling_params(args: argparse.Namespace) -> SamplingParams:
    """The flags as SamplingParams (validated: a bad value raises JaxrapError); fields without
    a flag keep their defaults."""
    values = {field.name: getattr(args, field.name) for field in dataclasses.fields(SamplingParams) if hasattr(args, field.name)}
    if "stop" in values:
        # \n, \t and \\ in --stop mean what they do in Python strings; other text stays as typed.
        values["stop"] = tuple(s.encode("latin-1", "backslashreplace").decode("unicode_escape") for s in values["stop"])
    return SamplingParams(**values)
