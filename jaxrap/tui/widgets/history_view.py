"""The history of generations: one card per entry, bars coloured by rhyme, loops flagged.

A card shows the prompt (bold) and the generated bars, one per line, with the last word of
each bar coloured by its rhyme group (``jaxrap.phonetics.rhyme``), and a warning under the
text once the output starts to loop (``jaxrap.evaluate.repetition``). With bar controls each
generated bar ends with its syllable count (" · 12", dim), a bar that missed its targets with
" · 15 ✗" in the error colour, and the reasons are listed under the text ("✗ bar 3: ..."),
from the entry's ``BarMark``s. The live card is re-rendered as text streams in (cheap even for a
few hundred bars; README, Benchmarks — sampling).

Rhyme colours need the phonetics lexicon (``jaxrap.phonetics.lexicon``, 125k spellings): the
studio loads it in a worker after the first frame and then calls ``HistoryView.show_rhymes``;
until then cards are drawn without rhyme colours, so the window never waits for it.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import ListItem, ListView, Static

from jaxrap.evaluate.repetition import Loop, detect_loop
from jaxrap.tui.history import BarMark, HistoryEntry

if TYPE_CHECKING:
    from jaxrap.sample.bar_check import Bar

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # would move the cursor; tabs and newlines stay
RHYME_COLOURS = 6  # rhyme groups cycle through entry-card--rhyme-0..5 (colours in app.tcss)
SHOWN_ENTRIES = 200  # older entries stay in the file and in exports, not on screen
FIRST_CARDS = 12  # cards mounted before the first frame (more than a screen shows); older ones follow it

# The parameters a card header names when they are not off (SamplingParams field -> label).
_HEADER_PARAMS = (
    ("temperature", "temp", None),
    ("top_k", "top-k", 0),
    ("top_p", "top-p", 1.0),
    ("min_p", "min-p", 0.0),
    ("repetition_penalty", "rep", 1.0),
    ("no_repeat_ngram_size", "no-repeat", 0),
    ("max_new_tokens", "max", None),
    ("min_new_tokens", "min", 0),
    ("max_bars", "bars", 0),
    ("rhyme_scheme", "scheme", None),
    ("rhyme_with", "rhymes with", None),
    ("rhyme_vowels", "vowels", 1),
    ("artist_guidance", "guidance", 1.0),
)


def header_text(entry: HistoryEntry, number: int) -> str:
    """"#3 · 14:02 · step 300 · artist Médine · seed 7 · temp 0.9 · top-p 0.95 · rep 1.15 · max 256"."""
    when = datetime.fromisoformat(entry.created).astimezone().strftime("%Y-%m-%d %H:%M")
    parts = [f"#{number}", when]
    if entry.step is not None:
        parts.append(f"step {entry.step}")
    if entry.params.get("artist") is not None:
        parts.append(f"artist {entry.params['artist']}")
    parts.append(f"seed {entry.params.get('seed')}")
    for name, label, off in _HEADER_PARAMS:
        value = entry.params.get(name)
        if value is not None and value != off:
            parts.append(f"{label} {value}")
    if entry.params.get("syllables") is not None:
        parts.append(f"syl {entry.params['syllables']}±{entry.params.get('syllable_tolerance')}")
    return " · ".join(parts)


def bar_mark(before: str, text: str, bar: Bar) -> BarMark:
    """The mark of the bar a delta of ``text`` shows, appended to ``before`` (prompt + output so
    far): the bar's tokens end with its newline (or the end of the song), so it is the line the
    text ends on, that newline aside."""
    line = (before + text.removesuffix("\n")).count("\n")
    return BarMark(line, bar.syllables, bar.met, bar.reason)


def misses_text(marks: tuple[BarMark, ...]) -> str:
    """"✗ bar 3: 15 syllables, not 10-14" for each missed bar, one per line (bars numbered as
    lines of the lyrics, from 1)."""
    return "\n".join(f"✗ bar {mark.line + 1}: {mark.reason or 'missed its targets'}" for mark in marks if not mark.met)


def loop_warning(loop: Loop, first_bar: int) -> str:
    return (
        f"⚠ Loop from bar {first_bar + 1}: «{loop.unit}» ×{loop.repeats}. "
        "Esc stops; a higher repetition penalty or a no-repeat n-gram size helps."
    )


class EntryCard(ListItem):
    """One generation: header, lyrics, loop warning. ``live`` while text is streaming in."""

    COMPONENT_CLASSES = {
        "entry-card--prompt",
        "entry-card--loop",
        "entry-card--syllables",
        "entry-card--miss",
        *(f"entry-card--rhyme-{k}" for k in range(RHYME_COLOURS)),
    }

    def __init__(self, entry: HistoryEntry, number: int, *, live: bool = False):
        super().__init__(classes="-live" if live else "")
        self.entry = entry
        self.number = number
        self.live = live
        self.error: str | None = None
        self.loop: Loop | None = None

    def compose(self) -> ComposeResult:
        yield Static(classes="entry-header")
        yield Static(classes="entry-lyrics")
        yield Static(classes="entry-warning")  # missed bars, then the loop (one widget: a long history mounts fast)

    def on_mount(self) -> None:
        self.render_entry()

    @property
    def bars(self) -> int:
        """Generated bars so far: non-blank lines of the output."""
        return sum(1 for line in self.entry.output.split("\n") if line.strip())

    def append_output(self, text: str, bar: Bar | None = None) -> None:
        """Add streamed ``text``; ``bar``: the record of the bar it completes (bar controls)."""
        marks = self.entry.bars
        if bar is not None:
            marks += (bar_mark(self.entry.prompt + self.entry.output, text, bar),)
        self.update_entry(output=self.entry.output + text, bars=marks)

    def update_entry(self, **changes) -> None:
        self.entry = dataclasses.replace(self.entry, **changes)
        self.render_entry()

    def finish(self, *, stopped: bool = False, error: str | None = None) -> None:
        """The generation ended: by itself, stopped by the user, or with an error."""
        self.live = False
        self.error = error
        self.remove_class("-live")
        self.set_class(error is not None, "-error")
        self.update_entry(stopped=stopped)

    def render_entry(self) -> None:
        state = " · streaming…" if self.live else " · stopped" if self.entry.stopped else ""
        if self.error:
            state = f" · failed: {self.error}"
        self.query_one(".entry-header", Static).update(Text(header_text(self.entry, self.number) + state))
        self.loop = detect_loop(self.entry.output)
        self.query_one(".entry-lyrics", Static).update(self._lyrics())
        warning = self.query_one(".entry-warning", Static)
        missed = misses_text(self.entry.bars)
        warning.display = bool(missed) or self.loop is not None
        if warning.display:
            text = Text(missed, self.get_component_rich_style("entry-card--miss"))
            if self.loop is not None:
                text.append(("\n" if missed else "") + loop_warning(self.loop, self.entry.prompt.count("\n") + self.loop.line))
            warning.update(text)

    @property
    def rhymes(self) -> bool:
        """Whether to colour rhymes: once the studio has loaded the lexicon (``HistoryView.rhymes``)."""
        return isinstance(self.parent, HistoryView) and self.parent.rhymes

    def _lyrics(self) -> Text:
        """Prompt + output, prompt in bold, each bar's last word in its rhyme group's colour,
        the looping tail in the loop style, each marked bar followed by its syllable count."""
        prompt, output = self.entry.prompt, self.entry.output
        text = Text(_CONTROL.sub("\ufffd", prompt + output))  # one for one: offsets hold
        text.stylize(self.get_component_rich_style("entry-card--prompt"), 0, len(prompt))
        if self.rhymes:
            self._colour_rhymes(text)
        if self.loop is not None:
            text.stylize(self.get_component_rich_style("entry-card--loop"), len(prompt) + self.loop.start)
        return self._with_syllables(text) if self.entry.bars else text

    def _colour_rhymes(self, text: Text) -> None:
        from jaxrap.phonetics.rhyme import last_word_span, rhyme_groups  # loaded by then (show_rhymes)

        lines = text.plain.split("\n")
        offset = 0
        for line, group in zip(lines, rhyme_groups(lines)):
            span = last_word_span(line) if group is not None else None
            if group is not None and span is not None:
                style = self.get_component_rich_style(f"entry-card--rhyme-{group % RHYME_COLOURS}")
                text.stylize(style, offset + span[0], offset + span[1])
            offset += len(line) + 1

    def _with_syllables(self, text: Text) -> Text:
        """``text`` with " · 12" after each marked bar's line, " · 15 ✗" in the miss style for a miss."""
        lines = text.split("\n", allow_blank=True)
        for mark in self.entry.bars:
            if 0 <= mark.line < len(lines):
                style = "entry-card--syllables" if mark.met else "entry-card--miss"
                lines[mark.line].append(f" · {mark.syllables}{'' if mark.met else ' ✗'}", self.get_component_rich_style(style))
        return Text("\n").join(lines)


