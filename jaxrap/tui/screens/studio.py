"""The studio: parameters on the left, the history of generations, the prompt at the bottom.

Threads: loading the model and generating run in thread workers (``@work(thread=True)``)
that report back with messages, so the screen never waits on jax. A generation owns a
``threading.Event``; Esc sets it, the sampler returns between two chunks, and the card is
marked stopped at once, whatever the worker is still finishing. The Python warnings of each
load and each generation (a prompt or max tokens cut to fit the model's context) become
notifications, every time (``caught_warnings``). The phonetics lexicon (rhyme colours) loads in
its own worker after the first frame too, so a long history never delays the window.
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static
from textual.worker import get_current_worker

from jaxrap.errors import FieldError, JaxrapError
from jaxrap.load import LoadedModel
from jaxrap.sample.params import SamplingParams, params_from_record, params_to_record
from jaxrap.tui.engine import Engine, LoadEngine
from jaxrap.tui.history import History, HistoryEntry
from jaxrap.tui.widgets.history_view import EntryCard, HistoryView
from jaxrap.tui.widgets.params_panel import ParamsPanel
from jaxrap.tui.widgets.status_line import StatusLine

if TYPE_CHECKING:
    from jaxrap.sample.generator import TextDelta
    from jaxrap.tui.app import StudioApp

BAR_SEPARATOR = " / "  # typed in the one-line prompt box between bars; becomes a newline
EMPTY_HINT = "No generations yet. Type a few words (bars separated by ' / ') and press Enter."


# warnings.catch_warnings swaps process-wide state (the filters, showwarning): two workers
# inside it at once would restore each other's state in the wrong order. Workers take turns;
# a stopped generation lets go within a chunk.
_WARNINGS_TURN = threading.Lock()


@contextmanager
def caught_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Every warning raised in the block, each time (not once per place, Python's default), in
    a list the worker turns into notifications."""
    with _WARNINGS_TURN, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def bars(card: EntryCard) -> str:
    return "1 bar" if card.bars == 1 else f"{card.bars} bars"


class PromptInput(Input):
    """The one-line prompt box; Enter sends."""

    BINDINGS = [Binding("enter", "submit", "Send", tooltip="Generate from the prompt with the panel's parameters.")]


