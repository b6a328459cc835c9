"""The verse being written: one row per bar, the scheme's letter in the gutter, the bar as an
input, its syllables and sound at the end (``jaxrap.tui.verse.BarMarks``, set by the screen).

Editing is line editing: Enter splits the bar at the cursor (a new bar below), Backspace at
the start of a bar joins it to the one above, ↑/↓ move between bars, Alt+↑/↓ move the bar
itself, Ctrl+Delete deletes it, and Ctrl+Z undoes the last of those (and picks, which go
through ``set_lines``). Rows are widgets that never move: a change rewrites their values (one
``Changed`` for the whole change) and adds or removes rows at the end, so focus and scrolling
stay simple.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Static

from jaxrap.tui.verse import BarMarks

RHYME_COLOURS = 6  # as the history's cards: verse-view--rhyme-0..5 (colours in app.tcss)
UNDO_STEPS = 100


class BarInput(Input):
    """One bar's text. The verse's editing keys are here so that they win over the screen's."""

    BINDINGS = [
        Binding("enter", "split", "New bar", tooltip="Split the bar at the cursor: what follows goes to a new bar below."),
        Binding("up", "step(-1)", "Bar above", show=False, tooltip="Go to the bar above."),
        Binding("down", "step(1)", "Bar below", show=False, tooltip="Go to the bar below."),
        Binding("alt+up,ctrl+up", "move(-1)", "Move up", show=False, tooltip="Move this bar above the previous one."),
        Binding("alt+down,ctrl+down", "move(1)", "Move down", show=False, tooltip="Move this bar below the next one."),
        Binding("ctrl+delete", "delete_bar", "Delete bar", tooltip="Delete this bar (Ctrl+Z brings it back)."),
    ]

    @property
    def row(self) -> BarRow:
        assert isinstance(self.parent, BarRow)
        return self.parent

    @property
    def verse(self) -> VerseView:
        return self.row.verse

    def action_split(self) -> None:
        self.verse.split(self.row.number, self.cursor_position)

    def action_step(self, delta: int) -> None:
        self.verse.focus_row(self.row.number + delta, self.cursor_position)

    def action_move(self, delta: int) -> None:
        self.verse.move(self.row.number, delta)

    def action_delete_bar(self) -> None:
        self.verse.delete(self.row.number)

    def action_delete_left(self) -> None:
        if self.cursor_position == 0 and self.selection.is_empty and self.row.number > 0:
            self.verse.join_up(self.row.number)
        else:
            super().action_delete_left()


class BarRow(Horizontal):
    """Gutter letter, the bar, its marks."""

    def __init__(self, number: int, text: str):
        super().__init__(classes="bar-row")
        self.number = number  # its line in the verse (0-based); rows never move
        self.input = BarInput(text, placeholder="…", compact=True, select_on_focus=False, classes="bar-text")
        self.letter = Static(classes="bar-gutter")
        self.marks = Static(classes="bar-marks")

    @property
    def verse(self) -> VerseView:
        assert isinstance(self.parent, VerseView)
        return self.parent

    def compose(self) -> ComposeResult:
        yield self.letter
        yield self.input
        yield self.marks


@dataclass
class _State:
    lines: list[str]
    row: int  # the row to focus after an undo
    cursor: int


