"""`jaxrap prepare`: raw lyrics sources -> a cleaned, deduplicated, split corpus on disk.

    read (sources) -> clean (clean) -> drop short songs -> drop duplicates, group related
    songs (dedup) -> split per artist (split) -> DatasetDict + stats.json (corpus format)

Every song that does not make it into the corpus is counted in ``stats["dropped"]`` under
its reason, with a few examples naming the file and row. An empty corpus is an error, never
a result. The output directory is written beside the target and swapped in at the end, so a
failed run leaves an existing corpus untouched; replacing a corpus needs ``overwrite``, and
a non-empty directory that is not a corpus is never written into.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jaxrap.data import dedup, sources, split
from jaxrap.data.clean import CleanOptions, bars, clean_lyrics
from jaxrap.data.corpus import COLUMNS, SPLITS, STATS_FILE, is_corpus
from jaxrap.errors import JaxrapError

TOO_SHORT = "too_short"
# Why songs leave the corpus, in pipeline order, with the label the stats table shows.
DROP_REASONS = {
    sources.EMPTY_LYRICS: "empty lyrics",
    sources.MISSING_ARTIST: "no artist",
    TOO_SHORT: "too short after cleaning",
    dedup.EXACT_DUPLICATE: "exact duplicate",
    dedup.NEAR_DUPLICATE: "near duplicate",
    split.SMALL_ARTIST: "artist with too few songs",
}
_EXAMPLES_PER_REASON = 3


class PrepareOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    val_fraction: float = Field(0.1, gt=0, lt=1)  # share of each artist's songs in validation
    test_fraction: float = Field(0.1, gt=0, lt=1)  # share of each artist's songs in test
    seed: int = 0  # the split's shuffle; same seed and sources -> same corpus
    min_chars: int = Field(200, ge=1)  # songs with fewer characters of bars after cleaning are dropped
    keep_headers: bool = False  # keep section headers as "[...]" marker lines
    lowercase: bool = False  # lowercase the lyrics (case is kept by default)
    dedup_threshold: float = Field(0.7, ge=dedup.RELATED_THRESHOLD, le=1.0)  # Jaccard of 5-word shingles for near duplicates
    min_artist_songs: int = Field(3, ge=3)  # artists with fewer independent songs are dropped (one per split needed)
    artist: str | None = None  # artist of .txt/.jsonl songs that name none (default: the file name)
    overwrite: bool = False  # replace an existing prepared corpus at the output directory
    cache_dir: Path | None = None  # where URL sources are downloaded (default: the user cache directory)

    @model_validator(mode="after")
    def _fractions_leave_train(self) -> PrepareOptions:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("--val-fraction + --test-fraction must be below 1 so that train keeps songs")
        return self

    @classmethod
    def checked(cls, **values) -> PrepareOptions:
        """Like the constructor, with a one-line JaxrapError naming the CLI option on bad values."""
        try:
            return cls(**values)
        except ValidationError as error:
            first = error.errors()[0]
            message = first["msg"].removeprefix("Value error, ")
            if first["loc"]:  # one field: name its option and the value given
                message = f"--{str(first['loc'][0]).replace('_', '-')}: {message} (got {first['input']!r})"
            raise JaxrapError(message) from None

    def recorded(self) -> dict:
        """The options that shape the corpus (stats.json keeps them)."""
        return self.model_dump(exclude={"overwrite", "cache_dir"})


def prepare_corpus(source_list: list[str], out_dir: str | Path, options: PrepareOptions = PrepareOptions()) -> dict:
    """Prepare the corpus from ``source_list`` (paths or URLs; empty: the default corpus URL)
    into ``out_dir``; returns the stats that are also saved as ``out_dir/stats.json``."""
    out_dir = Path(out_dir)
    check_out_dir(out_dir, overwrite=options.overwrite)
    source_list = list(source_list) or [sources.DEFAULT_SOURCE_URL]
    rows = sources.read_sources(source_list, cache_dir=options.cache_dir, artist=options.artist)
    dropped = _DropLog()
    for skipped in rows.skipped:
        dropped.add(skipped.reason, skipped.origin)

    clean_options = CleanOptions(keep_headers=options.keep_headers, lowercase=options.lowercase)
    songs, texts = [], []
    for song in rows.songs:
        text = clean_lyrics(song.lyrics, clean_options)
        if sum(map(len, bars(text))) < options.min_chars:
            dropped.add(TOO_SHORT, song.origin)
        else:
            songs.append(song)
            texts.append(text)
    if not songs:
        raise JaxrapError(
            f"no songs left in {', '.join(rows.files)} after cleaning ({dropped.summary()});"
            " check that the lyrics column holds lyrics, or lower --min-chars"
        )

    duplicates = dedup.find_duplicates(
        texts, [s.title for s in songs], [s.artist for s in songs], [s.year for s in songs],
        threshold=options.dedup_threshold,
    )
    for i, reason in enumerate(duplicates.reason):
        if reason is not None:
            dropped.add(reason, f"{songs[i].origin} (copy of {songs[duplicates.kept_copy[i]].origin})")
    kept = [i for i in range(len(songs)) if duplicates.reason[i] is None]
    assignment = split.split_songs(
        [songs[i].artist for i in kept], duplicates.group[kept],
        val_fraction=options.val_fraction, test_fraction=options.test_fraction,
        seed=options.seed, min_artist_songs=options.min_artist_songs,
    )
    for i, split_index in zip(kept, assignment):
        if split_index == split.DROPPED:
            dropped.add(split.SMALL_ARTIST, f"{songs[i].origin} ({songs[i].artist})")
    if (assignment == split.DROPPED).all():
        raise JaxrapError(
            f"no artist has {options.min_artist_songs} distinct songs to spread over train, validation and test"
            f" ({dropped.summary()}); add songs or lower --min-artist-songs (3 at least)"
        )

    # (split, artist, input order): a stable, readable order inside each split.
    rows_by_split: dict[str, list[tuple[str, sources.RawSong]]] = {name: [] for name in SPLITS}
    for i, split_index in sorted(zip(kept, assignment), key=lambda pair: (songs[pair[0]].artist, pair[0])):
        if split_index != split.DROPPED:
            rows_by_split[SPLITS[split_index]].append((texts[i], songs[i]))
    stats = _stats(source_list, rows, options, rows_by_split, dropped, duplicates)
    _write_corpus(out_dir, rows_by_split, stats)
    return stats


class _DropLog:
    def __init__(self):
        self.counts = dict.fromkeys(DROP_REASONS, 0)
        self.examples: dict[str, list[str]] = defaultdict(list)

    def add(self, reason: str, origin: str) -> None:
        self.counts[reason] += 1
        if len(self.examples[reason]) < _EXAMPLES_PER_REASON:
            self.examples[reason].append(origin)

    def summary(self) -> str:
        parts = [f"{count} {DROP_REASONS[reason]}" for reason, count in self.counts.items() if count]
        return "dropped: " + (", ".join(parts) if parts else "nothing")


def check_out_dir(out_dir: Path, *, overwrite: bool) -> None:
    """Refuse to write where data would be lost (see module doc)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise JaxrapError(f"{out_dir}: is a file; pass a directory for --out")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    if not is_corpus(out_dir):
        raise JaxrapError(
            f"{out_dir}: directory is not empty and is not a prepared corpus; refusing to write into it,"
            " choose another --out"
        )
    if not overwrite:
        raise JaxrapError(f"{out_dir}: already holds a prepared corpus; pass --overwrite to replace it, or choose another --out")


