"""The jaxrap studio: a Textual app that writes rap lyrics with a GPT-2 model.

The app chooses the first screen (the studio, or the no-model screen when --model is
missing or wrong), owns F1 and puts the studio's actions in the command palette (Ctrl+P).
Importing it loads Textual and jaxrap's pure-Python modules only; the model loads in a
worker once the window is up (see ``jaxrap.tui.engine``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from functools import partial

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from jaxrap.tui import engine
from jaxrap.tui.screens.help import HelpScreen, KeyRow
from jaxrap.tui.screens.no_model import NoModelScreen, model_problem
from jaxrap.tui.screens.studio import PromptInput, StudioScreen
from jaxrap.tui.widgets.history_view import HistoryView


class StudioApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "jaxrap"
    BINDINGS = [
        Binding("f1", "show_keys", "Keys", tooltip="Show every key binding."),
        Binding("ctrl+q", "quit", "Quit", tooltip="Leave the studio (the history is already saved).", priority=True),
    ]

    def __init__(self, model: str | None, *, load_engine: engine.LoadEngine = engine.load_engine):
        super().__init__()
        self.model = model
        self.load_engine = load_engine

    def on_mount(self) -> None:
        problem = model_problem(self.model)
        if problem:
            self.push_screen(NoModelScreen(problem))
        else:
            assert self.model  # no model is a problem
            self.push_screen(StudioScreen(self.model, self.load_engine))

    def open_model(self, model: str) -> None:
        """Leave the no-model screen for a studio on ``model``."""
        self.model = model
        self.switch_screen(StudioScreen(model, self.load_engine))

    def key_rows(self) -> list[KeyRow]:
        """Every binding of the studio, as the help screen lists them."""
        palette = Binding(self.COMMAND_PALETTE_BINDING, "command_palette", "Commands", tooltip="Search every action by name.")
        sources = (
            ("anywhere", [*_bindings(self.BINDINGS), palette]),
            ("studio", _bindings(StudioScreen.BINDINGS)),
            ("prompt box", _bindings(PromptInput.BINDINGS)),
            ("history", _bindings(HistoryView.BINDINGS)),
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
        if not isinstance(screen, StudioScreen):
            return
        entry_bindings = [binding for binding in _bindings(HistoryView.BINDINGS) if binding.action.startswith("screen.")]
        for binding in [*_bindings(StudioScreen.BINDINGS), *entry_bindings]:
            action = binding.action.removeprefix("screen.")
            yield SystemCommand(binding.description, binding.tooltip, partial(screen.run_action, action))


def _bindings(bindings: Iterable[BindingType]) -> list[Binding]:
    """The Binding objects of a BINDINGS list (the studio writes every binding as one)."""
    return [binding for binding in bindings if isinstance(binding, Binding)]
