"""Raw lyrics sources: CSV, plain text and JSON Lines files, directories of them, and URLs.

Formats (picked by the file suffix):
- ``.csv``: the FrenchRapLyricsAnalyzer layout, ``Year,Song Title,Artist,Lyrics,Number of
  featured artists,Featured artists``. ``Artist`` and ``Lyrics`` are required; ``Song Title``
  and ``Year`` are read when present; other columns are ignored. Header names match
  case-insensitively.
- ``.txt``: the songs of one artist. Songs are separated by a line of three or more dashes
  (``---``); blank lines inside a song separate its stanzas. A song may start with a
  ``# Title`` line. The artist is ``--artist`` when given, else the file name without its
  suffix (``Booba.txt`` -> ``Booba``).
- ``.jsonl``: one JSON object per line with the lyrics under ``lyrics`` (or ``text``) and
  optional ``artist``, ``title`` and ``year``; a missing artist falls back as for ``.txt``.
- a directory: every ``.csv``, ``.txt`` and ``.jsonl`` file directly inside it, sorted.
- an ``http(s)://`` URL: downloaded once into the user cache directory and read from there.

Files must be UTF-8 (a byte-order mark is fine). Anything unreadable is a one-line
JaxrapError naming the file (and line) and the fix; rows with empty lyrics or (CSV) no
artist are skipped and counted, not fatal.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from jaxrap.data.clean import clean_field
from jaxrap.errors import JaxrapError

# The corpus of the FrenchRapLyricsAnalyzer project (about 22,000 songs by 241 artists);
# HEAD resolves to the repository's default branch.
DEFAULT_SOURCE_URL = "https://raw.githubusercontent.com/MariusLD/FrenchRapLyricsAnalyzer/HEAD/lyrics_df.csv"
LOCAL_SOURCE_EXAMPLE = "--source ../shared/data/lyrics_df_2.csv"
SUFFIXES = (".csv", ".txt", ".jsonl")
CSV_COLUMNS = ("Year", "Song Title", "Artist", "Lyrics", "Number of featured artists", "Featured artists")
CSV_REQUIRED = ("Artist", "Lyrics")
UNKNOWN_YEAR = -1
# Years outside this range are typos in the source (the real corpus has a song dated year 1).
_PLAUSIBLE_YEARS = range(1900, 2101)
_TXT_SONG_SEPARATOR = re.compile(r"^-{3,}\s*$", re.MULTILINE)
_DOWNLOAD_TIMEOUT_S = 30

# Skip reasons (keys of the prepare stats' "dropped" table).
EMPTY_LYRICS = "empty_lyrics"
MISSING_ARTIST = "missing_artist"


@dataclass(frozen=True)
class RawSong:
    lyrics: str  # as in the source, uncleaned
    artist: str
    title: str
    year: int  # UNKNOWN_YEAR when absent or implausible
    origin: str  # where it came from, for messages: "lyrics.csv row 12"


@dataclass(frozen=True)
class Skipped:
    reason: str  # EMPTY_LYRICS or MISSING_ARTIST
    origin: str


@dataclass
class SourceRows:
    songs: list[RawSong]
    skipped: list[Skipped]
    files: list[str]  # every file read, in order


def default_cache_dir() -> Path:
    import platformdirs

    return platformdirs.user_cache_path("jaxrap") / "sources"


def read_sources(
    sources: list[str], *, cache_dir: Path | None = None, artist: str | None = None
) -> SourceRows:
    """Every song of every source, in order. ``artist`` names the artist of .txt/.jsonl songs."""
    rows = SourceRows([], [], [])
    for source in sources:
        for path in resolve_source(source, cache_dir or default_cache_dir()):
            reader = {".csv": _read_csv, ".txt": _read_txt, ".jsonl": _read_jsonl}[path.suffix.lower()]
            reader(path, _read_text(path), artist, rows)
            rows.files.append(str(path))
    return rows


def resolve_source(source: str, cache_dir: Path) -> list[Path]:
    """The local files a source stands for (a URL is fetched into the cache first)."""
    if urllib.parse.urlparse(source).scheme in ("http", "https"):
        return [_check_suffix(fetch_url(source, cache_dir), source)]
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not files:
            raise JaxrapError(f"{path}: directory holds no {', '.join(SUFFIXES)} files; pass files or URLs with --source")
        return files
    if not path.is_file():
        raise JaxrapError(f"{path}: no such file; check the path given to --source")
    return [_check_suffix(path, source)]


def _check_suffix(path: Path, source: str) -> Path:
    if path.suffix.lower() not in SUFFIXES:
        raise JaxrapError(
            f"{source}: unsupported file type {path.suffix or '(none)'!r}; use a .csv"
            " (FrenchRapLyricsAnalyzer columns), .txt or .jsonl file"
        )
    return path


def fetch_url(url: str, cache_dir: Path) -> Path:
    """The cached copy of ``url``, downloading it on first use (atomically: no half files)."""
    name = Path(urllib.parse.urlparse(url).path).name or "download"
    target = Path(cache_dir) / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{name}"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    try:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response, open(partial, "wb") as out:
            _copy_with_progress(response, out, url)
        os.replace(partial, target)
    except (urllib.error.URLError, OSError, ValueError) as error:
        partial.unlink(missing_ok=True)
        # URLError wraps the socket error in .reason; HTTPError's str names the status.
        reason = error.reason if type(error) is urllib.error.URLError else error
        if url == DEFAULT_SOURCE_URL:
            raise JaxrapError(
                f"no --source given and the default corpus {url} cannot be downloaded ({reason});"
                f" pass a local file instead, e.g. {LOCAL_SOURCE_EXAMPLE}"
            ) from None
        raise JaxrapError(
            f"cannot download {url} ({reason}); check the URL, or download the file and pass its path with --source"
        ) from None
    return target


def _copy_with_progress(response, out, url: str) -> None:
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    total = response.length  # None when the server sends no Content-Length
    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(), transient=True) as progress:
        task = progress.add_task(f"downloading {url}", total=total)
        while chunk := response.read(1 << 20):
            out.write(chunk)
            progress.advance(task, len(chunk))


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        bad = data[error.start:error.start + 1]
        raise JaxrapError(
            f"{path}: line {line}: byte {bad!r} is not UTF-8; re-save the file as UTF-8,"
            f" e.g. `iconv -f WINDOWS-1252 -t UTF-8 {path.name} > utf8-{path.name}`"
        ) from None
    if not text.strip():
        raise JaxrapError(f"{path}: file is empty; pass a file with lyrics in it")
    return text


def _read_csv(path: Path, text: str, artist: str | None, rows: SourceRows) -> None:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
        columns = {name.strip().lower(): i for i, name in enumerate(header)}
        missing = [name for name in CSV_REQUIRED if name.lower() not in columns]
        if missing:
            raise JaxrapError(
                f"{path}: missing column(s) {', '.join(map(repr, missing))} (found: {', '.join(header)});"
                f" expected the FrenchRapLyricsAnalyzer header {','.join(CSV_COLUMNS)}"
            )
        count = 0
        for count, record in enumerate(reader, start=1):
            # Short records (fewer cells than the header) read as empty cells.
            cells = {name: record[i] if i < len(record) else "" for name, i in columns.items()}
            origin = f"{path.name} row {count}"
            lyrics, row_artist = cells["lyrics"], clean_field(cells["artist"])
            if not lyrics.strip():
                rows.skipped.append(Skipped(EMPTY_LYRICS, origin))
            elif not row_artist:
                rows.skipped.append(Skipped(MISSING_ARTIST, origin))
            else:
                title, year = clean_field(cells.get("song title", "")), parse_year(cells.get("year"))
                rows.songs.append(RawSong(lyrics, row_artist, title, year, origin))
    except csv.Error as error:
        raise JaxrapError(f"{path}: line {reader.line_num}: malformed CSV ({error}); fix the quoting or re-export the file") from None
    if count == 0:
        raise JaxrapError(f"{path}: has a header but no rows; pass a file with lyrics in it")


def _read_txt(path: Path, text: str, artist: str | None, rows: SourceRows) -> None:
    for number, block in enumerate(_TXT_SONG_SEPARATOR.split(text), start=1):
        lines = block.strip("\n").split("\n")
        title = f"{path.stem} {number}"
        if lines and lines[0].startswith("# "):
            title, lines = lines[0][2:], lines[1:]
        origin = f"{path.name} song {number}"
        lyrics = "\n".join(lines)
        if not lyrics.strip():
            rows.skipped.append(Skipped(EMPTY_LYRICS, origin))
        else:
            rows.songs.append(RawSong(lyrics, clean_field(artist or path.stem), clean_field(title), UNKNOWN_YEAR, origin))


def _read_jsonl(path: Path, text: str, artist: str | None, rows: SourceRows) -> None:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        origin = f"{path.name} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise JaxrapError(f"{path}: line {number}: invalid JSON ({error.msg}); write one JSON object per line") from None
        if not isinstance(record, dict):
            raise JaxrapError(f"{path}: line {number}: expected a JSON object, got {type(record).__name__}")
        key = next((k for k in ("lyrics", "text") if k in record), None)
        if key is None:
            raise JaxrapError(f"{path}: line {number}: no 'lyrics' or 'text' field; put each song's lyrics under 'lyrics'")
        lyrics = record[key] if isinstance(record[key], str) else ""
        if not lyrics.strip():
            rows.skipped.append(Skipped(EMPTY_LYRICS, origin))
            continue
        row_artist = clean_field(str(record.get("artist") or artist or path.stem))
        title = clean_field(str(record.get("title") or f"{path.stem} {number}"))
        rows.songs.append(RawSong(lyrics, row_artist, title, parse_year(record.get("year")), origin))


def parse_year(value) -> int:
    """'2009.0', 2009, ' 2009 ' -> 2009; empty, unparsable or implausible -> UNKNOWN_YEAR."""
    try:
        year = int(float(str(value).strip()))
    except (TypeError, ValueError, OverflowError):
        return UNKNOWN_YEAR
    return year if year in _PLAUSIBLE_YEARS else UNKNOWN_YEAR
