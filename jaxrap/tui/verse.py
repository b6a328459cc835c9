"""The writing room's verse: its file (saved as you go), each bar's marks, its exports.

A verse is a list of bars, kept in a plain UTF-8 text file, one bar per line: what `jaxrap
generate` takes as a prompt and what a writer edits anywhere else. ``write_verse`` writes the
whole file beside the old one, flushes it to disk and renames it over the old one
(``os.replace`` is atomic on POSIX), so a crash or a kill at any moment leaves the verse as it
was before the last change or after it, never cut short. The writing room writes it on every
change (a verse is a few kilobytes).

A bar's marks are what the studio's bar controls would say of it (``jaxrap.sample.bar_check``,
the sampler's own check, so the screen and the sampler never disagree): its spoken syllables,
the sound it ends on, its scheme letter, and why it misses the panel's targets (syllables out
of range, a rhyme that is not its group's). Bars are numbered as the sampler numbers a prompt's
(``phonetics.rhyme.lyric_bars``): blank lines and ``[section]`` markers are not bars.

No Textual here: the logic is tested without the UI. The phonetics and the sampler's check
are imported where they are used: the writing room computes marks once the lexicon is loaded,
after its first frame, and importing them (numpy) would delay that frame.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jaxrap.errors import JaxrapError
from jaxrap.sample.params import SamplingParams
from jaxrap.tui.history import data_dir

DEFAULT_VERSE_NAME = "verse.txt"  # in <data dir>/verses/, when `jaxrap tui --write` names no file


def default_verse_path() -> Path:
    return data_dir() / "verses" / DEFAULT_VERSE_NAME


def is_bar(line: str) -> bool:
    """A line the sampler counts as a bar: not blank, not a ``[section]`` marker."""
    from jaxrap.phonetics.rhyme import lyric_bars

    return bool(lyric_bars(line))


def check_verse_path(path: str | Path) -> Path:
    """``--write FILE``: the file to keep the verse in; a one-line JaxrapError when it cannot be
    one (a directory, a folder that does not exist, text that is not UTF-8). A missing file is a
    new verse."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise JaxrapError(f"{path}: is a directory; give a verse file such as {path / DEFAULT_VERSE_NAME}")
    if not path.parent.is_dir():
        raise JaxrapError(f"{path}: the folder {path.parent} does not exist")
    read_verse(path)
    return path


def read_verse(path: Path) -> list[str]:
    """The bars of the verse file (its lines); [] for a missing or empty file. A one-line
    JaxrapError for a file that is not UTF-8 text, so a verse is never overwritten by one that
    was misread."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return []
    except UnicodeDecodeError as error:
        raise JaxrapError(f"{path}: not UTF-8 text (byte {error.object[error.start]:#04x} at offset {error.start})") from None
    except OSError as error:
        raise JaxrapError(f"{path}: cannot be read ({error.strerror})") from None
    return text.removesuffix("\n").replace("\r\n", "\n").split("\n") if text else []


def verse_text(bars: Sequence[str]) -> str:
    """The file's text: one bar per line, a newline after the last."""
    return "".join(f"{bar}\n" for bar in bars)


