"""`jaxrap prepare`: sources -> cleaned, deduplicated, split corpus (jaxrap.data.prepare, .sources)."""

from __future__ import annotations

import argparse
import csv
import functools
import http.server
import json
import re
import socket
import threading
import time
from pathlib import Path

import pytest
from invented_lyrics import invented_song

from jaxrap.cli import main, prepare as cli_prepare
from jaxrap.data import sources
from jaxrap.data.corpus import SPLITS, STATS_FILE, load_corpus
from jaxrap.data.prepare import PrepareOptions, prepare_corpus
from jaxrap.errors import JaxrapError

HEADER = ["Year", "Song Title", "Artist", "Lyrics", "Number of featured artists", "Featured artists"]
ARTISTS = ("MC_Béton", "La_Plume", "Rimeur 93")


def write_csv(path: Path, rows: list[list], header=HEADER) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def song_rows(songs_per_artist: int = 10, seed: int = 0) -> list[list]:
    """Distinct invented songs for each of ARTISTS, Genius-style."""
    rows = []
    for a, artist in enumerate(ARTISTS):
        for k in range(songs_per_artist):
            lyrics = f"[Couplet 1 : {artist}]\n{invented_song(seed + 1000 * a + k)}\nYou might also like\n7Embed"
            rows.append([f"{2000 + k}.0", f"Titre {k}", artist, lyrics, "0", ""])
    return rows


@pytest.fixture
def options(tmp_path) -> PrepareOptions:
    return PrepareOptions(cache_dir=tmp_path / "cache")


def prepare_cli(*args: str) -> int:
    return main(["prepare", *map(str, args)])


def test_csv_becomes_a_split_corpus_with_drops_counted(tmp_path, options):
    rows = song_rows()
    copy = list(rows[0])
    copy[1:3] = ["Titre 0 (Live)", "La_Plume"]  # the same song under another artist
    rows += [
        copy,
        ["2005", "Vide", "MC_Béton", "   \n", "0", ""],
        ["2005", "Court", "MC_Béton", "[Intro]\nYo\n", "0", ""],
        ["2005", "Anonyme", "", invented_song(77), "0", ""],
    ]
    source = write_csv(tmp_path / "lyrics.csv", rows)
    out = tmp_path / "corpus"
    stats = prepare_corpus([str(source)], out, options)

    corpus = load_corpus(out)
    assert json.loads((out / STATS_FILE).read_text(encoding="utf-8")) == stats
    assert stats["dropped"] == {"empty_lyrics": 1, "missing_artist": 1, "too_short": 1,
                                "exact_duplicate": 1, "near_duplicate": 0, "small_artist": 0}
    assert stats["dropped_examples"]["exact_duplicate"] == ["lyrics.csv row 31 (copy of lyrics.csv row 1)"]
    assert stats["rows_read"] == 34 and stats["songs"] == 30
    for name in SPLITS:
        assert set(corpus[name]["artist"]) == set(ARTISTS)
        assert stats["splits"][name]["songs"] == len(corpus[name])
        for artist in ARTISTS:
            texts = [t for t, a in zip(corpus[name]["text"], corpus[name]["artist"]) if a == artist]
            assert stats["artists"][artist][name] == {
                "songs": len(texts), "bars": sum(len([line for line in t.split("\n") if line]) for t in texts),
                "chars": sum(map(len, texts)),
            }
    texts = [set(corpus[name]["text"]) for name in SPLITS]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    song = corpus["train"][0]
    assert song["text"] == invented_song(int(song["title"].split()[-1]) + 1000 * ARTISTS.index(song["artist"]))
    assert song["year"] == 2000 + int(song["title"].split()[-1])