class HistoryView(ListView):
    """The cards, oldest first; the highlighted one is what regenerate, replay, copy and edit use."""

    BINDINGS = [
        Binding("up", "cursor_up", "Previous", show=False, tooltip="Highlight the entry above."),
        Binding("down", "cursor_down", "Next", show=False, tooltip="Highlight the entry below."),
        Binding("r", "screen.replay", "Replay", tooltip="Run the highlighted entry again with the same seed: the same text."),
        Binding("c", "screen.copy_entry", "Copy", tooltip="Copy the highlighted entry's lyrics to the clipboard."),
        Binding("e,enter", "screen.edit_entry", "Edit", tooltip="Put the highlighted entry's prompt and parameters back in the panel."),
    ]

    rhymes = False  # rhyme colours on: the lexicon is loaded (show_rhymes)

    def show_rhymes(self) -> None:
        """The lexicon is loaded: colour every card's rhymes from now on."""
        self.rhymes = True
        for card in self.query(EntryCard):
            for lyrics in card.query(".entry-lyrics").results(Static):  # none yet: drawn with rhymes on mount
                lyrics.update(card._lyrics())

    def show_entries(self, entries: list[HistoryEntry]) -> None:
        """Replace the cards with the last SHOWN_ENTRIES of ``entries``: the newest FIRST_CARDS
        now, the older ones above them once the first frame is drawn (mounting every card of a
        long history first would delay the window)."""
        self.clear()
        first = max(0, len(entries) - SHOWN_ENTRIES)
        cards = [EntryCard(entry, number) for number, entry in enumerate(entries[first:], first + 1)]
        self.extend(cards[-FIRST_CARDS:])
        self.index = len(self) - 1 if len(self) else None
        if len(cards) > FIRST_CARDS:
            self.call_after_refresh(self._mount_older, cards[:-FIRST_CARDS])

    async def _mount_older(self, cards: list[EntryCard]) -> None:
        """Put ``cards`` above the others, the highlight on the same card, the view at the bottom."""
        mounted = self.insert(0, cards)
        if self.index is not None:
            self.index += len(cards)
        await mounted  # the cards' text is set on mount: scroll once their heights are known
        self.scroll_end(animate=False)  # after the next layout

    def add_card(self, card: EntryCard) -> None:
        self.append(card)
        self.index = len(self) - 1
        self.scroll_end(animate=False)

    def highlighted_entry(self) -> HistoryEntry | None:
        """The highlighted card's entry, or the newest one."""
        card: Widget | None = self.highlighted_child
        if card is None and len(self):
            card = self.children[-1]
        return card.entry if isinstance(card, EntryCard) else None
