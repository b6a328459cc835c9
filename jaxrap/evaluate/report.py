"""`jaxrap eval`'s whole evaluation: perplexity of a split (overall and per artist), then lyric
metrics of the split's human continuations and, with ``samples``, of generated ones.

The two columns are the same measurements on the same prompts (``samples.eval_prompts``):
human = each song's real continuation after its first bar; samples = what the model writes
after that bar, with the given sampling parameters and the song's artist. Both are cut to
the same token budget. Metrics: the model's perplexity of the continuation
(``samples.continuation_perplexity``), repetition, loops and rhyme (``lyric_metrics``),
words copied from the train split (``memorisation``), and artist fidelity (``fidelity``, for
models conditioned on artists).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jaxrap.load import LoadedModel
from jaxrap.sample.params import SamplingParams

Progress = Callable[[str], None]


def lyric_columns(
    generator,
    scorer,
    index,
    prompts,
    texts: list[list[str]],
) -> dict[str, Any]:
    """Every lyric metric of ``texts[i]`` (the texts written after ``prompts[i]``)."""
    from jaxrap.evaluate.fidelity import artist_fidelity
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
    return {
        "texts": len(flat),
        "perplexity": continuation_perplexity(scorer, generator, prompts, texts).as_dict(),
        **lyric_stats(flat).as_dict(),
        "memorisation": memorisation_stats(index, flat).as_dict(),
        "fidelity": fidelity.as_dict() if fidelity is not None else None,
    }


def evaluate_model(
    loaded: LoadedModel,
    corpus_dir: str | Path,
    split: str = "validation",
    *,
    samples: int = 0,
    params: SamplingParams | None = None,
    block_size: int | None = None,
    per_device_batch_size: int = 8,
    dtype: str = "float32",
    progress: Progress = lambda stage: None,
) -> dict[str, Any]:
    """The JSON-able record `jaxrap eval` prints (see the module docstring).

    ``samples`` 0 scores the human side only, on every song of the split with two bars or
    more; N > 0 takes N prompts and generates one sample each with ``params``.
    """
    from jaxrap.data.corpus import load_corpus
    from jaxrap.evaluate.likelihood import ContinuationScorer
    from jaxrap.evaluate.memorisation import TrainWordIndex
    from jaxrap.evaluate.perplexity import split_perplexity
    from jaxrap.evaluate.samples import cut_reference, eval_prompts, generate_samples
    from jaxrap.sample.generator import Generator

    params = (params or SamplingParams()).replace(num_samples=1).with_seed()
    progress(f"perplexity of the {split} split")
    perplexity = split_perplexity(loaded, corpus_dir, split, block_size=block_size,
                                  per_device_batch_size=per_device_batch_size, dtype=dtype)
    record: dict[str, Any] = perplexity.as_dict()
    generator = Generator(loaded, dtype=dtype)
    scorer = ContinuationScorer(loaded, dtype=dtype)
    prompts = eval_prompts(corpus_dir, split, samples, loaded.song_prompt)
    progress("indexing the train lyrics' word n-grams")
    index = TrainWordIndex(load_corpus(corpus_dir)["train"]["text"])
    progress(f"lyric metrics of {len(prompts)} human continuations")
    human = [[cut_reference(generator, prompt, params.max_new_tokens)] for prompt in prompts]
    lyrics: dict[str, Any] = {
        "prompts": len(prompts),
        "max_new_tokens": params.max_new_tokens,
        "human": lyric_columns(generator, scorer, index, prompts, human),
        "samples": None,
        "sampling": None,
    }
    if samples:
        texts = generate_samples(generator, prompts, params,
                                 progress=lambda done, total: progress(f"generating samples: {done}/{total}"))
        progress(f"lyric metrics of {len(prompts)} samples")
        lyrics["samples"] = lyric_columns(generator, scorer, index, prompts, texts)
        lyrics["sampling"] = {key: list(value) if isinstance(value, tuple) else value
                              for key, value in dataclasses.asdict(params).items() if key not in ("artist", "num_samples")}
    record["lyrics"] = lyrics
    return record