def test_txt_jsonl_and_directory_sources_combine(tmp_path, options):
    folder = tmp_path / "sources"
    folder.mkdir()
    (folder / "Rimeur 93.txt").write_text(
        "\n---\n".join(f"# Son {k}\n{invented_song(k)}" for k in range(4)) + "\n---\n\n", encoding="utf-8"
    )
    lines = [json.dumps({"lyrics": invented_song(100 + k), "artist": "La_Plume", "title": f"J{k}", "year": "2019"}) for k in range(3)]
    lines += [json.dumps({"text": invented_song(200 + k)}) for k in range(3)]  # artist: the file name
    lines += ["", json.dumps({"lyrics": ""})]
    (folder / "extra.jsonl").write_text("\n".join(lines), encoding="utf-8")
    (folder / "notes.md").write_text("ignored: not a lyrics format", encoding="utf-8")
    csv_source = write_csv(tmp_path / "lyrics.csv", song_rows(3, seed=500)[:3])  # MC_Béton's 3 songs

    stats = prepare_corpus([str(folder), str(csv_source)], tmp_path / "out", options)
    corpus = load_corpus(tmp_path / "out")
    assert [Path(f).name for f in stats["files"]] == ["Rimeur 93.txt", "extra.jsonl", "lyrics.csv"]
    assert stats["dropped"]["empty_lyrics"] == 2  # the empty JSON song and the empty last .txt block
    songs = {(row["artist"], row["title"]): row for name in SPLITS for row in corpus[name]}
    assert songs[("Rimeur 93", "Son 2")]["text"] == invented_song(2)
    assert songs[("Rimeur 93", "Son 2")]["year"] == -1
    assert songs[("La_Plume", "J1")]["year"] == 2019
    assert songs[("extra", "extra 5")]["text"] == invented_song(201)
    for name in SPLITS:
        assert set(corpus[name]["artist"]) == {"Rimeur 93", "La_Plume", "extra", "MC_Béton"}


def test_txt_artist_is_the_file_name_or_the_artist_option(tmp_path, options):
    source = tmp_path / "MC_Inventé.txt"
    source.write_text("\n---\n".join(invented_song(k) for k in range(3)), encoding="utf-8")
    prepare_corpus([str(source)], tmp_path / "a", options)
    assert load_corpus(tmp_path / "a")["test"]["artist"] == ["MC_Inventé"]
    prepare_corpus([str(source)], tmp_path / "b", options.model_copy(update={"artist": "Autre_MC"}))
    assert load_corpus(tmp_path / "b")["test"]["artist"] == ["Autre_MC"]


def test_cli_prints_the_stats_table(tmp_path, capsys):
    source = write_csv(tmp_path / "lyrics.csv", song_rows())
    assert prepare_cli("--source", source, "--out", tmp_path / "out", "--seed", 3, "--lowercase") == 0
    printed = capsys.readouterr().out
    for expected in (*ARTISTS, "validation", "Rows dropped", "too short after cleaning", "Saved to"):
        assert expected in printed
    stats = json.loads((tmp_path / "out" / STATS_FILE).read_text(encoding="utf-8"))
    assert stats["options"]["seed"] == 3 and stats["options"]["lowercase"] is True
    assert load_corpus(tmp_path / "out")["train"][0]["text"].islower()


def test_help_defaults_are_the_options_defaults():
    subparsers = argparse.ArgumentParser().add_subparsers()
    cli_prepare.register(subparsers)
    prepare = subparsers.choices["prepare"]
    checked = 0
    for action in prepare._actions:
        match = re.search(r"\(default ([^)]+)\)", action.help or "")
        if match:
            field = action.dest
            assert str(PrepareOptions.model_fields[field].default) == match.group(1), field
            checked += 1
    assert checked >= 6


def bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (source file, a fragment the one-line error must contain)."""
    def write(name: str, data: bytes) -> Path:
        (tmp_path / name).write_bytes(data)
        return tmp_path / name

    latin1 = "Year,Song Title,Artist,Lyrics\n2001,Ete,MC,ok\n2002,Hiver,MC,caf\xe9\n".encode("latin-1")
    (tmp_path / "empty_dir").mkdir()
    return {
        "missing file": (tmp_path / "absent.csv", "absent.csv: no such file"),
        "wrong columns": (write("semicolons.csv", b"Year;Song Title;Artist;Lyrics\n2001;A;B;C\n"),
                          "semicolons.csv: missing column(s) 'Artist', 'Lyrics'"),
        "empty file": (write("empty.csv", b""), "empty.csv: file is empty"),
        "blank file": (write("blank.txt", b"\n \n"), "blank.txt: file is empty"),
        "header only": (write("header.csv", ",".join(HEADER).encode() + b"\n"), "header.csv: has a header but no rows"),
        "not utf-8": (write("latin1.csv", latin1), "latin1.csv: line 3: byte b'\\xe9' is not UTF-8"),
        "bad json": (write("bad.jsonl", b'{"lyrics": "a"}\n{"lyrics": \n'), "bad.jsonl: line 2: invalid JSON"),
        "json without lyrics": (write("nolyrics.jsonl", b'{"title": "a"}\n'), "nolyrics.jsonl: line 1: no 'lyrics' or 'text' field"),
        "json not an object": (write("list.jsonl", b'["a"]\n'), "list.jsonl: line 1: expected a JSON object"),
        "unsupported type": (write("lyrics.xlsx", b"PK"), "unsupported file type '.xlsx'"),
        "empty directory": (tmp_path / "empty_dir", "empty_dir: directory holds no .csv, .txt, .jsonl files"),
        "only empty lyrics": (write("blank_lyrics.csv", ",".join(HEADER).encode() + b'\n2001,A,MC,"  "\n2002,B,MC,\n'),
                              "no songs left in"),
        "only tiny songs": (write("tiny.csv", ",".join(HEADER).encode() + b"\n2001,A,MC,Yo\n"), "1 too short after cleaning"),
        "too few songs per artist": (write_csv(tmp_path / "few.csv", song_rows(2)), "no artist has 3 distinct songs"),
        # An unbalanced quote swallows the rest of the file into one cell.
        "malformed csv": (write("quote.csv", ",".join(HEADER).encode() + b'\n2001,"A,MC,' + b"x" * 200_000),
                          "quote.csv: line 2: malformed CSV (field larger than field limit"),
    }


@pytest.mark.parametrize("case", [
    "missing file", "wrong columns", "empty file", "blank file", "header only", "not utf-8", "bad json",
    "json without lyrics", "json not an object", "unsupported type", "empty directory", "only empty lyrics",
    "only tiny songs", "too few songs per artist", "malformed csv",
])
def test_bad_input_is_a_one_line_error_naming_the_file(case, tmp_path, capsys):
    source, fragment = bad_inputs(tmp_path)[case]
    out = tmp_path / "out"
    assert prepare_cli("--source", source, "--out", out, "--cache-dir", tmp_path / "cache") == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("jaxrap: error: ") and captured.err.count("\n") == 1, captured.err
    assert fragment in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [(["--val-fraction", "0.6", "--test-fraction", "0.5"], "must be below 1"),
     (["--dedup-threshold", "0.05"], "--dedup-threshold: Input should be greater than or equal to 0.2"),
     (["--min-artist-songs", "2"], "--min-artist-songs: Input should be greater than or equal to 3"),
     (["--min-chars", "0"], "--min-chars")],
)
def test_bad_options_are_one_line_errors(args, fragment, tmp_path, capsys):
    source = write_csv(tmp_path / "lyrics.csv", song_rows(3))
    assert prepare_cli("--source", source, "--out", tmp_path / "out", *args) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


def test_out_dir_is_never_clobbered(tmp_path, options, capsys):
    source = str(write_csv(tmp_path / "lyrics.csv", song_rows()))
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(JaxrapError, match="not empty and is not a prepared corpus"):
        prepare_corpus([source], notes, options.model_copy(update={"overwrite": True}))
    assert (notes / "todo.txt").read_text(encoding="utf-8") == "mine"
    with pytest.raises(JaxrapError, match="is a file"):
        prepare_corpus([source], notes / "todo.txt", options)

    out = tmp_path / "corpus"
    out.mkdir()  # an empty directory is fine
    first = prepare_corpus([source], out, options)
    with pytest.raises(JaxrapError, match="already holds a prepared corpus; pass --overwrite"):
        prepare_corpus([source], out, options)
    # A failing run with --overwrite leaves the old corpus as it was.
    assert prepare_cli("--source", tmp_path / "absent.csv", "--out", out, "--overwrite") == 2
    assert len(load_corpus(out)["train"]) == first["splits"]["train"]["songs"]
    assert json.loads((out / STATS_FILE).read_text(encoding="utf-8")) == first

    second = prepare_corpus([source], out, options.model_copy(update={"overwrite": True, "seed": 1}))
    assert json.loads((out / STATS_FILE).read_text(encoding="utf-8")) == second != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "lyrics.csv", "notes"]  # no staging leftovers


@pytest.fixture
def http_server(tmp_path, monkeypatch):
    """(directory served, base URL) of a local HTTP server: tests never reach the network."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def closed_port_url(path: str) -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{path}"


