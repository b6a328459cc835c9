"""The jaxrap studio: a Textual app that writes rap lyrics with a GPT-2 model.

The app chooses the first screen (the studio, or the no-model screen when --model is
missing or wrong; the writing room on top of the studio with --write), owns F1 and F2 (the
writing room and back), and puts the screens' actions in the command palette (Ctrl+P).
Importing it loads Textual and jaxrap's pure-Python modules only; the model loads in a
worker once the window is up (see ``jaxrap.tui.engine``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.screen import Screen

from jaxrap.errors import FieldError, JaxrapError
from jaxrap.tui import engine
from jaxrap.tui.screens.help import HelpScreen, KeyRow
from jaxrap.tui.screens.no_model import NoModelScreen, model_problem
from jaxrap.tui.screens.studio import PromptInput, StudioScreen
from jaxrap.tui.screens.writing import WritingScreen
from jaxrap.tui.verse import default_verse_path
from jaxrap.tui.widgets.candidate_list import CandidateList
from jaxrap.tui.widgets.history_view import HistoryView
from jaxrap.tui.widgets.params_panel import ParamsPanel
from jaxrap.tui.widgets.rhyme_list import RhymeList
from jaxrap.tui.widgets.verse_view import BarInput


class StudioApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "jaxrap"
    BINDINGS = [
        Binding("f1", "show_keys", "Keys", tooltip="Show every key binding."),
        Binding("ctrl+q", "quit", "Quit", tooltip="Leave the studio (the history is already saved).", priority=True),
    ]

    def __init__(
        self,
        model: str | None,
        *,
        write: bool = False,
        verse: Path | None = None,
        load_engine: engine.LoadEngine = engine.load_engine,
    ):
        """``write``: open the writing room at start; ``verse``: its file (default:
        ``jaxrap.tui.verse.default_verse_path``)."""
        super().__init__()
        self.model = model
        self.write = write
        self.verse_path = verse or default_verse_path()
        self.load_engine = load_engine

    def on_mount(self) -> None:
        problem = model_problem(self.model)
        if problem:
            self.push_screen(NoModelScreen(problem))
        else:
            assert self.model  # no model is a problem
            self._open_studio(self.model, switch=False)

    def open_model(self, model: str) -> None:
        """Leave the no-model screen for a studio on ``model``."""
        self.model = model
        self._open_studio(model, switch=True)

    def _open_studio(self, model: str, *, switch: bool) -> None:
        studio = StudioScreen(model, self.load_engine)
        if switch:
            self.switch_screen(studio)
        else:
            self.push_screen(studio)
        if self.write:
            self._open_writing_room(studio)

    def show_model_problem(self, reason: str) -> None:
        """The model failed to load: the no-model screen in place of the studio (and of the
        writing room above it, whose verse is already saved)."""
        while len(self.screen_stack) > 2:  # the default screen, the studio
            self.pop_screen()
        self.switch_screen(NoModelScreen(reason))

    def action_toggle_writing_room(self) -> None:
        """F2: from the studio to the writing room, and back (taking the panel's values along)."""
        screen = self.screen
        if isinstance(screen, WritingScreen):
            self.write = False
            _copy_panel(screen, screen.studio)
            self.pop_screen()
        elif isinstance(screen, StudioScreen):
            self.write = True
            self._open_writing_room(screen)

    def _open_writing_room(self, studio: StudioScreen) -> None:
        try:
            params = studio.query_one(ParamsPanel).sampling_params()
        except (NoMatches, FieldError):  # not composed yet (--write), or being fixed: the defaults
            params = None
        try:
            writing = WritingScreen(studio, self.verse_path, params)
        except JaxrapError as error:  # the verse file is not one: say so, never write over it
            self.write = False
            self.notify(f"the writing room cannot open: {error}", severity="error", timeout=15)
            return
        self.push_screen(writing)

    def key_rows(self) -> list[KeyRow]:
        """Every binding of the studio, as the help screen lists them."""
        palette = Binding(self.COMMAND_PALETTE_BINDING, "command_palette", "Commands", tooltip="Search every action by name.")
        sources = (
            ("anywhere", [*_bindings(self.BINDINGS), palette]),
            ("studio", _bindings(StudioScreen.BINDINGS)),
            ("prompt box", _bindings(PromptInput.BINDINGS)),
            ("history", _bindings(HistoryView.BINDINGS)),
            ("writing room", _bindings(WritingScreen.BINDINGS)),
            ("a bar of the verse", _bindings(BarInput.BINDINGS)),
            ("candidates", _bindings(CandidateList.BINDINGS)),
            ("rhymes", _bindings(RhymeList.BINDINGS)),
        )
        return [
            (self.keys_display(binding), binding.description, where, binding.tooltip)
            for where, bindings in sources
            for binding in bindings
        ]

    def keys_display(self, binding: Binding) -> str:
        """"e ⏎" for a binding of "e,enter"."""
        return " ".join(self.get_key_display(dataclasses.replace(binding, key=key)) for key in binding.key.split(","))

    def action_show_keys(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.key_rows()))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's commands (its "Keys" panel replaced by F1's screen), plus on the studio
        every action its keys run."""
        for command in super().get_system_commands(screen):
            if command.title != "Keys":
                yield command
        yield SystemCommand("Keys", "Show every key binding.", self.action_show_keys)
        if isinstance(screen, StudioScreen):
            entry_bindings = [binding for binding in _bindings(HistoryView.BINDINGS) if binding.action.startswith("screen.")]
            bindings = [*_bindings(StudioScreen.BINDINGS), *entry_bindings]
        elif isinstance(screen, WritingScreen):
            bindings = [*_bindings(WritingScreen.BINDINGS)]
        else:
            return
        for binding in bindings:
            if binding.action.startswith("app."):
                yield SystemCommand(binding.description, binding.tooltip, partial(self.run_action, binding.action.removeprefix("app.")))
            else:
                action = binding.action.removeprefix("screen.")
                yield SystemCommand(binding.description, binding.tooltip, partial(screen.run_action, action))


def _copy_panel(source: WritingScreen, studio: StudioScreen) -> None:
    """The writing room's panel values (when valid) become the studio's."""
    panel = source.query_one(ParamsPanel)
    try:
        params = panel.sampling_params()
    except FieldError:  # being fixed: the studio keeps its own
        return
    studio_panel = studio.query_one(ParamsPanel)
    studio_panel.show_params(params)
    studio_panel.artist = params.artist


def _bindings(bindings: Iterable[BindingType]) -> list[Binding]:
    """The Binding objects of a BINDINGS list (the studio writes every binding as one)."""
    return [binding for binding in bindings if isinstance(binding, Binding)]
