"""Flow of a column of texts (`jaxrap eval`, the sampling sweep): scheme accuracy, syllables per
bar, rhyme density and bars ending on a function word (``flow_metrics``), overall and per
artist, against the targets a generation asked for (``FlowTargets``: ``--rhyme-scheme``,
``--rhyme-vowels``, ``--syllables``, ``--syllable-tolerance``).

Which bars each metric reads, for a text written after a prompt:

- scheme accuracy: the prompt's bars then the text's, scored with ``first`` = the prompt's bar
  count (``flow_metrics.scheme_accuracy``). The prompt's bars take the scheme's first letters and
  set their groups' rhymes, as the sampler reads a prompt that ends on a bar; pairs of two prompt
  bars are not scored, pairs of a prompt bar and a text bar are. With `jaxrap eval`'s prompts (a
  song's first bar) and ``AABB``, the first pair scored is (the prompt's bar, the text's first
  bar), for the songs' own continuations and for samples alike.
- syllables per bar, rhyme density and function-word endings: the text's bars only (the prompt was not written by the
  sampler); the density's first bar has no earlier bar and is not scored.

Bars are ``flow_metrics.lyric_bars`` of the lines a newline ends: a text's last line counts only
when a newline follows it. A text cut at its token budget (the songs' continuations are cut to
the samples' budget, and samples stop there) ends mid-bar, and half a bar would count as a short
bar that rhymes with nothing; a text that ended by itself loses at most one whole bar. A
prompt's unfinished last line, if any, begins the text's first bar, as in the sampler.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jaxrap.errors import FieldError, JaxrapError
from jaxrap.evaluate.flow_metrics import (
    FunctionEndings,
    RhymeDensity,
    SchemeScore,
    SyllableStats,
    function_word_endings,
    lyric_bars,
    rhyme_density,
    scheme_accuracy,
    syllable_stats,
)
from jaxrap.phonetics.scheme import parse_rhyme_scheme
from jaxrap.phonetics.sounds import MAX_RHYME_VOWELS

if TYPE_CHECKING:
    from jaxrap.evaluate.samples import EvalPrompt
    from jaxrap.sample.params import SamplingParams


@dataclasses.dataclass(frozen=True)
class FlowTargets:
    """What a generation asked of its bars; field names and rules are ``SamplingParams``'."""

    rhyme_scheme: str | None = None  # letters per bar (AABB...; x a free bar); None: no scheme accuracy
    syllables: int | None = None  # target syllables per bar; None: the mean only
    syllable_tolerance: int = 2  # a bar of syllables ± this meets the target
    rhyme_vowels: int = 1  # a pair meets the scheme when its bars end on the same last N vowels

    def __post_init__(self) -> None:
        if self.rhyme_scheme is not None:
            if not isinstance(self.rhyme_scheme, str):
                raise FieldError("rhyme_scheme", f"rhyme_scheme must be text such as AABB, got {self.rhyme_scheme!r}")
            try:
                pattern = parse_rhyme_scheme(self.rhyme_scheme).pattern
            except JaxrapError as error:  # the parser's message, with the field a UI can point at
                raise FieldError("rhyme_scheme", str(error)) from None
            object.__setattr__(self, "rhyme_scheme", pattern)
        if self.syllables is not None and (isinstance(self.syllables, bool) or not isinstance(self.syllables, int) or self.syllables < 1):
            raise FieldError("syllables", f"syllables must be an integer >= 1 (syllables per bar), got {self.syllables!r}")
        vowels = self.rhyme_vowels
        if isinstance(vowels, bool) or not isinstance(vowels, int) or not 1 <= vowels <= MAX_RHYME_VOWELS:
            raise FieldError("rhyme_vowels", f"rhyme_vowels must be in [1, {MAX_RHYME_VOWELS}], got {vowels!r}")
        tolerance = self.syllable_tolerance
        if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
            raise FieldError("syllable_tolerance", f"syllable_tolerance must be an integer >= 0, got {tolerance!r}")

    @classmethod
    def from_params(cls, params: SamplingParams) -> FlowTargets:
        """The targets ``params`` asks the sampler for (`--rhyme-scheme`, `--rhyme-vowels`,
        `--syllables`, `--syllable-tolerance`), already validated by ``SamplingParams``."""
        return cls(params.rhyme_scheme, params.syllables, params.syllable_tolerance, params.rhyme_vowels)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class FlowScores:
    """The flow counts of some texts; pools with ``+``."""

    scheme: SchemeScore  # (0, 0) without a scheme
    syllables: SyllableStats  # ``within*`` 0 without a syllable target
    density: RhymeDensity
    endings: FunctionEndings  # bars ending on an unstressed function word

    def __add__(self, other: FlowScores) -> FlowScores:
        return FlowScores(self.scheme + other.scheme, self.syllables + other.syllables, self.density + other.density,
                          self.endings + other.endings)

    def as_dict(self, targets: FlowTargets) -> dict[str, Any]:
        """Shares that need a target are None without one."""
        syllables, target = self.syllables, targets.syllables is not None
        return {
            "scheme_accuracy": self.scheme.accuracy if targets.rhyme_scheme is not None else None,
            "scheme_pairs": self.scheme.pairs if targets.rhyme_scheme is not None else None,
            "bars": syllables.bars,
            "syllables_per_bar": syllables.mean,
            "syllables_within1": syllables.share_within1 if target else None,
            "syllables_within2": syllables.share_within2 if target else None,
            "syllables_within_tolerance": syllables.share_within_tolerance if target else None,
            "rhyme_density": self.density.density,
            "density_bars": self.density.bars,
            "function_word_endings": self.endings.share,
        }