def _stats(source_list, rows, options, rows_by_split, dropped: _DropLog, duplicates) -> dict:
    def measure(texts: list[str]) -> dict:
        return {"songs": len(texts), "bars": sum(len(bars(t)) for t in texts), "chars": sum(map(len, texts))}

    artists = sorted({song.artist for rows_ in rows_by_split.values() for _, song in rows_}, key=str.casefold)
    group_sizes: defaultdict[int, int] = defaultdict(int)
    for group in duplicates.group[duplicates.group >= 0]:
        group_sizes[int(group)] += 1
    return {
        "sources": source_list,
        "files": rows.files,
        "options": options.recorded(),
        "rows_read": len(rows.songs) + len(rows.skipped),
        "songs": sum(len(r) for r in rows_by_split.values()),
        "dropped": dropped.counts,
        "dropped_examples": dict(dropped.examples),
        "related_groups": sum(size > 1 for size in group_sizes.values()),
        "splits": {name: measure([t for t, _ in rows_by_split[name]]) for name in SPLITS},
        "artists": {
            artist: {name: measure([t for t, s in rows_by_split[name] if s.artist == artist]) for name in SPLITS}
            for artist in artists
        },
    }


def _write_corpus(out_dir: Path, rows_by_split: dict[str, list], stats: dict) -> None:
    """Write into a sibling staging directory, then swap it in (the old corpus goes last)."""
    import datasets

    features = datasets.Features(
        {"text": datasets.Value("string"), "artist": datasets.Value("string"),
         "title": datasets.Value("string"), "year": datasets.Value("int32")}
    )
    assert tuple(features) == COLUMNS
    corpus = datasets.DatasetDict({
        name: datasets.Dataset.from_dict(
            {"text": [t for t, _ in rows], "artist": [s.artist for _, s in rows],
             "title": [s.title for _, s in rows], "year": [s.year for _, s in rows]},
            features=features,
        )
        for name, rows in rows_by_split.items()
    })
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    previous = out_dir.with_name(f".{out_dir.name}.previous")
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted run of ours
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # the stats table is the report; no per-split save bars
    try:
        corpus.save_to_disk(str(staging))
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    (staging / STATS_FILE).write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if out_dir.exists():
        out_dir.rename(previous)
        staging.rename(out_dir)
        shutil.rmtree(previous)
    else:
        staging.rename(out_dir)