class StudioScreen(Screen):
    BINDINGS = [
        Binding("escape", "stop", "Stop", tooltip="Stop the generation now; the text so far is kept."),
        Binding("ctrl+r", "regenerate", "Regenerate", tooltip="Run the highlighted entry again with a new seed."),
        Binding("ctrl+s", "export", "Export", tooltip="Write the whole history to a Markdown file."),
        Binding("f2", "app.toggle_writing_room", "Writing room", tooltip="Write a verse bar by bar with the model's candidates."),
    ]

    # Messages from the workers to the screen (posted from their threads).
    @dataclass
    class ModelProgress(Message, bubble=False):
        stage: str

    @dataclass
    class ModelReady(Message, bubble=False):
        model: LoadedModel
        device: str

    @dataclass
    class ModelFailed(Message, bubble=False):
        reason: str

    class PhoneticsReady(Message, bubble=False):
        pass

    @dataclass
    class Streamed(Message, bubble=False):
        card: EntryCard
        delta: TextDelta

    @dataclass
    class Finished(Message, bubble=False):
        card: EntryCard
        error: str | None
        field: str | None = None  # the SamplingParams field the error is about (FieldError.field)

    def __init__(self, model: str, load_engine: LoadEngine):
        super().__init__()
        self.model = model
        self.load_engine = load_engine  # runs in a worker thread
        self.history = History.for_model(model)
        self.entries: list[HistoryEntry] = []  # every entry of the file, and the new ones
        self.engine: Engine | None = None
        self._engine_ready = threading.Event()
        self._cancel: threading.Event | None = None  # the running generation's stop signal
        self._live: EntryCard | None = None
        self._live_from_panel = False  # the running generation has the panel's values (not a replay)

    def compose(self) -> ComposeResult:
        with Horizontal(id="workspace"):
            yield ParamsPanel(id="params")
            with Vertical(id="history-column"):
                yield Static(EMPTY_HINT, id="empty-hint")
                yield HistoryView(id="history")
        yield PromptInput(placeholder="Type the first bars ( / between bars), Enter to generate", id="prompt")
        yield StatusLine(id="status")
        yield Footer()

    @property
    def engine_ready(self) -> threading.Event:
        """Set once ``engine`` is loaded (the writing room waits on it too)."""
        return self._engine_ready

    def on_mount(self) -> None:
        status = self.query_one(StatusLine)
        status.model = self.model
        status.set_state("loading the model", "busy")
        self.entries = self.history.load()
        if self.history.skipped_lines:
            self.notify(f"{self.history.skipped_lines} damaged line(s) of {self.history.path} skipped", severity="warning")
        self.query_one(HistoryView).show_entries(self.entries)
        self._show_empty_hint()
        self.query_one(PromptInput).focus()
        # After the first frame: importing jax in the worker holds the GIL for a while.
        self.call_after_refresh(self.load_model)
        self.call_after_refresh(self.load_phonetics)

    def _show_empty_hint(self) -> None:
        self.query_one("#history-column").set_class(not self.entries and self._live is None, "-empty")

    # --- the model --------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="phonetics")
    def load_phonetics(self) -> None:
        """Read the lexicon the rhyme colours need (``load_lexicon`` caches it for the process:
        the sampler's bar checks and the panel's rhyme word use the same one)."""
        from jaxrap.phonetics.lexicon import load_lexicon

        try:
            load_lexicon()
        except (JaxrapError, OSError) as error:  # a damaged install: lyrics stay uncoloured, the studio works
            self.notify(f"rhymes are not coloured: {error}", severity="warning", timeout=10)
            return
        self.post_message(self.PhoneticsReady())

    def on_studio_screen_phonetics_ready(self, message: PhoneticsReady) -> None:
        self.query_one(HistoryView).show_rhymes()

    @work(thread=True, exclusive=True, group="load")
    def load_model(self) -> None:
        def progress(stage: str) -> None:
            self.post_message(self.ModelProgress(stage))

        try:
            with caught_warnings() as caught:
                engine = self.load_engine(self.model, progress)
            self._notify_warnings(caught)
        except JaxrapError as error:
            self.post_message(self.ModelFailed(str(error)))
            return
        except Exception as error:  # noqa: BLE001 - any failure gets the no-model screen, not a traceback
            self.post_message(self.ModelFailed(f"{self.model}: could not be loaded ({type(error).__name__}: {error})"))
            return
        self.engine = engine
        self._engine_ready.set()
        self.post_message(self.ModelReady(engine.model, engine.device))

    def on_studio_screen_model_progress(self, message: ModelProgress) -> None:
        self.query_one(StatusLine).set_state(message.stage, "busy")

    def on_studio_screen_model_ready(self, message: ModelReady) -> None:
        status = self.query_one(StatusLine)
        status.step, status.device = message.model.step, message.device
        panel = self.query_one(ParamsPanel)
        problem = self._artist_problem(panel.artist)  # of an entry edited while the model loaded
        if problem is not None:
            self.notify(f"{problem}; the panel is set to no specific artist", severity="warning")
            panel.artist = None
        panel.show_artists(message.model.artists)
        if self._live is None:
            status.set_state("ready")
        else:  # a prompt sent during loading: its entry gets the step it is generated with
            self._live.update_entry(step=message.model.step)

    def on_studio_screen_model_failed(self, message: ModelFailed) -> None:
        cast("StudioApp", self.app).show_model_problem(message.reason)

    # --- generating ---------------------------------------------------------------------

    @on(Input.Submitted, "#prompt")
    def send(self, event: Input.Submitted) -> None:
        prompt = event.value.replace(BAR_SEPARATOR, "\n")
        if not prompt.strip():
            self.notify("Type a few words first: the model continues your prompt.", severity="warning")
            return
        panel = self.query_one(ParamsPanel)
        try:
            params = panel.sampling_params()
        except FieldError as error:
            self.notify(str(error), title="Parameters", severity="error")
            panel.focus_problem(error)
            return
        event.input.clear()
        self.start_generation(prompt, params.with_seed(), from_panel=True)

    def start_generation(self, prompt: str, params: SamplingParams, *, from_panel: bool = False) -> None:
        """Stop any running generation, add a live card, stream into it from a worker.
        ``from_panel``: the params are the panel's, so a problem the sampler finds is shown there."""
        self.action_stop()
        self._live_from_panel = from_panel
        status = self.query_one(StatusLine)
        entry = HistoryEntry(prompt=prompt, output="", params=params_to_record(params), model=self.model, step=status.step)
        card = EntryCard(entry, len(self.entries) + 1, live=True)
        self._live, self._cancel = card, threading.Event()
        self.query_one(HistoryView).add_card(card)
        self._show_empty_hint()
        status.set_state("generating" if self._engine_ready.is_set() else "waiting for the model", "busy")
        self.generate(card, prompt, params, self._cancel)

    @work(thread=True, exclusive=True, group="generate")
    def generate(self, card: EntryCard, prompt: str, params: SamplingParams, cancel: threading.Event) -> None:
        worker = get_current_worker()
        while not self._engine_ready.wait(0.1):  # the first prompt may come before the model
            if cancel.is_set() or worker.is_cancelled:
                return
        engine = self.engine
        assert engine is not None  # set before _engine_ready
        error = field = None
        with caught_warnings() as caught:
            try:
                for delta in engine.stream(prompt, params, cancel):
                    self._notify_warnings(caught)  # the context's cuts come before the first text
                    if cancel.is_set() or worker.is_cancelled:
                        break
                    self.post_message(self.Streamed(card, delta))
            except FieldError as failure:  # no room for one bar, guidance refused by the sampler
                error, field = str(failure), failure.field
            except JaxrapError as failure:
                error = str(failure)
            except Exception as failure:  # noqa: BLE001 - shown on the card, the app keeps running
                error = f"{type(failure).__name__}: {failure}"
            self._notify_warnings(caught)
        self.post_message(self.Finished(card, error, field))

    def _notify_warnings(self, caught: list[warnings.WarningMessage]) -> None:
        """Each warning caught so far as a notification (thread-safe), once."""
        while caught:
            self.notify(str(caught.pop(0).message), title="Warning", severity="warning", timeout=10)

    def on_studio_screen_streamed(self, message: Streamed) -> None:
        if message.card is not self._live:  # stopped already: drop what was in flight
            return
        message.card.append_output(message.delta.text, message.delta.bar)
        self.query_one(HistoryView).scroll_end(animate=False)
        self.query_one(StatusLine).state = f"generating: {bars(message.card)}"  # the clock runs on

    def on_studio_screen_finished(self, message: Finished) -> None:
        if message.card is not self._live:
            return
        if message.field is not None and self._live_from_panel:
            assert message.error is not None  # a field comes with its error
            self.query_one(ParamsPanel).show_problem(FieldError(message.field, message.error))
        self._end_generation(stopped=False, error=message.error)

    def _end_generation(self, *, stopped: bool, error: str | None = None) -> None:
        card, self._live, self._cancel = self._live, None, None
        assert card is not None  # called for the running generation only
        card.finish(stopped=stopped, error=error)
        status = self.query_one(StatusLine)
        if error is not None:
            self.notify(error, title="Generation failed", severity="error")
            status.set_state("generation failed", "error")
            return
        self._save(card.entry)
        status.set_state(f"stopped after {bars(card)}" if stopped else f"ready: {bars(card)} generated")

    def _save(self, entry: HistoryEntry) -> None:
        self.entries.append(entry)
        try:
            self.history.append(entry)
        except OSError as failure:
            self.notify(f"could not save the history to {self.history.path}: {failure}", severity="error")

    def on_unmount(self) -> None:
        """Quitting mid-generation keeps the text so far, as a stopped entry."""
        live, cancel = self._live, self._cancel
        if live is not None and cancel is not None:
            cancel.set()
            self._save(dataclasses.replace(live.entry, stopped=True))

    # --- actions ----------------------------------------------------------------------

    def action_stop(self) -> None:
        if self._cancel is None:
            return
        self._cancel.set()
        self._end_generation(stopped=True)

    def _highlighted(self) -> HistoryEntry | None:
        entry = self.query_one(HistoryView).highlighted_entry()
        if entry is None:
            self.notify("No generation yet: type a prompt and press Enter.", severity="warning")
        return entry

    def _params_of(self, entry: HistoryEntry) -> SamplingParams | None:
        """The entry's parameters, or None (with a message) for a record edited by hand."""
        try:
            return params_from_record(entry.params)
        except (JaxrapError, TypeError) as error:
            self.notify(f"this entry's parameters are not valid any more: {error}", severity="error")
            return None

    def _artist_problem(self, artist: str | None) -> str | None:
        """Why the model cannot write as ``artist``, or None. None as well while the model
        loads: a generation then waits for it, and the sampler's error names the problem."""
        if artist is None or self.engine is None:
            return None
        known = self.engine.model.artists
        if artist in known:
            return None
        if not known:
            return f"{self.model} knows no artists (trained without artist tokens), so it cannot write as {artist}"
        return f"{self.model} does not know the artist {artist!r} (the panel's artist list has those it knows)"

    def _runnable_params(self, entry: HistoryEntry) -> SamplingParams | None:
        """The entry's parameters, or None (with a message) when they are not valid or name an
        artist the model does not know (another model's, or one dropped by a new training)."""
        params = self._params_of(entry)
        problem = self._artist_problem(params.artist) if params is not None else None
        if problem:
            self.notify(f"this entry cannot run again: {problem}", severity="error")
            return None
        return params

    def action_regenerate(self) -> None:
        entry = self._highlighted()
        params = self._runnable_params(entry) if entry is not None else None
        if entry is not None and params is not None:
            self.start_generation(entry.prompt, params.replace(seed=None).with_seed())

    def action_replay(self) -> None:
        entry = self._highlighted()
        params = self._runnable_params(entry) if entry is not None else None
        if entry is None or params is None:
            return
        step = self.query_one(StatusLine).step
        if entry.step != step and self._engine_ready.is_set():
            self.notify(f"This entry comes from step {entry.step}, the model is at step {step}: the text will differ.", severity="warning")
        self.start_generation(entry.prompt, params)

    def action_copy_entry(self) -> None:
        entry = self._highlighted()
        if entry is not None:
            self.app.copy_to_clipboard(entry.prompt + entry.output)
            self.notify("Copied to the clipboard (if your terminal allows it: OSC 52).")

    def action_edit_entry(self) -> None:
        entry = self._highlighted()
        params = self._params_of(entry) if entry is not None else None
        if entry is None or params is None:
            return
        problem = self._artist_problem(params.artist)
        if problem is not None:  # the rest of the entry is still worth editing
            self.notify(f"{problem}; the panel is set to no specific artist", severity="warning")
            params = params.replace(artist=None)
        self.query_one(ParamsPanel).show_params(params)
        prompt = self.query_one(PromptInput)
        prompt.value = entry.prompt.replace("\n", BAR_SEPARATOR)
        prompt.focus()

    def action_export(self) -> None:
        if not self.entries:
            self.notify("Nothing to export yet.", severity="warning")
            return
        try:
            path = self.history.export_markdown(self.entries)
        except OSError as failure:
            self.notify(f"export failed: {failure}", severity="error")
            return
        self.notify(f"{len(self.entries)} generations exported to {path}", title="Exported", timeout=10)
