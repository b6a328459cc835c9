"""The status line: model · checkpoint step · device · state, with a spinner while busy."""

from __future__ import annotations

import time

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.timer import Timer
from textual.widget import Widget

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class StatusLine(Widget):
    """One line. Busy states (loading, compiling, generating) show a spinner and the seconds
    spent so far, so a slow first compilation never looks like a frozen screen."""

    COMPONENT_CLASSES = {"status-line--label", "status-line--busy", "status-line--ready", "status-line--error"}

    model: reactive[str] = reactive("")
    step: reactive[int | None] = reactive(None)
    device: reactive[str] = reactive("")
    state: reactive[str] = reactive("starting")
    tone: reactive[str] = reactive("busy")  # busy, ready or error

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self._since = time.monotonic()  # when the current state began
        self._ticker: Timer | None = None

    def on_mount(self) -> None:
        self._ticker = self.set_interval(0.1, self.refresh, pause=self.tone != "busy")

    def set_state(self, state: str, tone: str = "ready") -> None:
        """Show ``state``; tone "busy" starts the spinner and clock, "ready"/"error" stop them."""
        self._since = time.monotonic()
        self.state, self.tone = state, tone

    def watch_tone(self, tone: str) -> None:
        if self._ticker is None:
            return
        if tone == "busy":
            self._ticker.resume()
        else:
            self._ticker.pause()

    def render(self) -> Text:
        label = self.get_component_rich_style("status-line--label")
        parts: list[tuple[str, Style] | str] = [("model ", label), self.model]
        parts += [("  step ", label), str(self.step) if self.step is not None else "–"]
        parts += [("  device ", label), self.device or "–", "  "]
        state = self.state
        if self.tone == "busy":
            elapsed = time.monotonic() - self._since
            state = f"{SPINNER[int(elapsed * 10) % len(SPINNER)]} {state} {elapsed:.1f} s"
        parts.append((state, self.get_component_rich_style(f"status-line--{self.tone}")))
        return Text.assemble(*parts, no_wrap=True, overflow="ellipsis")