def render_stats(stats: dict, out_dir: str | Path):
    """The stats as rich renderables: a summary line, the per-artist table, the drops table."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"Prepared corpus: {out_dir}", title_justify="left")
    table.add_column("Artist")
    table.add_column("Split")
    for name in ("Songs", "Bars", "Characters"):
        table.add_column(name, justify="right")
    for artist, per_split in stats["artists"].items():
        for k, name in enumerate(SPLITS):
            row = per_split[name]
            table.add_row(artist if k == 0 else "", name, f"{row['songs']:,}", f"{row['bars']:,}", f"{row['chars']:,}",
                          end_section=k == len(SPLITS) - 1)
    for k, name in enumerate(SPLITS):
        row = stats["splits"][name]
        table.add_row("[b]all artists" if k == 0 else "", f"[b]{name}", f"[b]{row['songs']:,}", f"[b]{row['bars']:,}",
                      f"[b]{row['chars']:,}")

    drops = Table(title="Rows dropped", title_justify="left")
    drops.add_column("Reason")
    drops.add_column("Rows", justify="right")
    drops.add_column("Example")
    for reason, count in stats["dropped"].items():
        examples = stats["dropped_examples"].get(reason, [])
        drops.add_row(DROP_REASONS[reason], f"{count:,}", "e.g. " + examples[0] if examples else "")
    splits = ", ".join(f"{name} {stats['splits'][name]['songs']:,}" for name in SPLITS)
    summary = Text(
        f"Read {stats['rows_read']:,} rows from {len(stats['files'])} file(s); kept {stats['songs']:,} songs"
        f" by {len(stats['artists'])} artists ({splits}); {stats['related_groups']} groups of related"
        f" songs kept within one split."
    )
    return Group(summary, table, drops)
