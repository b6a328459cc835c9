"""The candidate bars the model drew for one bar of the verse: met ones first, each with its
syllables and its sound, picked with 1-9 or Enter, drawn again with R, dismissed with Esc."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding
from textual.widgets import OptionList

if TYPE_CHECKING:
    from jaxrap.sample.bar_check import Bar

DIGIT_KEYS = 9  # 1-9 pick the first nine; Enter picks any highlighted one


def candidate_text(number: int, bar: Bar) -> Text:
    """"3  Le bitume m'a volé mon enfance  · 9 · ɑ̃s (enfance) ✓" (or "✗ why not")."""
    text = Text(f"{number:>2}  ", style="bold")
    text.append(bar.text)
    facts = f"  · {bar.syllables} · {bar.rhyme_key or '–'}"
    if bar.word is not None:
        facts += f" ({bar.word})"
    text.append(facts, style="dim")
    text.append(" ✓" if bar.met else f" ✗ {bar.reason or 'misses its targets'}", style="green" if bar.met else "red")
    return text


class CandidateList(OptionList):
    BINDINGS = [
        *(Binding(str(n), f"screen.pick({n - 1})", f"Pick {n}", show=False, tooltip=f"Take candidate {n}.")
          for n in range(1, DIGIT_KEYS + 1)),
        Binding("r,ctrl+r", "screen.redraw", "Redraw", tooltip="Draw new candidates for the same bar."),
        Binding("escape", "screen.dismiss_candidates", "Dismiss", tooltip="Close the candidates; the verse stays as it is."),
    ]

    bars: Sequence[Bar] = ()  # the candidates shown, in order

    def show_bars(self, bars: Sequence[Bar]) -> None:
        self.bars = bars
        self.clear_options()
        self.add_options([candidate_text(number, bar) for number, bar in enumerate(bars, 1)])
        self.highlighted = 0 if bars else None
