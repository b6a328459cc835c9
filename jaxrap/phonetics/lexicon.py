"""The Lexique 3.83 pronunciation table: spelling -> (pronunciation, syllables, frequency).

``load_lexicon()`` reads ``data/lexique383.tsv.gz`` (125,344 spellings, built from Lexique 3.83
by ``scripts/build_lexicon.py``; ``data/README.md`` says what it holds and its licence) once per
process, on first use: nothing imports it at start-up, so ``jaxrap generate`` and the terminal
UI start as fast as before, and the first rhyme key or syllable count pays the load (about
0.3 s on the team's 2-core machine, measured in ``tests/test_phonetics_lexicon.py``'s report).

Pronunciations are in Lexique's alphabet: vowels ``a i y u o O e E ° 2 9 5 1 @ §`` (O = ɔ,
E = ɛ, ° = schwa ə, 2 = ø, 9 = œ, 5 = ɛ̃, 1 = œ̃, @ = ɑ̃, § = ɔ̃), consonants
``p b t d k g f v s z S Z m n N G l R x`` (S = ʃ, Z = ʒ, N = ɲ, G = ŋ, R = ʁ, x = jota) and
glides ``j w 8`` (8 = ɥ). ``jaxrap.phonetics.sounds`` maps them to the rhyme key alphabet.
"""

from __future__ import annotations

import functools
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from jaxrap.errors import JaxrapError

LEXICON_PATH = Path(__file__).resolve().parent / "data" / "lexique383.tsv.gz"
LEXIQUE_VOWELS = frozenset("aiyuoOeE°2951@§")


class LexiconEntry(NamedTuple):
    phon: str  # pronunciation, Lexique's alphabet ("p°ti")
    syllables: int  # Lexique's count (24_nbsyll): internal schwas count, a mute final e does not
    frequency: float  # occurrences per million words of film subtitles (9_freqfilms2)


class Lexicon:
    """Lowercase spelling -> ``LexiconEntry``, plus the spellings in frequency order.

    Holds the table's fields as one flat list of strings (4 per row) and parses a row when it is
    asked for: building 125k entries up front would triple the load time.
    """

    def __init__(self, fields: list[str]):
        self._fields = fields  # ortho, phon, nbsyll, freqfilms2 of row 0, then of row 1...
        self._row = dict(zip(fields[0::4], range(len(fields) // 4)))

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, word: str) -> bool:
        return self.get(word) is not None

    def get(self, word: str) -> LexiconEntry | None:
        """The entry of a lowercase, NFC spelling (apostrophes and hyphens kept; œ and æ are
        looked up as Lexique writes them, oe and ae: "cœur" finds "coeur"), or None."""
        row = self._row.get(word)
        if row is None and ("œ" in word or "æ" in word):
            row = self._row.get(word.replace("œ", "oe").replace("æ", "ae"))
        return None if row is None else self._entry(row)

    def most_frequent(self, count: int) -> Iterator[tuple[str, LexiconEntry]]:
        """The ``count`` spellings with the highest film frequency, most frequent first."""
        for row in range(min(count, len(self))):
            yield self._fields[4 * row], self._entry(row)

    def _entry(self, row: int) -> LexiconEntry:
        _, phon, syllables, frequency = self._fields[4 * row : 4 * row + 4]
        return LexiconEntry(phon, int(syllables), float(frequency))


def read_lexicon(path: Path) -> Lexicon:
    """Parse a table written by ``scripts/build_lexicon.py`` (header, then rows by frequency)."""
    try:
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise JaxrapError(f"{path}: unreadable lexicon table ({error}); rebuild it with scripts/build_lexicon.py") from None
    header, _, body = text.partition("\n")
    if header != "ortho\tphon\tnbsyll\tfreqfilms2":
        raise JaxrapError(f"{path}: not a lexicon table (header ortho, phon, nbsyll, freqfilms2 expected)")
    fields = body.rstrip("\n").replace("\n", "\t").split("\t") if body.strip() else []
    if len(fields) % 4:
        raise JaxrapError(f"{path}: a row without its 4 fields; rebuild it with scripts/build_lexicon.py")
    return Lexicon(fields)


@functools.cache
def load_lexicon() -> Lexicon:
    """The packaged Lexique 3.83 table, read once per process."""
    return read_lexicon(LEXICON_PATH)
