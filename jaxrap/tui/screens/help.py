"""F1: every key binding of the studio, where it works, and what it does."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KeyRow = tuple[str, str, str, str]  # (key as displayed, action, where it works, what it does)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close", show=False),
        Binding("f1", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(self, rows: list[KeyRow]):
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table(box=None, expand=True, pad_edge=False, header_style="bold")
        table.add_column("Key", no_wrap=True, style="bold")
        table.add_column("Action", no_wrap=True)
        table.add_column("Where", no_wrap=True, style="dim")
        table.add_column("What it does")
        for row in self.rows:
            table.add_row(*row)
        with VerticalScroll(id="help"):
            yield Static("Keys", classes="panel-title")
            yield Static(table)
            yield Static("Esc, F1 or q closes this. Ctrl+P searches every action by name.", id="help-footer")
