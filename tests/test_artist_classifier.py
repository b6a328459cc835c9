"""The artist classifier on three invented artists with their own words and spellings (known
answers), its bad input, its confusion PNG, and its ceiling on the real corpus (slow)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from invented_lyrics import ARTIST_STYLES, invented_artist_text, save_corpus

from jaxrap.errors import JaxrapError
from jaxrap.evaluate.artist_classifier import (
    ArtistAccuracy,
    ArtistClassifier,
    bar_windows,
    save_confusion_panels,
    save_confusion_png,
)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    songs = [(invented_artist_text(artist, seed, bars=16), artist) for artist in ARTIST_STYLES for seed in range(6)]
    return save_corpus(tmp_path_factory.mktemp("three_artists"), songs)


@pytest.fixture(scope="module")
def judge(corpus_dir):
    return ArtistClassifier.train(corpus_dir, seed=0)


def test_bar_windows_are_consecutive_bars_without_blank_lines():
    assert bar_windows("a\nb\n\nc\nd\ne", bars=2) == ["a\nb", "c\nd", "e"]
    assert bar_windows("\n\n", bars=2) == []


def test_learns_three_invented_artists(judge):
    assert judge.labels == ("Brume", "Kilo", "Ondine")
    texts = [invented_artist_text(artist, seed, bars=4) for artist in ARTIST_STYLES for seed in range(100, 105)]
    assert judge.predict(texts) == [artist for artist in ARTIST_STYLES for _ in range(5)]
    assert judge.predict([]) == []


def test_accuracy_per_artist_and_confusion_on_known_answers(judge):
    brume, kilo, ondine = (invented_artist_text(artist, 200 + k) for k, artist in enumerate(ARTIST_STYLES))
    # Written for Brume: two Brume texts and one Kilo text; for Kilo: one Ondine text; for Ondine: three Ondine.
    texts = [brume, brume, kilo, ondine, ondine, ondine, ondine]
    requested = ["Brume", "Brume", "Brume", "Kilo", "Ondine", "Ondine", "Ondine"]
    result = judge.accuracy(texts, requested)
    np.testing.assert_array_equal(result.confusion, [[2, 1, 0], [0, 0, 1], [0, 0, 3]])
    assert result.texts == 7
    assert result.accuracy == pytest.approx(5 / 7)
    assert result.per_artist == {
        "Brume": {"texts": 3, "accuracy": pytest.approx(2 / 3)},
        "Kilo": {"texts": 1, "accuracy": 0.0},
        "Ondine": {"texts": 3, "accuracy": 1.0},
    }
    assert result.balanced_accuracy == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert result.chance == pytest.approx(1 / 3)
    # requested 3/1/3, attributed 2/1/4: p_e = (3*2 + 1*1 + 3*4) / 49
    assert result.chance_agreement == pytest.approx(19 / 49)
    assert result.kappa == pytest.approx((5 / 7 - 19 / 49) / (1 - 19 / 49))
    record = result.as_dict()
    assert record["confusion"] == [[2, 1, 0], [0, 0, 1], [0, 0, 3]] and record["labels"] == ["Brume", "Kilo", "Ondine"]


def test_scores_equal_scikit_learns_metrics(judge):
    from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score, confusion_matrix

    rng = random.Random(0)
    requested = [rng.choice(list(ARTIST_STYLES)) for _ in range(40)]
    written_as = [rng.choice([artist, *ARTIST_STYLES]) for artist in requested]  # right at least a third of the time
    texts = [invented_artist_text(artist, 500 + k, bars=3) for k, artist in enumerate(written_as)]
    result = judge.accuracy(texts, requested)
    predicted = judge.predict(texts)
    assert predicted == written_as
    np.testing.assert_array_equal(result.confusion, confusion_matrix(requested, predicted, labels=list(judge.labels)))
    assert result.balanced_accuracy == pytest.approx(balanced_accuracy_score(requested, predicted))
    assert result.kappa == pytest.approx(cohen_kappa_score(requested, predicted))


def test_an_artist_without_texts_has_no_per_artist_entry():
    result = ArtistAccuracy(("A", "B"), np.array([[3, 1], [0, 0]]))
    assert result.per_artist == {"A": {"texts": 4, "accuracy": 0.75}}
    assert result.balanced_accuracy == 0.75 and result.accuracy == 0.75


def test_training_is_deterministic_given_the_seed(corpus_dir, judge):
    again = ArtistClassifier.train(corpus_dir, seed=0)
    texts = [invented_artist_text(artist, 300) for artist in ARTIST_STYLES] + ["le la les on dans la nuit"]
    np.testing.assert_array_equal(judge._pipeline.decision_function(texts), again._pipeline.decision_function(texts))


def test_artists_restricts_the_labels_and_their_training_songs(corpus_dir):
    pair = ArtistClassifier.train(corpus_dir, artists=["Ondine", "Kilo"])
    assert pair.labels == ("Kilo", "Ondine")
    assert pair.predict([invented_artist_text("Kilo", 400), invented_artist_text("Ondine", 400)]) == ["Kilo", "Ondine"]


def test_a_models_judge_knows_its_named_artists_that_have_train_songs(corpus_dir):
    from jaxrap.data.artists import UNKNOWN_ARTIST, SongPrompt

    model = SongPrompt(0, {UNKNOWN_ARTIST: 2, "Kilo": 3, "Nobody": 4, "Ondine": 5})  # Nobody: no song in the corpus
    judge = ArtistClassifier.for_model(corpus_dir, model)
    assert judge is not None and judge.labels == ("Kilo", "Ondine")
    assert judge.predict([invented_artist_text("Ondine", 400)]) == ["Ondine"]
    assert ArtistClassifier.for_model(corpus_dir, SongPrompt(0, {UNKNOWN_ARTIST: 2, "Kilo": 3, "Nobody": 4})) is None
    assert ArtistClassifier.for_model(corpus_dir, SongPrompt(0)) is None  # no artist tokens
    assert ArtistClassifier.for_model(corpus_dir, None) is None  # a plain Hugging Face model


def test_bad_input_is_a_one_line_error(corpus_dir, judge, tmp_path):
    cases = [
        # (datasets cannot save and load back a split of 0 rows: an empty split is one of blank songs)
        (lambda: ArtistClassifier.train(save_corpus(tmp_path / "empty", [("\n", "Kilo"), ("", "Brume")])), "train split has no bars"),
        (lambda: ArtistClassifier.train(save_corpus(tmp_path / "one", [(invented_artist_text("Kilo", 1), "Kilo")])),
         r"two artists or more, got \['Kilo'\]"),
        (lambda: ArtistClassifier.train(corpus_dir, artists=["Kilo", "Nobody"]),
         r"artist\(s\) \['Nobody'\] have no song in the train split"),
        (lambda: ArtistClassifier.train(corpus_dir, artists=["Kilo"]), r"two artists or more, got \['Kilo'\]"),
        (lambda: ArtistClassifier.train(corpus_dir, artists=["Kilo", "Brume", "unknown"]), "'unknown' is a bucket of artists, not a style"),
        (lambda: ArtistClassifier.train(tmp_path / "nowhere"), "not a prepared corpus"),
        (lambda: judge.accuracy(["wesh frérot"], ["unknown"]),
         r"artist\(s\) \['unknown'\] are not labels of the classifier; it knows: Brume, Kilo, Ondine"),
        (lambda: judge.accuracy(["wesh frérot", "comète"], ["Kilo"]), "2 texts but 1 labels"),
        (lambda: save_confusion_png(np.zeros((2, 3)), ["A", "B"], tmp_path / "x.png"), r"shape \(2, 3\) for 2 labels"),
    ]
    for call, message in cases:
        with pytest.raises(JaxrapError, match=message) as error:
            call()
        assert "\n" not in str(error.value)


def test_confusion_png_is_written(tmp_path):
    from matplotlib.image import imread

    path = save_confusion_png(np.array([[5, 1, 0], [2, 3, 1], [0, 0, 6]]), ["Brume", "Kilo", "Ondine"],
                              tmp_path / "plots" / "confusion.png", title="invented artists")
    assert path == tmp_path / "plots" / "confusion.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = imread(path).shape
    assert height > 100 and width > 100

    panels = save_confusion_panels([("songs", np.eye(3, dtype=int)), ("samples", np.ones((3, 3), int))],
                                   ["Brume", "Kilo", "Ondine"], tmp_path / "both.png")
    both_height, both_width, _ = imread(panels).shape
    assert both_height == height and both_width > 1.5 * width  # side by side
    with pytest.raises(JaxrapError, match=r"shape \(2, 2\) for 3 labels"):
        save_confusion_panels([("songs", np.eye(3)), ("samples", np.eye(2))], ["Brume", "Kilo", "Ondine"], tmp_path / "x.png")


@pytest.mark.slow
def test_ceiling_on_the_real_corpus_is_well_above_chance(real_corpus_dir):
    """The validation songs' continuations after their first bar (jaxrap eval's prompts), cut to
    16 bars (about the token budget of the quickstart model), are attributed to their artist far
    more often than a uniform guess among the 8 artists."""
    from jaxrap.evaluate.samples import eval_prompts

    judge = ArtistClassifier.train(real_corpus_dir, seed=0)
    prompts = eval_prompts(real_corpus_dir, "validation", 0, None)
    texts = [bar_windows(prompt.reference, 16)[0] for prompt in prompts]
    result = judge.accuracy(texts, [prompt.artist for prompt in prompts])
    assert len(judge.labels) == 8 and result.texts == len(prompts) > 100
    assert result.chance == 1 / 8
    assert result.balanced_accuracy > 4 * result.chance  # measured 0.7+; chance 0.125
    assert min(stats["accuracy"] for stats in result.per_artist.values()) > result.chance
