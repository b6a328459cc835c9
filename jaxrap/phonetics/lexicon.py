"""The Lexique 3.83 pronunciation table: spelling -> (pronunciation, syllables, frequency).

``load_lexicon()`` reads ``data/lexique383.tsv.gz`` (125,346 spellings, built from Lexique 3.83
by ``scripts/build_lexicon.py``; ``data/README.md`` says what it holds and its licence) once per
process, on first use: nothing loads it at import, so ``jaxrap generate`` and the terminal UI
start as before, and the first rhyme key or syllable count pays the load (about 0.04 s on the
team's 2-core machine; ``scripts/phonetics_report.py`` measures it).

Pronunciations are in Lexique's alphabet: vowels ``a i y u o O e E ° 2 9 5 1 @ §`` (O = ɔ,
E = ɛ, ° = schwa ə, 2 = ø, 9 = œ, 5 = ɛ̃, 1 = œ̃, @ = ɑ̃, § = ɔ̃), consonants
``p b t d k g f v s z S Z m n N G l R x`` (S = ʃ, Z = ʒ, N = ɲ, G = ŋ, R = ʁ, x = jota) and
glides ``j w 8`` (8 = ɥ). ``jaxrap.phonetics.sounds`` maps them to the rhyme key alphabet.
"""

from __future__ import annotations

import bisect
import functools
import gzip
from pathlib import Path
from typing import NamedTuple

from jaxrap.errors import JaxrapError

LEXICON_PATH = Path(__file__).resolve().parent / "data" / "lexique383.tsv.gz"
HEADER = b"ortho\tphon\tnbsyll\tfreqfilms2"


class LexiconEntry(NamedTuple):
    phon: str  # pronunciation, Lexique's alphabet ("p°ti")
    syllables: int  # Lexique's count (24_nbsyll): internal schwas count, a mute final e does not
    frequency: float  # occurrences per million words of film subtitles (9_freqfilms2)


class Lexicon:
    """Lowercase spelling -> ``LexiconEntry``, plus the spellings in frequency order.

    Keeps the table's rows as bytes sorted by spelling and finds a word by bisection (a tab sorts
    before every letter, so rows sort as their spellings do). Parsing the 125k rows into entries
    and a dictionary would load 5x slower (0.2 s against 0.04 s), and the terminal UI colours its
    history with rhyme keys as it starts.
    """

    def __init__(self, rows: list[bytes]):
        self._rows = rows  # b"ortho\tphon\tnbsyll\tfreqfilms2", sorted by ortho's UTF-8 bytes

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, word: str) -> bool:
        return self.get(word) is not None

    def get(self, word: str) -> LexiconEntry | None:
        """The entry of a lowercase, NFC spelling (apostrophes and hyphens kept; œ and æ are
        looked up as Lexique writes them, oe and ae: "cœur" finds "coeur"), or None."""
        row = self._find(word)
        if row is None and ("œ" in word or "æ" in word):
            row = self._find(word.replace("œ", "oe").replace("æ", "ae"))
        return None if row is None else _entry(row)

    def most_frequent(self, count: int) -> list[tuple[str, LexiconEntry]]:
        """The ``count`` spellings with the highest film frequency, most frequent first (ties
        in spelling order)."""
        return self._by_frequency[:count]

    @functools.cached_property
    def _by_frequency(self) -> list[tuple[str, LexiconEntry]]:
        entries = [(row[: row.index(b"\t")].decode("utf-8"), _entry(row)) for row in self._rows]
        entries.sort(key=lambda item: -item[1].frequency)  # stable
        return entries

    def _find(self, word: str) -> bytes | None:
        prefix = word.encode("utf-8") + b"\t"
        index = bisect.bisect_left(self._rows, prefix)
        if index < len(self._rows) and self._rows[index].startswith(prefix):
            return self._rows[index]
        return None


def _entry(row: bytes) -> LexiconEntry:
    _, phon, syllables, frequency = row.decode("utf-8").split("\t")
    return LexiconEntry(phon, int(syllables), float(frequency))


def read_lexicon(path: Path) -> Lexicon:
    """Parse a table written by ``scripts/build_lexicon.py`` (header, then rows by spelling)."""
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as error:
        raise JaxrapError(f"{path}: unreadable lexicon table ({error}); rebuild it with scripts/build_lexicon.py") from None
    header, _, body = data.partition(b"\n")
    if header != HEADER:
        raise JaxrapError(f"{path}: not a lexicon table (header ortho, phon, nbsyll, freqfilms2 expected)")
    rows = body.split(b"\n")
    if rows and not rows[-1]:
        rows.pop()
    if any(rows[i] > rows[i + 1] for i in range(0, len(rows) - 1, max(1, len(rows) // 64))):
        raise JaxrapError(f"{path}: rows are not sorted by spelling; rebuild it with scripts/build_lexicon.py")
    return Lexicon(rows)


@functools.cache
def load_lexicon() -> Lexicon:
    """The packaged Lexique 3.83 table, read once per process."""
    return read_lexicon(LEXICON_PATH)
