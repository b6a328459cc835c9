"""The terminal UI's side of the sampler: load a model, say what it is, stream one sample.

Everything here runs in worker threads. jax and the sampler are imported inside
``load_engine``, so importing this module, and starting the UI, costs nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from jaxrap.load import LoadedModel
from jaxrap.sample.params import SamplingParams

if TYPE_CHECKING:
    from jax import Device

    from jaxrap.sample.bar_check import Bar
    from jaxrap.sample.generator import Generator, TextDelta


class Engine(Protocol):
    model: LoadedModel  # what was loaded: its step, context (config.n_positions) and artists
    device: str  # where it runs: "cpu", "gpu (NVIDIA H200)"

    def stream(self, prompt: str, params: SamplingParams, cancel: threading.Event) -> Iterator[TextDelta]:
        """Deltas of one sample as they are decoded, each with text or a bar's record (``TextDelta.bar``,
        with bar controls); ends early once ``cancel`` is set."""
        ...

    def suggest_bars(
        self, bars: Sequence[str], params: SamplingParams, k: int, *, index: int | None = None, cancel: threading.Event | None = None
    ) -> list[Bar]:
        """``k`` candidates for the bar after ``bars`` (``index`` None) or for ``bars[index]``
        drawn again, met ones first (``Generator.suggest_bars``); [] once ``cancel`` is set."""
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
    return SamplerEngine(generator, describe_device(jax.devices()[0]))


def describe_device(device: Device) -> str:
    """"cpu", or the platform and the chip: "gpu (NVIDIA H200)"."""
    kind = device.device_kind
    return device.platform if kind.lower() == device.platform else f"{device.platform} ({kind})"


class SamplerEngine:
    """A jaxrap.sample Generator, one sample (or one bar's candidates) at a time."""

    def __init__(self, generator: Generator, device: str):
        self.generator = generator
        self.model = generator.loaded
        self.device = device

    def stream(self, prompt: str, params: SamplingParams, cancel: threading.Event) -> Iterator[TextDelta]:
        for delta in self.generator.stream(prompt, params.replace(num_samples=1), cancel):
            if delta.text or delta.bar is not None:
                yield delta

    def suggest_bars(
        self, bars: Sequence[str], params: SamplingParams, k: int, *, index: int | None = None, cancel: threading.Event | None = None
    ) -> list[Bar]:
        return self.generator.suggest_bars(bars, params, k, index=index, cancel=cancel)
