"""`jaxrap next-bar`: the suggestions of Generator.suggest_bars printed one per line (or as JSON)
for a verse file; a bad verse file, K or N is one line on stderr and exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from jaxrap.cli import main
from jaxrap.sample.generator import Generator
from jaxrap.sample.params import SamplingParams

VERSE = "[Couplet]\nJ'traîne au quartier\n\nOn rêvait d'Paris\n"
FLAGS = ["--rhyme-scheme", "AABB", "--syllables", "4", "--syllable-tolerance", "1", "--candidates", "3", "--seed", "2"]


def test_the_candidates_are_printed_one_per_line_met_first(tiny_lyrics_model_dir, tmp_path, capsys):
    song = tmp_path / "verse.txt"
    song.write_text(VERSE, encoding="utf-8")
    assert main(["next-bar", "--model", str(tiny_lyrics_model_dir), "--song", str(song), *FLAGS]) == 0
    lines = capsys.readouterr().out.split("\n")[:-1]  # a random model's bars hold characters splitlines() breaks at
    params = SamplingParams(rhyme_scheme="AABB", syllables=4, syllable_tolerance=1, candidates=3, seed=2)
    expected = Generator.load(tiny_lyrics_model_dir).suggest_bars(["J'traîne au quartier", "On rêvait d'Paris"], params, 3)
    assert lines == [
        f"{n}\t{'met' if bar.met else 'miss'}\t{bar.syllables}\t{bar.rhyme_key or '-'}\t{column(bar.text)}\t{bar.reason or ''}"
        for n, bar in enumerate(expected, start=1)
    ]
    assert main(["next-bar", "--model", str(tiny_lyrics_model_dir), "--song", str(song), *FLAGS, "--bar", "1",
                 "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert {(record["index"], record["letter"], record["target_key"]) for record in records} == {(0, "A", "i")}  # Paris


def column(text: str) -> str:
    return text.replace("\t", " ").replace("\r", " ")


def run_cli(*flags: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jaxrap", "next-bar", *flags], input=stdin, capture_output=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                          timeout=120)


@pytest.mark.parametrize(
    ("content", "flags", "message"),
    [
        (b"J'tra\xeene au quartier\n", [], "not UTF-8 text (byte 5); save the verse as UTF-8"),
        (b"", [], "the verse is empty; write at least one bar"),
        (b"\n[Refrain]\n  \n", [], "the verse is empty"),
        (VERSE.encode(), ["--candidates", "0"], "candidates must be in [1, 64], got 0"),
        (VERSE.encode(), ["--candidates", "65"], "candidates must be in [1, 64], got 65"),
        (VERSE.encode(), ["--rhyme-vowels", "0"], "rhyme_vowels must be in [1, 4], got 0"),
        (VERSE.encode(), ["--rhyme-vowels", "5"], "rhyme_vowels must be in [1, 4], got 5"),
        (VERSE.encode(), ["--bar", "3"], "--bar 3: the verse has bars 1 to 2"),
    ],
)
def test_bad_input_is_one_line_and_status_2_before_any_model_loads(tmp_path, content, flags, message):
    song = tmp_path / "verse.txt"
    song.write_bytes(content)
    result = run_cli("--model", str(tmp_path / "no_model"), "--song", str(song), *flags)
    assert (result.returncode, result.stdout) == (2, b"")
    err = result.stderr.decode()
    assert err.startswith("jaxrap: error: ") and err.count("\n") == 1 and message in err, err


def test_a_missing_verse_file_and_stdin(tmp_path):
    result = run_cli("--model", "x", "--song", str(tmp_path / "none.txt"))
    assert result.returncode == 2 and "cannot read the verse (No such file or directory)" in result.stderr.decode()
    result = run_cli("--model", "x", "--song", "-", "--candidates", "99", stdin=VERSE.encode())
    assert result.returncode == 2 and result.stderr.decode().count("\n") == 1
    result = run_cli("--model", "x", "--song", "-", stdin=b"\xff\xfe")
    assert result.returncode == 2 and "-: not UTF-8 text (byte 0)" in result.stderr.decode()


def test_a_tab_in_a_bar_keeps_the_columns(tmp_path, capsys, monkeypatch):
    from jaxrap.sample.bar_check import Bar

    bar = Bar(2, "un\ttab\rici", 3, "i", "ici", "B", None, None, True, None, 1, 0)

    class Stub:
        def suggest_bars(self, bars, params, k, *, index=None):
            return [bar]

    monkeypatch.setattr(Generator, "load", classmethod(lambda cls, model, dtype="float32": Stub()))
    song = tmp_path / "verse.txt"
    song.write_text(VERSE, encoding="utf-8")
    assert main(["next-bar", "--model", "stub", "--song", str(song), "--seed", "1"]) == 0
    assert capsys.readouterr().out == "1\tmet\t3\ti\tun tab ici\t\n"
