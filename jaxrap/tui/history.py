"""Generation history: one JSON line per generation, one file per model, Markdown export.

Files live in ``<data dir>/history/<model key>.jsonl``, where the data dir is platformdirs'
user data directory for jaxrap (``~/.local/share/jaxrap`` on Linux), or ``$JAXRAP_DATA_DIR``.
An entry keeps everything needed to replay it exactly: the prompt, every sampling parameter
with the concrete seed, the model and its checkpoint step; with bar controls, also what the
sampler said of each bar (``BarMark``: its syllables, whether it met its targets, why not), so a
card shows its marks after a restart. Entries written before a field existed read it as its
default (``SamplingParams``' for the parameters, no marks).

Writes only ever append one whole line and flush it to disk, so a crash loses at most the
generation in flight; a truncated last line (power cut mid-write) is skipped on reading and
never glued to the next entry. No Textual here: the lyric-metrics code reads the same files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

DATA_DIR_ENV = "JAXRAP_DATA_DIR"


def data_dir() -> Path:
    """Where jaxrap keeps user data: ``$JAXRAP_DATA_DIR``, else platformdirs' user data dir."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("jaxrap", appauthor=False))


def model_key(model: str) -> str:
    """A file-name-safe key for a model: "runs/tiny_cpu" -> "tiny_cpu-1a2b3c4d".

    Local directories are keyed by their absolute path (two runs named alike stay apart),
    hub ids by the id; the readable part is the last path component.
    """
    path = Path(model).expanduser()
    identity = str(path.resolve()) if path.exists() else model
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(identity).name or identity).strip("-") or "model"
    return f"{readable}-{hashlib.sha256(identity.encode()).hexdigest()[:8]}"


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class BarMark:
    """What the sampler said of one generated bar (``jaxrap.sample.bar_check.Bar``), for display."""

    line: int  # the bar's line in prompt + output (0-based)
    syllables: int
    met: bool  # it met every target
    reason: str | None = None  # why not, when not

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> BarMark:
        mark = cls(**{key: record[key] for key in ("line", "syllables", "met", "reason") if key in record})
        if not isinstance(mark.line, int) or not isinstance(mark.syllables, int) or not isinstance(mark.met, bool):
            raise TypeError("a bar mark's line, syllables and met have the wrong types")
        return mark


@dataclass(frozen=True)
class HistoryEntry:
    prompt: str
    output: str  # the generated text only, without the prompt
    params: dict[str, Any]  # every SamplingParams field as JSON values, seed included
    model: str  # what the user passed as --model
    step: int | None  # the checkpoint step (None for a Hugging Face directory or hub id)
    created: str = field(default_factory=now_iso)  # ISO 8601, UTC
    stopped: bool = False  # the user stopped it before the sampler finished
    bars: tuple[BarMark, ...] = ()  # with bar controls: one mark per generated bar, in order

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> HistoryEntry:
        """Build from a decoded line; unknown keys (from a newer jaxrap) are ignored."""
        if not isinstance(record, dict):
            raise TypeError(f"expected a JSON object, got {type(record).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in record.items() if key in known}
        if not isinstance(values.get("bars", []), list):
            raise TypeError("bars must be a list")
        values["bars"] = tuple(BarMark.from_dict(mark) for mark in values.get("bars", []))
        entry = cls(**values)
        if not isinstance(entry.prompt, str) or not isinstance(entry.output, str) or not isinstance(entry.params, dict):
            raise TypeError("prompt, output and params have the wrong types")
        return entry


class History:
    """The history file of one model."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.skipped_lines = 0  # damaged lines seen by the last ``load``

    @classmethod
    def for_model(cls, model: str) -> History:
        return cls(data_dir() / "history" / f"{model_key(model)}.jsonl")

    def load(self) -> list[HistoryEntry]:
        """Every readable entry, oldest first; damaged lines are counted and skipped."""
        self.skipped_lines = 0
        if not self.path.is_file():
            return []
        entries = []
        with self.path.open(encoding="utf-8", errors="replace") as file:
            for line in file:
                if not line.strip():
                    continue
                try:
                    entries.append(HistoryEntry.from_dict(json.loads(line)))
                except (ValueError, TypeError):
                    self.skipped_lines += 1
        return entries

    def append(self, entry: HistoryEntry) -> None:
        """Append one entry as one line, flushed to disk before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as file:
            # A previous write cut short leaves no newline: start on a fresh line so the
            # damaged record stays one skipped line instead of corrupting this one.
            if file.tell() > 0 and not _ends_with_newline(self.path):
                file.write(b"\n")
            file.write(entry.to_json().encode("utf-8") + b"\n")
            file.flush()
            os.fsync(file.fileno())

    def export_markdown(self, entries: Sequence[HistoryEntry], out: str | Path | None = None) -> Path:
        """Write ``entries`` as Markdown (default: ``<data dir>/exports/<file stem>-<time>.md``)."""
        if out is None:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            out = data_dir() / "exports" / f"{self.path.stem}-{stamp}.md"
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(entries_to_markdown(entries), encoding="utf-8")
        return out


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"\n"


def describe_params(params: dict[str, Any]) -> str:
    """One line naming each parameter that is set, seed first: "seed 7 · temperature 0.9 ·
    top_p 0.95 · ...". The artist is left out: the export gives it its own line."""
    ordered = sorted(params.items(), key=lambda item: item[0] != "seed")
    return " · ".join(
        f"{name} {value}" for name, value in ordered if value not in ((), [], None) and name != "artist"
    )


def entries_to_markdown(entries: Sequence[HistoryEntry]) -> str:
    """Markdown: a title, then per entry a heading, its model, step, artist (when one was
    chosen) and parameters, and the lyrics (prompt + generated text, one bar per line, exactly
    as generated) in a text block."""
    models = sorted({entry.model for entry in entries})
    lines = [f"# jaxrap lyrics — {', '.join(models) if models else 'no generations yet'}", ""]
    for number, entry in enumerate(entries, 1):
        step = f", step {entry.step}" if entry.step is not None else ""
        stopped = " (stopped)" if entry.stopped else ""
        artist = entry.params.get("artist")
        lyrics = entry.prompt + entry.output
        fence = "````" if "```" in lyrics else "```"
        lines += [
            f"## {number}. {entry.created}{stopped}",
            "",
            f"Model: `{entry.model}`{step}  ",
            *([f"Artist: `{artist}`  "] if artist is not None else []),
            f"Prompt: `{entry.prompt.replace(chr(10), ' / ')}`  ",
            f"Parameters: {describe_params(entry.params)}",
            "",
            f"{fence}text",
            lyrics,
            fence,
            "",
        ]
    return "\n".join(lines)
