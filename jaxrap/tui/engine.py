"""The terminal UI's side of the sampler: load a model, say what it is, stream one sample.

Everything here runs in worker threads. jax and the sampler are imported inside
``load_engine``, so importing this module, and starting the UI, costs nothing.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from jaxrap.sample.params import SamplingParams


@dataclass(frozen=True)
class ModelInfo:
    name: str  # as the user gave it (--model)
    step: int | None  # the checkpoint step of a training run; None for a Hugging Face model
    device: str  # where it runs: "cpu", "gpu (NVIDIA H200)"
    context: int  # n_positions: prompt and generated tokens together
    # Values of SamplingParams.artist it accepts: the named artists, sorted, then "unknown"
    # (as `jaxrap artists` lists them); () for a model trained without artist tokens.
    artists: tuple[str, ...] = ()


class Engine(Protocol):
    info: ModelInfo

    def stream(self, prompt: str, params: SamplingParams, cancel: threading.Event) -> Iterator[str]:
        """Text deltas of one sample, as they are decoded; ends early once ``cancel`` is set."""
        ...


Progress = Callable[[str], None]  # told each stage: "starting jax", "loading the model", ...
LoadEngine = Callable[[str, Progress], Engine]  # load_engine, or a stand-in in tests


def load_engine(model: str, progress: Progress) -> Engine:
    """Load ``model`` (a training run directory, a Hugging Face directory or a hub id) and
    compile the decoder for short prompts (or load it from the persistent compilation cache,
    ``jaxrap.compile_cache``), reporting each stage. JaxrapError for user mistakes."""
    progress("starting jax")
    import jax

    from jaxrap.compile_cache import enable_compilation_cache
    from jaxrap.sample.generator import Generator

    enable_compilation_cache()  # a second start loads the decoder instead of compiling it
    progress("loading the model")
    generator = Generator.load(model)
    progress("compiling the decoder")
    for _ in generator.stream("\n", SamplingParams(max_new_tokens=2, seed=0)):
        pass
    device = describe_device(jax.devices()[0])
    info = ModelInfo(model, generator.step, device, generator.config.n_positions, generator.artists)
    return SamplerEngine(generator, info)


def describe_device(device) -> str:
    """"cpu", or the platform and the chip: "gpu (NVIDIA H200)"."""
    kind = device.device_kind
    return device.platform if kind.lower() == device.platform else f"{device.platform} ({kind})"


class SamplerEngine:
    """A jaxrap.sample Generator, one sample at a time."""

    def __init__(self, generator, info: ModelInfo):
        self.generator = generator
        self.info = info

    def stream(self, prompt: str, params: SamplingParams, cancel: threading.Event) -> Iterator[str]:
        for delta in self.generator.stream(prompt, params.replace(num_samples=1), cancel):
            if delta.text:
                yield delta.text


def params_to_record(params: SamplingParams) -> dict[str, Any]:
    """Every field of ``params`` as JSON values (tuples become lists), for the history."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(params).items()}


def params_from_record(record: dict[str, Any]) -> SamplingParams:
    """SamplingParams back from a history record: fields this version does not know are
    ignored, fields the record lacks take their defaults."""
    known = {field.name for field in dataclasses.fields(SamplingParams)}
    values = {key: tuple(value) if isinstance(value, list) else value for key, value in record.items() if key in known}
    return SamplingParams(**values)