def test_url_is_downloaded_once_into_the_cache(tmp_path, options, http_server):
    root, base = http_server
    write_csv(root / "lyrics_df.csv", song_rows())
    prepare_corpus([f"{base}/lyrics_df.csv"], tmp_path / "a", options)
    (root / "lyrics_df.csv").unlink()  # a second run must not need the server
    stats = prepare_corpus([f"{base}/lyrics_df.csv"], tmp_path / "b", options)
    assert Path(stats["files"][0]).parent == options.cache_dir
    assert [p.name for p in options.cache_dir.iterdir()] == [Path(stats["files"][0]).name]  # no partial files
    with pytest.raises(JaxrapError, match=r"cannot download .*missing.csv \(HTTP Error 404"):
        prepare_corpus([f"{base}/missing.csv"], tmp_path / "c", options)


def test_unreachable_url_and_default_source_say_what_to_do(tmp_path, options, monkeypatch, capsys):
    with pytest.raises(JaxrapError, match="cannot download .*; check the URL, or download the file"):
        prepare_corpus([closed_port_url("lyrics.csv")], tmp_path / "out", options)
    monkeypatch.setattr(sources, "DEFAULT_SOURCE_URL", closed_port_url("lyrics_df.csv"))
    assert prepare_cli("--out", tmp_path / "out", "--cache-dir", tmp_path / "cache") == 2
    err = capsys.readouterr().err
    assert "no --source given and the default corpus" in err
    assert "--source ../shared/data/lyrics_df_2.csv" in err


def test_default_source_is_the_frenchraplyricsanalyzer_corpus():
    assert sources.DEFAULT_SOURCE_URL.startswith("https://raw.githubusercontent.com/MariusLD/FrenchRapLyricsAnalyzer/")
    assert sources.DEFAULT_SOURCE_URL.endswith("/lyrics_df.csv")


@pytest.mark.slow
def test_real_corpus_prepares_leak_free_with_every_artist_everywhere(real_corpus_csv, tmp_path, capsys):
    started = time.perf_counter()
    out = tmp_path / "rap"
    assert prepare_cli("--source", real_corpus_csv, "--out", out) == 0
    assert time.perf_counter() - started < 30
    corpus = load_corpus(out)
    stats = json.loads((out / STATS_FILE).read_text(encoding="utf-8"))
    assert stats["rows_read"] == 1559
    assert 1400 <= stats["songs"] <= 1559 - 20
    assert stats["dropped"]["exact_duplicate"] + stats["dropped"]["near_duplicate"] >= 5
    assert stats["dropped"]["small_artist"] == 0
    artists = set(corpus["train"]["artist"])
    assert len(artists) == 8
    for name in SPLITS:
        assert set(corpus[name]["artist"]) == artists
        assert stats["splits"][name]["songs"] == len(corpus[name])
    assert 0.08 < len(corpus["validation"]) / stats["songs"] < 0.12

    texts = {name: corpus[name]["text"] for name in SPLITS}
    lines = [line for name in SPLITS for text in texts[name] for line in text.split("\n")]
    bars_per_song = stats["splits"]["train"]["bars"] / stats["splits"]["train"]["songs"]
    assert 20 < bars_per_song < 80  # bars on their own lines, not one flattened line per song
    assert sorted(map(len, lines))[int(0.99 * len(lines))] < 120
    assert not any(line.startswith("[") or line.strip() != line for line in lines)
    assert not any("\n\n\n" in t or t != t.strip() for name in SPLITS for t in texts[name])

    def normalised(text):
        return " ".join(re.findall(r"\w+", text.lower()))

    seen = {name: {normalised(t) for t in texts[name]} for name in SPLITS}
    assert not (seen["train"] & seen["validation"] or seen["train"] & seen["test"] or seen["validation"] & seen["test"])
    assert "Rows dropped" in capsys.readouterr().out
