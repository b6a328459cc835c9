"""`jaxrap eval`'s whole evaluation: perplexity of a split (overall and per artist), then lyric
metrics of the split's human continuations and, with ``samples``, of generated ones.

The two columns are the same measurements on the same prompts (``samples.eval_prompts``):
human = each song's real continuation after its first bar; samples = what the model writes
after that bar, with the given sampling parameters and the song's artist. Both are cut to
the same token budget. Metrics: the model's perplexity of the continuation
(``samples.continuation_perplexity``), repetition, loops and rhyme (``lyric_metrics``),
words copied from the train split (``memorisation``), artist fidelity (``fidelity``, for
models conditioned on artists), flow against the generation's targets (``flow_report``: scheme
accuracy, syllables per bar, rhyme density; overall and per artist), and, when there is a
judge, the independent artist classifier's attribution to the requested artist
(``artist_classifier``; on the human column it is the judge's ceiling).

The judge is trained once, on the train split, with the model's named artists, and judges
each text against its prompt's condition; prompts conditioned on ``unknown`` (artists the
model has no token for) are not judged. Judging the train split itself overstates the ceiling:
the judge was trained on those songs.

The result is an ``EvalReport``; its ``as_dict()`` is the JSON object `jaxrap eval --json`
prints (after ``model`` and ``step``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaxrap.evaluate.fidelity import ArtistFidelity
from jaxrap.evaluate.flow_report import FlowStats, FlowTargets
from jaxrap.evaluate.lyric_metrics import LyricStats
from jaxrap.evaluate.memorisation import MemorisationStats
from jaxrap.evaluate.perplexity import SplitPerplexity
from jaxrap.evaluate.samples import ContinuationPerplexity, EvalPrompt
from jaxrap.load import LoadedModel
from jaxrap.sample.params import SamplingParams, params_to_record

if TYPE_CHECKING:
    from jaxrap.evaluate.artist_classifier import ArtistAccuracy, ArtistClassifier
    from jaxrap.evaluate.likelihood import ContinuationScorer
    from jaxrap.evaluate.memorisation import TrainWordIndex
    from jaxrap.sample.generator import Generator

Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class LyricColumn:
    """Every lyric metric of one column of texts (the human continuations, or the samples)."""

    perplexity: ContinuationPerplexity  # the model's perplexity of the texts after their prompts
    stats: LyricStats  # repetition, loops, diversity, rhyme
    memorisation: MemorisationStats
    fidelity: ArtistFidelity | None  # None for a model without (two or more) artists
    flow: FlowStats  # scheme accuracy, syllables per bar, rhyme density; overall and per artist
    judge: ArtistAccuracy | None = None  # the artist classifier's attribution; None when not judged

    @property
    def texts(self) -> int:
        return self.stats.texts

    def as_dict(self) -> dict[str, Any]:
        return {
            "texts": self.texts,
            "perplexity": self.perplexity.as_dict(),
            **self.stats.as_dict(),
            "memorisation": self.memorisation.as_dict(),
            "fidelity": self.fidelity.as_dict() if self.fidelity is not None else None,
            "flow": self.flow.as_dict(),
            "judge": self.judge.as_dict() if self.judge is not None else None,
        }


@dataclasses.dataclass(frozen=True)
class LyricsReport:
    """The lyric metrics after the first bar of ``prompts`` songs, up to ``max_new_tokens`` each."""

    prompts: int
    max_new_tokens: int
    human: LyricColumn  # the songs' real continuations
    samples: LyricColumn | None = None  # generated ones, when samples were asked for
    sampling: SamplingParams | None = None  # how the samples were generated (seed included)
    flow_targets: FlowTargets = FlowTargets()  # what both columns' flow is measured against

    def as_dict(self) -> dict[str, Any]:
        sampling = None
        if self.sampling is not None:
            sampling = {key: value for key, value in params_to_record(self.sampling).items() if key not in ("artist", "num_samples")}
        return {
            "prompts": self.prompts,
            "max_new_tokens": self.max_new_tokens,
            "human": self.human.as_dict(),
            "samples": self.samples.as_dict() if self.samples is not None else None,
            "sampling": sampling,
            "flow_targets": self.flow_targets.as_dict(),
        }


@dataclasses.dataclass(frozen=True)
class EvalReport:
    """What `jaxrap eval` measures: the split's perplexity, then the lyric metrics."""

    perplexity: SplitPerplexity
    lyrics: LyricsReport

    def as_dict(self) -> dict[str, Any]:
        return {**self.perplexity.as_dict(), "lyrics": self.lyrics.as_dict()}


def judge_column(judge: ArtistClassifier, prompts: Sequence[EvalPrompt], texts: Sequence[Sequence[str]]) -> ArtistAccuracy | None:
    """The judge's attribution of ``texts[i]`` to ``prompts[i]``'s condition, for the prompts
    conditioned on one of its artists; None when there is none."""
    pairs = [(text, prompt.condition) for prompt, prompt_texts in zip(prompts, texts, strict=True)
             for text in prompt_texts if prompt.condition in judge.labels]
    return judge.accuracy([text for text, _ in pairs], [str(label) for _, label in pairs]) if pairs else None