NO_FLOW = FlowScores(SchemeScore(0, 0), SyllableStats(0, 0, 0, 0), RhymeDensity(0, 0), FunctionEndings(0, 0))


@dataclasses.dataclass(frozen=True)
class FlowStats:
    """A column's flow: pooled over every text, and per artist (the prompts' corpus artists)."""

    targets: FlowTargets
    overall: FlowScores
    per_artist: dict[str, FlowScores]

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.overall.as_dict(self.targets),
            "per_artist": {artist: scores.as_dict(self.targets) for artist, scores in self.per_artist.items()},
        }


def text_flow(prompt: str, text: str, targets: FlowTargets) -> FlowScores:
    """The flow counts of ``text`` written after ``prompt`` (the module docstring's bars)."""
    complete, _, unfinished = prompt.rpartition("\n")
    prompt_bars, bars = lyric_bars(complete), lyric_bars((unfinished + text).rpartition("\n")[0])
    scheme = SchemeScore(0, 0)
    if targets.rhyme_scheme is not None:
        scheme = scheme_accuracy([*prompt_bars, *bars], targets.rhyme_scheme, first=len(prompt_bars), vowels=targets.rhyme_vowels)
    syllables = syllable_stats(bars, targets.syllables, targets.syllable_tolerance)
    return FlowScores(scheme, syllables, rhyme_density(bars), function_word_endings(bars))


def flow_stats(prompts: Sequence[EvalPrompt], texts: Sequence[Sequence[str]], targets: FlowTargets) -> FlowStats:
    """The flow of ``texts[i]`` (the texts written after ``prompts[i]``), overall and per artist
    (sorted by name)."""
    per_artist: dict[str, FlowScores] = {}
    for prompt, prompt_texts in zip(prompts, texts, strict=True):
        for text in prompt_texts:
            per_artist[prompt.artist] = per_artist.get(prompt.artist, NO_FLOW) + text_flow(prompt.prompt, text, targets)
    per_artist = dict(sorted(per_artist.items()))
    return FlowStats(targets, sum(per_artist.values(), NO_FLOW), per_artist)
