"""The writing room: write a verse bar by bar, with the model's candidates one bar at a time.

The screen sits on top of the studio (F2 goes back and forth; ``jaxrap tui --write`` opens it
at start), and uses the studio's model: it never loads one itself. Its panel starts with the
studio's values, and its artist, guidance and bar controls apply to the candidates; the bar
controls also decide the marks (``jaxrap.tui.verse.verse_marks``: what the sampler would say of
each bar).

Nothing typed is lost: every change of the verse is written to its file at once
(``jaxrap.tui.verse.write_verse``, atomic), a failed write keeps the verse on screen, says so,
and is tried again at the next change; a failed draw leaves the verse as it was.

Threads: drawing candidates runs in a thread worker (``exclusive``: a new request replaces the
one in flight, whose answer is then dropped) that reports back with messages, as the studio's
generation does. The lexicon (marks) loads in its own worker after the first frame.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, OptionList, Select, Static
from textual.worker import get_current_worker

from jaxrap.errors import FieldError, JaxrapError
from jaxrap.load import LoadedModel
from jaxrap.sample.params import SamplingParams
from jaxrap.tui.screens.studio import StudioScreen, caught_warnings
from jaxrap.tui.verse import (
    BarMarks,
    describe_controls,
    export_verse,
    is_bar,
    read_verse,
    rhyme_partner,
    verse_marks,
    write_verse,
)
from jaxrap.tui.widgets.candidate_list import CandidateList
from jaxrap.tui.widgets.params_panel import ParamsPanel
from jaxrap.tui.widgets.rhyme_list import WORDS_PER_COUNT, RhymeList
from jaxrap.tui.widgets.status_line import StatusLine
from jaxrap.tui.widgets.verse_view import VerseView

if TYPE_CHECKING:
    from jaxrap.phonetics.rhyme_finder import CorpusWords, Rhymes
    from jaxrap.sample.bar_check import Bar


@dataclass(frozen=True)
class Request:
    """One draw of candidates: what the model is given, and where the pick goes."""

    bars: tuple[str, ...]  # the verse's bars as the model reads them (blank lines and [markers] left out)
    index: int | None  # the bar to draw again in place; None: the bar after the last
    row: int  # the verse line the pick replaces (``index`` set) or goes after (None; -1: at the top)
    params: SamplingParams  # with a concrete seed
    number: int = field(default=0, compare=False)  # the screen's count of requests: later ones win

    @property
    def what(self) -> str:
        bar = len(self.bars) if self.index is None else self.index
        return f"bar {bar + 1}"


def request_for(lines: Sequence[str], row: int | None, params: SamplingParams, number: int) -> Request:
    """The request for the bar after the last (``row`` None) or for line ``row`` drawn again:
    the model reads the bars only, plus the line itself when it is still blank."""
    if row is None:
        last = max((i for i, line in enumerate(lines) if is_bar(line)), default=-1)
        return Request(tuple(line for line in lines if is_bar(line)), None, last, params, number)
    kept = [i for i, line in enumerate(lines) if is_bar(line) or i == row]
    return Request(tuple(lines[i] for i in kept), kept.index(row), row, params, number)


def lines_with_pick(lines: Sequence[str], request: Request, text: str) -> tuple[list[str], int]:
    """The verse with ``text`` placed as ``request`` says, and the line it is on. A next bar
    fills the first blank line after the last bar, or comes after it."""
    lines = list(lines)
    if request.index is not None and request.row < len(lines):
        lines[request.row] = text
        return lines, request.row
    row = min(request.row + 1, len(lines))
    if row < len(lines) and not lines[row].strip():
        lines[row] = text
    else:
        lines.insert(row, text)
    return lines, row


class WritingScreen(Screen):
    BINDINGS = [
        Binding("ctrl+g", "next_bar", "Next bar", tooltip="Ask the model for candidates for the bar after the last one."),
        Binding("ctrl+r", "redo_bar", "Redo bar", tooltip="Ask the model for candidates to replace the bar with the cursor."),
        Binding("escape", "stop", "Stop", show=False, tooltip="Stop drawing candidates, or close them."),
        Binding("ctrl+f", "find_rhymes", "Rhymes", tooltip="Go to the words that rhyme with the bar (Enter puts one in it)."),
        Binding("ctrl+z", "undo", "Undo", tooltip="Undo the last new, joined, moved, deleted or picked bar."),
        Binding("ctrl+s", "export", "Export", tooltip="Write the verse to a text file and a Markdown file (with its marks)."),
        Binding("f2", "app.toggle_writing_room", "Studio", tooltip="Back to the studio; the verse is saved."),
    ]

    @dataclass
    class ModelReady(Message, bubble=False):
        model: LoadedModel
        device: str

    class PhoneticsReady(Message, bubble=False):
        pass

    @dataclass
    class Drawn(Message, bubble=False):
        request: Request
        bars: list[Bar]

    @dataclass
    class CorpusWordsReady(Message, bubble=False):
        words: CorpusWords

    @dataclass
    class RhymesFound(Message, bubble=False):
        source: tuple[str, int]  # (the text looked up, vowels)
        rhymes: Rhymes | None
        error: str | None  # why there are none to look up

    @dataclass
    class DrawFailed(Message, bubble=False):
        request: Request
        error: str
        field: str | None = None  # the SamplingParams field the error is about (FieldError.field)

    def __init__(self, studio: StudioScreen, verse_path: Path, params: SamplingParams | None = None):
        """``params``: the panel's first values (the studio's), artist included."""
        super().__init__()
        self.studio = studio
        self.verse_path = verse_path
        self._first_params = params
        self._saved = read_verse(verse_path)  # what the file holds; JaxrapError for a file that is not a verse
        self._phonetics = False  # the lexicon is loaded: marks can be computed
        self._params = SamplingParams()  # the panel's last valid values (marks use them)
        self._requests = 0
        self._drawing: Request | None = None  # the request in flight
        self._cancel: threading.Event | None = None  # its stop signal (the sampler returns between two chunks)
        self._shown: Request | None = None  # the request whose candidates are shown
        self._candidates: list[Bar] = []
        self._save_failed = False
        self._rhymes_of: tuple[str, int] | None = None  # the rhyme finder's last lookup
        self._verse: VerseView | None = None
        self._corpus_words: CorpusWords | None = None  # the training corpus's words Lexique lacks, once read

    def compose(self) -> ComposeResult:
        with Horizontal(id="workspace"):
            yield ParamsPanel(id="params")
            with Vertical(id="verse-column"):
                yield Static(f"Verse · {self.verse_path}", id="verse-title", classes="panel-title")
                yield self.verse
                yield Static("", id="bar-hint")
                yield CandidateList(id="candidates")
            with Vertical(id="rhymes-column"):
                yield Static("Rhymes", id="rhymes-title", classes="panel-title")
                yield RhymeList(id="rhymes")
        yield StatusLine(id="status")
        yield Footer()

    @property
    def verse(self) -> VerseView:
        """The verse's rows (kept here: on_unmount saves them after the DOM is gone)."""
        if self._verse is None:
            self._verse = VerseView(self._saved, id="verse")
        return self._verse

    @property
    def panel(self) -> ParamsPanel:
        return self.query_one(ParamsPanel)

    def on_mount(self) -> None:
        if self._first_params is not None:
            self._params = self._first_params
            self.panel.show_params(self._params)
        self.query_one(CandidateList).display = False
        status = self.query_one(StatusLine)
        status.model = self.studio.model
        if self.studio.engine is not None:
            self._model_ready(self.studio.engine.model, self.studio.engine.device)
        else:
            status.set_state("waiting for the model", "busy")
            self.wait_for_model()
        self.verse.focus_row(len(self._saved) - 1, cursor=len(self._saved[-1]) if self._saved else 0)
        self.call_after_refresh(self.load_phonetics)

    # --- the model and the lexicon -------------------------------------------------------

    @work(thread=True, exclusive=True, group="wait-model")
    def wait_for_model(self) -> None:
        worker = get_current_worker()
        while not self.studio.engine_ready.wait(0.1):
            if worker.is_cancelled:
                return
        engine = self.studio.engine
        assert engine is not None  # set before engine_ready
        self.post_message(self.ModelReady(engine.model, engine.device))

    def on_writing_screen_model_ready(self, message: ModelReady) -> None:
        self._model_ready(message.model, message.device)

    def _model_ready(self, model: LoadedModel, device: str) -> None:
        status = self.query_one(StatusLine)
        status.step, status.device = model.step, device
        self.panel.show_artists(model.artists)
        if self._drawing is None:
            status.set_state("ready: Ctrl+G draws the next bar")
        if model.run_config is not None:
            self.load_corpus_words(model.run_config.data.path)

    @work(thread=True, exclusive=True, group="corpus-words")
    def load_corpus_words(self, path: str) -> None:
        """The words of the corpus the model was trained on that Lexique lacks, for the rhyme
        finder (as `jaxrap rhymes --data` lists them); none when the corpus is not here (a run
        trained elsewhere: its relative ``data.path`` is read from the working directory)."""
        from jaxrap.data.corpus import corpus_word_counts, is_corpus
        from jaxrap.phonetics.rhyme_finder import CorpusWords

        if not is_corpus(path):
            return
        try:
            words = CorpusWords(corpus_word_counts(path))
        except (JaxrapError, OSError) as error:  # a damaged corpus: Lexique's words only
            self.notify(f"the rhyme finder lists Lexique's words only: {path}: {error}", severity="warning", timeout=10)
            return
        self.post_message(self.CorpusWordsReady(words))

    def on_writing_screen_corpus_words_ready(self, message: CorpusWordsReady) -> None:
        self._corpus_words, self._rhymes_of = message.words, None
        self._look_up_rhymes()

    @work(thread=True, exclusive=True, group="phonetics")
    def load_phonetics(self) -> None:
        from jaxrap.phonetics.lexicon import load_lexicon

        try:
            load_lexicon()  # cached: the studio has usually read it already
        except (JaxrapError, OSError) as error:
            self.notify(f"bars have no marks: {error}", severity="warning", timeout=10)
            return
        self.post_message(self.PhoneticsReady())

    def on_writing_screen_phonetics_ready(self, message: PhoneticsReady) -> None:
        self._phonetics = True
        self._show_marks()

    # --- the verse -----------------------------------------------------------------------------

    @on(VerseView.Changed)
    def _verse_changed(self) -> None:
        self._save(self.verse.lines)  # the rows as they are now: keys typed since the message was sent too
        self._show_marks()

    @on(VerseView.CursorMoved)
    def _cursor_moved(self) -> None:
        self._show_hint()
        self._look_up_rhymes()

    def _save(self, lines: list[str]) -> None:
        if lines == self._saved or (lines == [""] and not self._saved):
            return
        try:
            write_verse(self.verse_path, lines)
        except OSError as failure:
            if not self._save_failed:  # once per failure, not per keystroke
                self.notify(f"could not save the verse to {self.verse_path}: {failure}; it stays on screen, "
                            "and every change tries again (Ctrl+S exports a copy)", severity="error", timeout=15)
            self._save_failed = True
            return
        if self._save_failed:
            self.notify(f"the verse is saved again to {self.verse_path}")
        self._saved, self._save_failed = list(lines), False

    @on(Input.Changed, "#params Input")
    @on(Select.Changed, "#params Select")
    def _params_changed(self) -> None:
        self.call_later(self._show_marks)  # after the panel has checked its values

    def _show_marks(self) -> None:
        try:
            self._params = self.panel.sampling_params()
        except FieldError:  # the panel shows the problem; the marks keep the last valid values
            pass
        if self._phonetics:
            self.verse.show_marks(verse_marks(self.verse.lines, self._params))
            self._show_hint()
            self._look_up_rhymes()

    def _marks_of_cursor(self) -> BarMarks | None:
        marks = self.verse.marks
        row = self.verse.cursor_row
        return marks[row] if row < len(marks) else None

    def _show_hint(self) -> None:
        """Under the verse: why the bar with the cursor misses its targets, or what is set."""
        mark = self._marks_of_cursor()
        hint = self.query_one("#bar-hint", Static)
        hint.set_class(bool(mark and mark.misses), "-miss")
        if mark is not None and mark.misses:
            hint.update(f"✗ bar {(mark.bar or 0) + 1}: " + "; ".join(mark.misses))
        else:
            controls = describe_controls(self._params)
            hint.update(f"Targets: {controls}" if controls else "No bar controls: set a scheme or syllables in the panel.")

    # --- the rhyme finder ----------------------------------------------------------------------

    def _look_up_rhymes(self) -> None:
        """Words for the bar with the cursor, when what it rhymes with changed (``rhyme_partner``)."""
        source = rhyme_partner(self.verse.lines, self.verse.cursor_row, self._params)
        key = (source or "", self._params.rhyme_vowels)
        if key != self._rhymes_of:
            self._rhymes_of = key
            self.find_rhymes(key)

    @work(thread=True, exclusive=True, group="rhymes")
    def find_rhymes(self, source: tuple[str, int]) -> None:
        """``find_rhymes`` off the UI thread: its first search reads the whole lexicon."""
        from jaxrap.phonetics.rhyme_finder import find_rhymes

        text, vowels = source
        corpus = self._corpus_words
        if not text.strip():
            self.post_message(self.RhymesFound(source, None, "a blank bar: type a word, or give it a scheme letter"))
            return
        try:
            rhymes = find_rhymes(text, vowels, limit=WORDS_PER_COUNT, corpus=corpus)
        except JaxrapError as error:  # no vowel, fewer vowels than asked
            self.post_message(self.RhymesFound(source, None, str(error)))
            return
        self.post_message(self.RhymesFound(source, rhymes, None if rhymes.groups else f"no word rhymes on '{rhymes.key}'"))

    def on_writing_screen_rhymes_found(self, message: RhymesFound) -> None:
        if message.source != self._rhymes_of:
            return  # the cursor has moved on
        from jaxrap.phonetics.rhyme import last_word

        title = self.query_one("#rhymes-title", Static)
        word = last_word(message.source[0])
        if message.rhymes is not None and message.rhymes.groups:
            title.update(f"Rhymes of «{word}» · {message.rhymes.key}")
        else:
            title.update(f"Rhymes{f' of «{word}»' if word else ''}: {message.error}")
        self.query_one(RhymeList).show_rhymes(message.rhymes)

    def action_find_rhymes(self) -> None:
        rhymes = self.query_one(RhymeList)
        if rhymes.words:
            rhymes.focus()
        else:
            self.notify("No rhymes for this bar: " + str(self.query_one("#rhymes-title", Static).content), severity="warning")

    @on(OptionList.OptionSelected, "#rhymes")
    def _insert_rhyme(self, event: OptionList.OptionSelected) -> None:
        word = self.query_one(RhymeList).words.get(event.option_index)
        if word is None:
            return
        bar = self.verse.row_input(self.verse.cursor_row)
        before, after = bar.value[: bar.cursor_position], bar.value[bar.cursor_position :]
        space_before = " " if before and not before.endswith((" ", "'", "’", "-")) else ""
        space_after = " " if after and not after.startswith((" ", ",", ".", "!", "?", ";", ":")) else ""
        bar.value = before + space_before + word + space_after + after  # typed: saved and marked like typing
        bar.cursor_position = len(before + space_before + word)
        bar.focus()

    def action_back_to_verse(self) -> None:
        self.verse.focus_row(self.verse.cursor_row)

    def action_undo(self) -> None:
        if not self.verse.undo():
            self.notify("Nothing to undo.", severity="warning")

    # --- candidates ----------------------------------------------------------------------------

    def action_next_bar(self) -> None:
        self._draw(None)

    def action_redo_bar(self) -> None:
        self._draw(self.verse.cursor_row)

    def action_redraw(self) -> None:
        request = self._shown or self._drawing
        if request is not None:
            self._start(Request(request.bars, request.index, request.row, request.params.replace(seed=None).with_seed()))

    def _draw(self, row: int | None) -> None:
        """Ask for candidates with the panel's values (a bad value is shown on its field)."""
        try:
            params = self.panel.sampling_params()
        except FieldError as error:
            self.notify(str(error), title="Parameters", severity="error")
            self.panel.focus_problem(error)
            return
        lines = self.verse.lines
        if row is not None and not lines[row].strip() and not any(is_bar(line) for line in lines):
            row = None  # a blank verse: its first bar
        self._start(request_for(lines, row, params.with_seed(), 0))

    def _start(self, request: Request) -> None:
        self._requests += 1
        request = Request(request.bars, request.index, request.row, request.params, self._requests)
        if self._cancel is not None:
            self._cancel.set()
        self._drawing, self._cancel = request, threading.Event()
        ready = self.studio.engine_ready.is_set()
        self.query_one(StatusLine).set_state(
            f"drawing {request.params.candidates} candidates for {request.what}" if ready else "waiting for the model", "busy"
        )
        self.draw(request, self._cancel)

    @work(thread=True, exclusive=True, group="draw")
    def draw(self, request: Request, cancel: threading.Event) -> None:
        worker = get_current_worker()
        while not self.studio.engine_ready.wait(0.1):  # a request may come before the model
            if worker.is_cancelled:
                return
        engine = self.studio.engine
        assert engine is not None  # set before engine_ready
        error = field = None
        bars: list[Bar] = []
        with caught_warnings() as caught:
            try:
                bars = engine.suggest_bars(
                    list(request.bars), request.params, request.params.candidates, index=request.index, cancel=cancel
                )
            except FieldError as failure:
                error, field = str(failure), failure.field
            except JaxrapError as failure:
                error = str(failure)
            except Exception as failure:  # noqa: BLE001 - shown as a message, the verse and the app stay
                error = f"{type(failure).__name__}: {failure}"
        while caught:
            self.notify(str(caught.pop(0).message), title="Warning", severity="warning", timeout=10)
        if worker.is_cancelled or cancel.is_set():
            return
        self.post_message(self.Drawn(request, bars) if error is None else self.DrawFailed(request, error, field))

    def on_writing_screen_drawn(self, message: Drawn) -> None:
        if self._drawing is None or message.request.number != self._drawing.number:
            return  # stopped, or replaced by a later request
        self._drawing = self._cancel = None
        if not message.bars:
            self.query_one(StatusLine).set_state(f"no candidates for {message.request.what}", "error")
            return
        self._shown, self._candidates = message.request, message.bars
        met = sum(bar.met for bar in message.bars)
        self.query_one(StatusLine).set_state(
            f"{len(message.bars)} candidates for {message.request.what}, {met} meet the targets: 1-{min(len(message.bars), 9)} picks"
        )
        candidates = self.query_one(CandidateList)
        candidates.show_bars(message.bars)
        candidates.display = True
        candidates.focus()

    def on_writing_screen_draw_failed(self, message: DrawFailed) -> None:
        if self._drawing is None or message.request.number != self._drawing.number:
            return
        self._drawing = self._cancel = None
        self.query_one(StatusLine).set_state("drawing failed", "error")
        self.notify(message.error, title="No candidates", severity="error")
        if message.field is not None:
            self.panel.show_problem(FieldError(message.field, message.error))

    def action_pick(self, number: int) -> None:
        if self._shown is None or not 0 <= number < len(self._candidates):
            return
        bar, request = self._candidates[number], self._shown
        lines, row = lines_with_pick(self.verse.lines, request, bar.text)
        self._close_candidates()
        self.verse.set_lines(lines, focus=row, cursor=len(bar.text))
        self.query_one(StatusLine).set_state(f"bar {row + 1}: candidate {number + 1} taken (Ctrl+Z undoes it)")

    @on(OptionList.OptionSelected, "#candidates")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.action_pick(event.option_index)

    def action_dismiss_candidates(self) -> None:
        if self._shown is not None:
            self._close_candidates()
            self.query_one(StatusLine).set_state("candidates closed")

    def _close_candidates(self) -> None:
        self._shown, self._candidates = None, []
        self.query_one(CandidateList).display = False
        self.verse.focus_row(self.verse.cursor_row)

    def on_unmount(self) -> None:
        """Leaving (F2, quitting, a failed model): stop a draw within a chunk, and save the rows
        as they are, keys whose change messages had not arrived yet included."""
        if self._cancel is not None:
            self._cancel.set()
        self._save(self.verse.lines)

    def action_stop(self) -> None:
        if self._drawing is not None and self._cancel is not None:
            self._cancel.set()
            self._drawing = self._cancel = None
            self.workers.cancel_group(self, "draw")
            self.query_one(StatusLine).set_state("stopped")
        else:
            self.action_dismiss_candidates()

    # --- export --------------------------------------------------------------------------------

    def action_export(self) -> None:
        lines = self.verse.lines
        if not any(line.strip() for line in lines):
            self.notify("Nothing to export yet: write a bar first.", severity="warning")
            return
        status = self.query_one(StatusLine)
        try:
            text_path, markdown_path = export_verse(
                lines, self._params, name=self.verse_path.stem, model=self.studio.model, step=status.step
            )
        except OSError as failure:
            self.notify(f"export failed: {failure}", severity="error")
            return
        self.notify(f"The verse is exported to {text_path} and {markdown_path}", title="Exported", timeout=10)
        if self.app.is_web:  # in a browser, the files are on the server: send the Markdown as a download
            self.app.deliver_text(markdown_path)
