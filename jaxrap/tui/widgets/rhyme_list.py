"""The rhyme finder's list for the bar with the cursor: words that rhyme with it
(``jaxrap.phonetics.rhyme_finder.find_rhymes``, the same list as ``jaxrap rhymes``), grouped by
syllables, the most frequent first; Enter puts the highlighted word in the bar at its cursor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding
from textual.widgets import OptionList
from textual.widgets.option_list import Option

if TYPE_CHECKING:
    from jaxrap.phonetics.rhyme_finder import Rhymes

WORDS_PER_COUNT = 15  # words shown per syllable count


class RhymeList(OptionList):
    BINDINGS = [
        Binding("enter", "select", "Insert", tooltip="Put the highlighted word in the bar, at its cursor."),
        Binding("escape", "screen.back_to_verse", "Back", tooltip="Back to the bar, without a word."),
    ]

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.words: dict[int, str] = {}  # option index -> its word (headers have none)

    def show_rhymes(self, rhymes: Rhymes | None) -> None:
        """The words of ``rhymes`` under a header per syllable count; nothing for None."""
        self.clear_options()
        self.words = {}
        options: list[Option] = []
        for group in () if rhymes is None else rhymes.groups:
            syllables = f"{group.syllables} syllable{'' if group.syllables == 1 else 's'}"
            options.append(Option(Text(syllables, style="dim bold"), disabled=True))
            for word in group.words[:WORDS_PER_COUNT]:
                self.words[len(options)] = word.word
                options.append(Option(Text(f"  {word.word}", style="italic" if word.source == "corpus" else "")))
        self.add_options(options)
        self.highlighted = min(self.words) if self.words else None