def lyric_column(
    generator: Generator,
    scorer: ContinuationScorer,
    index: TrainWordIndex,
    prompts: Sequence[EvalPrompt],
    texts: Sequence[Sequence[str]],
    targets: FlowTargets = FlowTargets(),
    judge: ArtistClassifier | None = None,
) -> LyricColumn:
    """Every lyric metric of ``texts[i]`` (the texts written after ``prompts[i]``), the flow
    against ``targets``, and the ``judge``'s attribution when one is given."""
    from jaxrap.evaluate.fidelity import artist_fidelity
    from jaxrap.evaluate.flow_report import flow_stats
    from jaxrap.evaluate.lyric_metrics import lyric_stats
    from jaxrap.evaluate.memorisation import memorisation_stats
    from jaxrap.evaluate.samples import continuation_perplexity

    flat = [text for prompt_texts in texts for text in prompt_texts]
    fidelity = None
    if generator.song_prompt is not None and generator.song_prompt.conditioned:
        pairs = [(prompt, text) for prompt, prompt_texts in zip(prompts, texts, strict=True) for text in prompt_texts]
        fidelity = artist_fidelity(
            scorer, generator.song_prompt, [p.condition for p, _ in pairs],
            [generator.encode_text(p.prompt) for p, _ in pairs], [generator.encode_text(t) for _, t in pairs],
        )
    return LyricColumn(
        perplexity=continuation_perplexity(scorer, generator, prompts, texts),
        stats=lyric_stats(flat),
        memorisation=memorisation_stats(index, flat),
        fidelity=fidelity,
        flow=flow_stats(prompts, texts, targets),
        judge=judge_column(judge, prompts, texts) if judge is not None else None,
    )


def evaluate_model(
    loaded: LoadedModel,
    corpus_dir: str | Path,
    split: str = "validation",
    *,
    samples: int = 0,
    params: SamplingParams | None = None,
    targets: FlowTargets | None = None,
    judge: bool | None = None,
    block_size: int | None = None,
    per_device_batch_size: int = 8,
    dtype: str = "float32",
    progress: Progress = lambda stage: None,
) -> EvalReport:
    """The report `jaxrap eval` prints (see the module docstring).

    ``samples`` 0 scores the human side only, on every song of the split with two bars or
    more; N > 0 takes N prompts and generates one sample each with ``params``. ``targets``:
    what the flow of both columns is measured against; None: what ``params`` asks the sampler
    for (``FlowTargets.from_params``), given to measure samples written without them. ``judge``: train the artist classifier
    and judge both columns (True), or not (False); None judges only when there are samples
    (its training costs about half the perplexity pass, and the ceiling alone changes only
    with the corpus). A model without two named artists is never judged.
    """
    from jaxrap.data.corpus import load_corpus
    from jaxrap.evaluate.artist_classifier import ArtistClassifier
    from jaxrap.evaluate.likelihood import ContinuationScorer
    from jaxrap.evaluate.memorisation import TrainWordIndex
    from jaxrap.evaluate.perplexity import split_perplexity
    from jaxrap.evaluate.samples import cut_reference, eval_prompts, generate_samples
    from jaxrap.sample.generator import Generator

    params = (params or SamplingParams()).replace(num_samples=1).with_seed()
    targets = FlowTargets.from_params(params) if targets is None else targets
    progress(f"perplexity of the {split} split")
    perplexity = split_perplexity(loaded, corpus_dir, split, block_size=block_size,
                                  per_device_batch_size=per_device_batch_size, dtype=dtype)
    generator = Generator(loaded, dtype=dtype)
    scorer = ContinuationScorer(loaded, dtype=dtype)
    prompts = eval_prompts(corpus_dir, split, samples, loaded.song_prompt)
    progress("indexing the train lyrics' word n-grams")
    index = TrainWordIndex(load_corpus(corpus_dir)["train"]["text"])
    classifier = None
    if judge or (judge is None and samples):
        progress("training the artist judge on the train split")
        classifier = ArtistClassifier.for_model(corpus_dir, loaded.song_prompt, seed=0)
    progress(f"lyric metrics of {len(prompts)} human continuations")
    human = [[cut_reference(generator, prompt, params.new_tokens_cap)] for prompt in prompts]
    lyrics = LyricsReport(len(prompts), params.new_tokens_cap,
                          lyric_column(generator, scorer, index, prompts, human, targets, classifier), flow_targets=targets)
    if samples:
        texts = generate_samples(generator, prompts, params,
                                 progress=lambda done, total: progress(f"generating samples: {done}/{total}"))
        progress(f"lyric metrics of {len(prompts)} samples")
        column = lyric_column(generator, scorer, index, prompts, texts, targets, classifier)
        lyrics = dataclasses.replace(lyrics, samples=column, sampling=params)
    return EvalReport(perplexity, lyrics)