def write_verse(path: Path, bars: Sequence[str]) -> None:
    """Replace the file with ``bars`` at once (the module docstring's crash safety); OSError when
    it cannot be written, the old file untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(verse_text(bars).encode("utf-8"))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class BarMarks:
    """What the writing room shows beside one line of the verse."""

    bar: int | None  # its number among the verse's bars (0-based); None: a [marker] (a blank line gets the next number)
    letter: str | None  # its scheme letter; None: no scheme, a free bar or a [marker]
    syllables: int  # spoken syllables (0 for a blank line)
    rhyme_key: str | None  # the sound it ends on (its last N vowels with rhyme_vowels N: "a-i")
    word: str | None  # the last word said
    group: int | None  # rhyme group of its last vowel among its neighbours (``rhyme_groups``: colours); None: rhymes with none
    misses: tuple[str, ...]  # why it misses the panel's targets, as the sampler says it; () for a blank line


def verse_marks(lines: Sequence[str], params: SamplingParams) -> list[BarMarks]:
    """The marks of each line against ``params``' bar controls (rhyme scheme, rhyme word,
    syllables ± tolerance): a bar meets them when the sampler would keep it."""
    from jaxrap.phonetics.rhyme import rhyme_groups
    from jaxrap.sample.bar_check import SongTargets, check_bar

    targets = SongTargets(
        "",
        rhyme_scheme=params.rhyme_scheme,
        rhyme_with=params.rhyme_with,
        syllables=params.syllables,
        tolerance=params.syllable_tolerance,
        rhyme_vowels=params.rhyme_vowels,
    )
    groups = rhyme_groups(lines)
    marks = []
    bar = 0  # the next bar's number
    for line, group in zip(lines, groups):
        if line.strip() and not is_bar(line):  # a [marker]
            marks.append(BarMarks(None, None, 0, None, None, None, ()))
            continue
        target = targets.target(bar)
        if not line.strip():  # a bar being written: its letter, nothing to check yet
            marks.append(BarMarks(bar, target.letter, 0, None, None, None, ()))
            continue
        check = check_bar(line, target, complete=True)
        targets.record(check, bar)
        misses = check.failures if params.bar_controls else ()
        marks.append(BarMarks(bar, target.letter, check.syllables, check.rhyme_key, check.word, group, misses))
        bar += 1
    return marks


def rhyme_partner(lines: Sequence[str], row: int, params: SamplingParams) -> str | None:
    """What the rhyme finder looks up for line ``row``: with a rhyme scheme, the first other bar of
    its rhyme group that says a word (the one that set the group's sound, as the sampler's targets
    take it), else the line itself; None for a [marker] or a line past the verse."""
    from jaxrap.phonetics.rhyme import last_spoken_word
    from jaxrap.phonetics.scheme import parse_rhyme_scheme

    if not 0 <= row < len(lines) or (lines[row].strip() and not is_bar(lines[row])):
        return None
    numbers: list[int | None] = []  # each line's bar number, as verse_marks gives them
    bar = 0
    for line in lines:
        numbers.append(bar if is_bar(line) or not line.strip() else None)
        bar += is_bar(line)
    number = numbers[row]
    if params.rhyme_scheme is not None and number is not None:
        groups = parse_rhyme_scheme(params.rhyme_scheme).groups(bar + 1)
        group = groups[number]
        if group is not None:
            members = [i for i, number in enumerate(numbers) if i != row and number is not None and groups[number] == group
                       and last_spoken_word(lines[i]) is not None]
            if members:
                return lines[members[0]]
    return lines[row]


def export_verse(
    bars: Sequence[str], params: SamplingParams, *, name: str, model: str, step: int | None, out_dir: Path | None = None
) -> tuple[Path, Path]:
    """Write the verse as text and as Markdown (with each bar's marks) to
    ``<data dir>/exports/<name>-<time>.txt`` and ``.md``; returns both paths."""
    out_dir = data_dir() / "exports" if out_dir is None else out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    text_path, markdown_path = out_dir / f"{stem}.txt", out_dir / f"{stem}.md"
    text_path.write_text(verse_text(bars), encoding="utf-8")
    markdown_path.write_text(verse_markdown(bars, params, name=name, model=model, step=step), encoding="utf-8")
    return text_path, markdown_path


def describe_controls(params: SamplingParams) -> str:
    """"scheme AABB · rhymes with nuit · 12±2 syllables", or "" without bar controls."""
    parts = []
    if params.rhyme_scheme is not None:
        parts.append(f"scheme {params.rhyme_scheme}")
    if params.rhyme_with is not None:
        parts.append(f"rhymes with {params.rhyme_with}")
    if params.rhyme_scheme is not None and params.rhyme_vowels > 1:
        parts.append(f"rhymes of {params.rhyme_vowels} vowels")
    if params.syllables is not None:
        parts.append(f"{params.syllables}±{params.syllable_tolerance} syllables")
    return " · ".join(parts)


def verse_markdown(bars: Sequence[str], params: SamplingParams, *, name: str, model: str, step: int | None) -> str:
    """Markdown: a title, the model and the bar controls, the verse in a text block, then a
    table of each bar's scheme letter, syllables, sound and misses."""
    text = verse_text(bars)
    fence = "````" if "```" in text else "```"
    lines = [f"# {name}", "", f"Model: `{model}`{f', step {step}' if step is not None else ''}  "]
    if params.artist is not None:
        lines.append(f"Artist: `{params.artist}`  ")
    controls = describe_controls(params)
    if controls:
        lines.append(f"Bar controls: {controls}  ")
    lines += ["", f"{fence}text", text.removesuffix("\n"), fence, ""]
    lines += ["| # | | Bar | Syllables | Sound | Misses |", "|---|---|---|---|---|---|"]
    for marks, line in zip(verse_marks(bars, params), bars):
        if marks.bar is None or not line.strip():
            continue
        cells = (str(marks.bar + 1), marks.letter or "", line, str(marks.syllables), marks.rhyme_key or "", "; ".join(marks.misses))
        lines.append("| " + " | ".join(_table_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _table_cell(text: str) -> str:
    """``text`` safe in a Markdown table cell: pipes escaped, control characters dropped."""
    return re.sub(r"[\x00-\x1f\x7f]", "", text).replace("|", "\\|")