class VerseView(VerticalScroll):
    """The rows of the verse, always at least one (an empty verse is one empty bar)."""

    COMPONENT_CLASSES = {"verse-view--miss", "verse-view--syllables", *(f"verse-view--rhyme-{k}" for k in range(RHYME_COLOURS))}

    @dataclass
    class Changed(Message):
        """The verse changed (typed, split, joined, moved, deleted, picked or undone)."""

        view: VerseView
        lines: list[str]

    @dataclass
    class CursorMoved(Message):
        """Another bar has the cursor."""

        view: VerseView
        row: int

    def __init__(self, lines: Sequence[str], *, id: str | None = None):
        super().__init__(id=id)
        self._rows = [BarRow(number, line) for number, line in enumerate(list(lines) or [""])]
        self._undo: list[_State] = []
        self.cursor_row = 0  # the bar with the cursor, or the last one that had it
        self._marks: list[BarMarks] = []

    def compose(self) -> ComposeResult:
        yield from self._rows

    @property
    def rows(self) -> list[BarRow]:
        """The rows, one per line (kept here: removed and mounted rows settle in the DOM later)."""
        return list(self._rows)

    @property
    def lines(self) -> list[str]:
        return [row.input.value for row in self.rows]

    def row_input(self, row: int) -> BarInput:
        return self.rows[row].input

    # --- changes ----------------------------------------------------------------------------

    def set_lines(self, lines: Sequence[str], *, focus: int | None = None, cursor: int = 0, undoable: bool = True) -> None:
        """Show ``lines`` (one row each, at least one), focus row ``focus`` at ``cursor``, and
        report the change; ``undoable``: Ctrl+Z brings back the verse as it was before."""
        lines = list(lines) or [""]
        if undoable:
            self._push_undo()
        rows = self.rows
        with self.prevent(Input.Changed):
            for row, line in zip(rows, lines):
                if row.input.value != line:
                    row.input.value = line
            for row in rows[len(lines) :]:
                row.remove()
            new = [BarRow(number, line) for number, line in enumerate(lines[len(rows) :], len(rows))]
            self._rows = rows[: len(lines)] + new
            if new:
                self.mount_all(new)
        if self._marks:
            self.show_marks(self._marks)  # new rows get the old marks until the screen sends new ones
        if focus is not None:
            self.call_after_refresh(self.focus_row, focus, cursor)
        self.post_message(self.Changed(self, lines))

    def split(self, row: int, at: int) -> None:
        lines = self.lines
        lines[row : row + 1] = [lines[row][:at].rstrip(), lines[row][at:].lstrip()]
        self.set_lines(lines, focus=row + 1)

    def join_up(self, row: int) -> None:
        lines = self.lines
        above, below = lines[row - 1], lines[row]
        space = " " if above.strip() and below.strip() else ""
        lines[row - 1 : row + 1] = [above + space + below]
        self.set_lines(lines, focus=row - 1, cursor=len(above) + len(space))

    def delete(self, row: int) -> None:
        lines = self.lines
        del lines[row]
        self.set_lines(lines, focus=min(row, max(len(lines) - 1, 0)))

    def move(self, row: int, delta: int) -> None:
        lines = self.lines
        target = row + delta
        if not 0 <= target < len(lines):
            return
        lines[row], lines[target] = lines[target], lines[row]
        self.set_lines(lines, focus=target, cursor=self.row_input(row).cursor_position)

    def undo(self) -> bool:
        """Bring back the verse before the last structural change; False when there is none."""
        if not self._undo:
            return False
        state = self._undo.pop()
        self.set_lines(state.lines, focus=state.row, cursor=state.cursor, undoable=False)
        return True

    def _push_undo(self) -> None:
        focused = self.rows[self.cursor_row].input if self.cursor_row < len(self.rows) else None
        self._undo.append(_State(self.lines, self.cursor_row, focused.cursor_position if focused else 0))
        del self._undo[:-UNDO_STEPS]

    @on(Input.Changed, ".bar-text")
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(self, self.lines))

    @on(Input.Submitted, ".bar-text")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()  # Enter is the split binding; nothing is "submitted"

    # --- the cursor --------------------------------------------------------------------------

    def focus_row(self, row: int, cursor: int | None = None) -> None:
        """Put the cursor in bar ``row`` (clamped to the verse), at ``cursor`` (clamped to its text)."""
        rows = self.rows
        if not rows:
            return
        target = rows[max(0, min(row, len(rows) - 1))].input
        target.focus()
        if cursor is not None:
            target.cursor_position = min(cursor, len(target.value))
        target.scroll_visible(animate=False)

    def on_descendant_focus(self, event) -> None:
        widget = event.widget
        if isinstance(widget, BarInput) and widget.row.number != self.cursor_row:
            self.cursor_row = widget.row.number
            self.post_message(self.CursorMoved(self, self.cursor_row))

    # --- marks -------------------------------------------------------------------------------

    @property
    def marks(self) -> list[BarMarks]:
        """The marks shown, one per line ([] before the lexicon is loaded)."""
        return self._marks

    def show_marks(self, marks: Sequence[BarMarks]) -> None:
        """Put each line's marks in its gutter and at its end (lines beyond ``marks`` get none)."""
        self._marks = list(marks)
        for row in self.rows:
            mark = self._marks[row.number] if row.number < len(self._marks) else None
            row.letter.update(self._gutter_text(mark))
            row.marks.update(self._marks_text(mark))
            row.set_class(bool(mark and mark.misses), "-miss")

    def _gutter_text(self, mark: BarMarks | None) -> Text:
        if mark is None or mark.letter is None:
            return Text("·" if mark is not None and mark.bar is not None else " ")
        return Text(mark.letter)

    def _marks_text(self, mark: BarMarks | None) -> Text:
        """"12 ɑ̃s", the sound in its rhyme group's colour, "✗" after a miss."""
        if mark is None or mark.word is None:
            return Text("")
        text = Text(f"{mark.syllables:>2} ", self.get_component_rich_style("verse-view--syllables"))
        style = self.get_component_rich_style(f"verse-view--rhyme-{mark.group % RHYME_COLOURS}") if mark.group is not None else ""
        text.append(mark.rhyme_key or "–", style)
        if mark.misses:
            text.append(" ✗", self.get_component_rich_style("verse-view--miss"))
        return text
