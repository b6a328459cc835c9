"""Fixed evaluation prompts from a corpus split, samples generated from them, and the model's
perplexity of what follows a prompt (its own sample, or the song's real continuation).

A prompt is the first bar of a song (with its newline: the sample starts the second bar);
its reference is the rest of the song, cut to the same token budget as a sample, so human
and generated texts are compared at the same length. Songs are taken round-robin over the
artists (sorted), in split order within each artist: any N prompts cover the artists evenly,
and the same N give the same prompts every time. A model conditioned on artists gets each
song's artist (or ``unknown`` for an artist it has no token for).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from jaxrap.evaluate.likelihood import ContinuationScorer
from jaxrap.model.loss import perplexity
from jaxrap.sample.params import SamplingParams

if TYPE_CHECKING:
    from jaxrap.data.artists import SongPrompt
    from jaxrap.sample.generator import Generator


@dataclasses.dataclass(frozen=True)
class EvalPrompt:
    artist: str  # the song's artist, as in the corpus
    condition: str | None  # the artist the model writes as; None for a model without artist tokens
    prompt: str  # the song's first bar and its newline
    reference: str  # the rest of the song (cut to a sample's token budget by ``cut_reference``)


def eval_prompts(corpus_dir: str | Path, split: str, count: int, song_prompt: SongPrompt | None) -> list[EvalPrompt]:
    """``count`` prompts (0: one per song of the split that has two bars or more)."""
    from jaxrap.data.corpus import load_corpus

    by_artist: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in load_corpus(corpus_dir)[split]:
        bars = row["text"].lstrip("\n").split("\n", 1)
        if len(bars) == 2 and bars[0].strip() and bars[1].strip():
            by_artist[row["artist"]].append((bars[0] + "\n", bars[1]))
    queues = [by_artist[artist] for artist in sorted(by_artist)]
    conditioned = song_prompt if song_prompt is not None and song_prompt.conditioned else None
    prompts = []
    for rank in range(max(map(len, queues), default=0)):
        for artist, songs in zip(sorted(by_artist), queues):
            if rank < len(songs):
                condition = conditioned.artist_of(artist) if conditioned is not None else None
                prompts.append(EvalPrompt(artist, condition, *songs[rank]))
    return prompts[:count] if count else prompts


def token_budget(generator: Generator, prompt: EvalPrompt, max_new_tokens: int) -> int:
    """New tokens a sample of ``prompt`` gets: ``max_new_tokens``, or what the context leaves
    after the prompt, by the generator's own rule (``Generator.fitted_prompt``)."""
    return generator.fitted_prompt(generator.encode_prompt(prompt.prompt, prompt.condition), max_new_tokens)[1]


def cut_reference(generator: Generator, prompt: EvalPrompt, max_new_tokens: int) -> str:
    """The song's continuation, cut to the token budget a sample of the prompt has."""
    ids = generator.encode_text(prompt.reference)[: token_budget(generator, prompt, max_new_tokens)]
    return cast(str, generator.tokenizer.decode(ids, skip_special_tokens=True))  # one list of ids: one str


def generate_samples(
    generator: Generator, prompts: Sequence[EvalPrompt], params: SamplingParams, progress: Callable[[int, int], None] | None = None
) -> list[list[str]]:
    """``params.num_samples`` texts per prompt (without the prompt), all with ``params.seed``
    (drawn once when None) and each prompt's artist. Artist guidance applies to the prompts of
    named artists; those conditioned on ``unknown`` (an artist without a token) have no artist
    to guide towards and are written unguided."""
    from jaxrap.data.artists import UNKNOWN_ARTIST

    params = params.with_seed()
    texts = []
    for index, prompt in enumerate(prompts):
        budget = token_budget(generator, prompt, params.new_tokens_cap)
        guidance = 1.0 if prompt.condition == UNKNOWN_ARTIST else params.artist_guidance
        texts.append(generator.generate(prompt.prompt, params.replace(
            artist=prompt.condition, max_new_tokens=budget, min_new_tokens=min(params.min_new_tokens, budget),
            artist_guidance=guidance,
        )))
        if progress is not None:
            progress(index + 1, len(prompts))
    return texts


@dataclasses.dataclass(frozen=True)
class ContinuationPerplexity:
    loss: float  # mean negative log-likelihood per continuation token, nats
    tokens: int

    @property
    def perplexity(self) -> float:
        return perplexity(self.loss)

    def as_dict(self) -> dict[str, float | int]:
        return {"loss": self.loss, "tokens": self.tokens, "perplexity": self.perplexity}


def continuation_perplexity(
    scorer: ContinuationScorer, generator: Generator, prompts: Sequence[EvalPrompt], texts: Sequence[Sequence[str]]
) -> ContinuationPerplexity:
    """The model's token-weighted perplexity of ``texts[i][j]`` after ``prompts[i]`` (its own
    distribution, no sampling filters). Texts are re-tokenized as the model's tokenizer
    encodes them, which may differ slightly from the tokens a sampler drew."""
    contexts, continuations = [], []
    for prompt, prompt_texts in zip(prompts, texts, strict=True):
        context = generator.encode_prompt(prompt.prompt, prompt.condition)
        for text in prompt_texts:
            contexts.append(context)
            continuations.append(generator.encode_text(text))
    scores = [s for s in scorer.score(contexts, continuations) if len(s)]
    tokens = sum(len(s) for s in scores)
    return ContinuationPerplexity(float(-np.sum([s.sum() for s in scores]) / max(tokens, 1)), tokens)
