"""scripts/tune_artist_classifier.py: continuations cut as jaxrap eval's, and cross-validation of
the classifier's settings on three invented artists."""

from __future__ import annotations

import pytest
from invented_lyrics import ARTIST_STYLES, invented_artist_text, save_corpus
from scripts_under_test import load_script


@pytest.fixture(scope="module")
def tune():
    return load_script("tune_artist_classifier")


def test_continuation_is_the_bars_after_the_first(tune):
    assert tune.continuation("\nfirst\nb\n\nc\nd", 2) == "b\nc"
    assert tune.continuation("first\nb", 4) == "b"
    assert tune.continuation("only one bar", 4) == "" and tune.continuation("\n", 4) == ""


def test_cross_validation_tells_invented_artists_apart(tune):
    songs = [(invented_artist_text(artist, seed, bars=16), artist) for artist in ARTIST_STYLES for seed in range(6)]
    scores = tune.cross_validate([t for t, _ in songs], [a for _, a in songs], tune.DEFAULT, folds=3, seed=0)
    assert scores == {4: [1.0, 1.0, 1.0], 16: [1.0, 1.0, 1.0]}


def test_main_prints_a_row_per_setting(tune, tmp_path, capsys):
    songs = [(invented_artist_text(artist, seed, bars=16), artist) for artist in ARTIST_STYLES for seed in range(4)]
    corpus = save_corpus(tmp_path / "corpus", songs)
    assert tune.main(["--data", corpus, "--folds", "2", "--settings", "1", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[1].startswith("window_bars 4 ") and lines[2].startswith("defaults ")
    assert "1.000" in lines[2]
