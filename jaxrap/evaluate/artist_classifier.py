"""An independent judge of style: which artist a text reads like, to a classifier that never
sees the language model.

``evaluate.fidelity`` asks the model itself whether a text is more likely under its own
artist token; a sampler that amplifies the artist token (guidance) would win that score by
construction. This judge is a scikit-learn text classifier trained on the corpus alone:
TF-IDF over word 1-2-grams and character 2-5-grams (inside word boundaries, case kept), then
a linear SVM with balanced class weights (the judge must not favour the artists with more
songs: eval prompts ask for every artist in turn).

It judges continuations: a song's text after its first bar, a few bars to ~256 tokens (about
17 bars, 700 characters, for the quickstart model). So it is trained on windows of
``window_bars`` consecutive bars of every train song, not on whole songs, which it would
judge short texts by poorly.

Hyper-parameters were chosen by 5-fold cross-validation over the 1,195 train songs of the
real slice (``scripts/tune_artist_classifier.py``: fit on the windows of 4/5 of the songs,
scored by balanced accuracy on the other songs' next 4 and next 16 bars after their first
bar), leaving validation and test untouched for the ceiling. Mean over folds, ± half the
fold-to-fold standard deviation; words 1-2 + characters 2-5 unless said:

    training texts, SVM                        4 bars          16 bars
    whole songs, C 0.3                         0.460 ±0.013    0.762 ±0.017
    4-bar windows, C 0.3                       0.559 ±0.023    0.774 ±0.014
    8-bar windows, C 0.1                       0.560 ±0.022    0.780 ±0.009
    8-bar windows, C 0.3 (chosen)              0.565 ±0.014    0.785 ±0.006
    8-bar windows, C 1                         0.544 ±0.014    0.790 ±0.008
    16-bar windows, C 0.3                      0.543 ±0.022    0.787 ±0.007
    8-bar windows, C 0.3, words 1 + chars 1-4  0.543 ±0.014    0.779 ±0.011
    8-bar windows, C 0.3, chars 3-6            0.553 ±0.022    0.791 ±0.005

Windows beat whole songs on short texts (+0.10) and match them on long ones; past that the
settings are within noise of each other, and 8-bar windows with C 0.3 are the best on short
texts and within noise of the best on long ones. Tried the same way outside the script: the
SVM without balanced class weights (0.05 lower on whole songs, 16 bars), a ridge classifier
(within noise) and complement naive Bayes (0.10-0.15 lower). Training on the real slice's
train split takes 7-17 s on two shared CPU cores, about half of ``jaxrap eval``'s validation
perplexity pass: it is retrained rather than cached (a pickle beside a corpus would run code
when loaded).

Labels are the artists a model has tokens for (``jaxrap.data.artists``): songs of other
corpus artists (the model's ``unknown`` bucket, which is no style) are not trained on, and
``unknown`` is no label, as in ``fidelity``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jaxrap.data.artists import UNKNOWN_ARTIST, SongPrompt
from jaxrap.errors import JaxrapError


@dataclasses.dataclass(frozen=True)
class ClassifierSettings:
    """The judge's hyper-parameters; the defaults are the cross-validated choice (see above)."""

    window_bars: int = 8  # bars per training window of a train song; its last window may be shorter
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)  # inside word boundaries, case kept
    min_df: int = 2  # n-grams seen in fewer training texts are dropped (names, typos of one song)
    svm_c: float = 0.3  # inverse regularisation strength of the linear SVM


@dataclasses.dataclass(frozen=True)
class ArtistAccuracy:
    """How often texts written for an artist are attributed to that artist."""

    labels: tuple[str, ...]  # the classifier's artists, sorted: rows and columns of ``confusion``
    confusion: np.ndarray  # (K, K) int64: texts of artist labels[i] attributed to labels[j]

    @property
    def texts(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        """Share of all texts attributed to their own artist."""
        return float(np.trace(self.confusion) / max(self.texts, 1))

    @property
    def per_artist(self) -> dict[str, dict[str, float]]:
        """artist -> {"texts", "accuracy"} for every artist with texts."""
        counts = self.confusion.sum(axis=1)
        return {
            label: {"texts": int(counts[i]), "accuracy": float(self.confusion[i, i] / counts[i])}
            for i, label in enumerate(self.labels) if counts[i]
        }

    @property
    def balanced_accuracy(self) -> float:
        """Mean of the per-artist accuracies: every artist counts the same, however many texts."""
        return float(np.mean([stats["accuracy"] for stats in self.per_artist.values()])) if self.texts else 0.0

    @property
    def chance(self) -> float:
        """A uniform guess among the K artists."""
        return 1.0 / len(self.labels)

    @property
    def chance_agreement(self) -> float:
        """The accuracy the same attributions would score if they did not depend on the
        requested artist (Cohen's p_e): above ``chance`` when the judge leans to one artist."""
        if not self.texts:
            return 0.0
        return float(self.confusion.sum(axis=1) @ self.confusion.sum(axis=0) / self.texts**2)

    @property
    def kappa(self) -> float:
        """Cohen's kappa: 0 for attributions unrelated to the requested artist, 1 for all right.
        Unlike accuracy, a sampler cannot raise it by writing like the judge's favourite artist.
        It needs texts requested for several artists (for one artist it is 0 or undefined: 0)."""
        return (self.accuracy - self.chance_agreement) / (1.0 - self.chance_agreement) if self.chance_agreement < 1 else 0.0

    def as_dict(self) -> dict:
        return {
            "texts": self.texts, "accuracy": self.accuracy, "balanced_accuracy": self.balanced_accuracy,
            "chance": self.chance, "chance_agreement": self.chance_agreement, "kappa": self.kappa,
            "per_artist": self.per_artist, "labels": list(self.labels), "confusion": self.confusion.tolist(),
        }


def judged_artists(song_prompt: SongPrompt | None) -> list[str]:
    """The artists a model's samples can be judged against: its named ones (not ``unknown``)."""
    return [name for name in song_prompt.artists if name != UNKNOWN_ARTIST] if song_prompt is not None else []


def bar_windows(text: str, bars: int) -> list[str]:
    """``text``'s bars (non-empty lines) in consecutive windows of ``bars``, joined by newlines."""
    lines = [line for line in text.split("\n") if line.strip()]
    return ["\n".join(lines[start:start + bars]) for start in range(0, len(lines), bars)]


class ArtistClassifier:
    """A trained judge: ``predict`` texts' artists, ``accuracy`` against the requested ones."""

    def __init__(self, pipeline, labels: Sequence[str]):
        self._pipeline = pipeline  # sklearn Pipeline: TF-IDF union -> LinearSVC
        self.labels = tuple(labels)

    @classmethod
    def fit(
        cls, texts: Sequence[str], labels: Sequence[str], *, seed: int = 0, settings: ClassifierSettings = ClassifierSettings()
    ) -> ArtistClassifier:
        """Train on ``texts`` as they are (already shaped like what it will judge); the seed
        orders the SVM solver's passes (``settings.window_bars`` is not used here)."""
        if len(texts) != len(labels):
            raise JaxrapError(f"{len(texts)} texts but {len(labels)} labels; give one artist per text")
        names = sorted(set(labels))
        if len(names) < 2:
            raise JaxrapError(f"an artist classifier needs texts of two artists or more, got {names or 'none'}")
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline, make_union
        from sklearn.svm import LinearSVC

        features = make_union(
            # words: \w+ keeps accented letters; apostrophes split (j'rêve -> j, rêve)
            TfidfVectorizer(ngram_range=settings.word_ngrams, token_pattern=r"(?u)\b\w+\b", min_df=settings.min_df,
                            sublinear_tf=True, dtype=np.float32),
            # characters: spellings (j'suis, wesh, ...), case and punctuation habits
            TfidfVectorizer(analyzer="char_wb", ngram_range=settings.char_ngrams, lowercase=False, min_df=settings.min_df,
                            sublinear_tf=True, dtype=np.float32),
        )
        pipeline = make_pipeline(features, LinearSVC(C=settings.svm_c, class_weight="balanced", random_state=seed))
        pipeline.fit(list(texts), list(labels))
        return cls(pipeline, names)

    @classmethod
    def train(
        cls, corpus_dir: str | Path, *, artists: Sequence[str] | None = None, seed: int = 0,
        settings: ClassifierSettings = ClassifierSettings(),
    ) -> ArtistClassifier:
        """Train on windows of ``settings.window_bars`` bars of the train songs of ``artists``
        (default: every artist of the split) in the prepared corpus at ``corpus_dir``. To judge
        a model, pass its named artists (``SongPrompt.artists`` without ``unknown``)."""
        from jaxrap.data.corpus import load_corpus

        if artists is not None and UNKNOWN_ARTIST in artists:
            raise JaxrapError(f"artists: {UNKNOWN_ARTIST!r} is a bucket of artists, not a style to judge; pass the named artists only")
        train = load_corpus(corpus_dir)["train"]
        songs = list(zip(train["text"], train["artist"]))
        wanted = sorted(set(artist for _, artist in songs)) if artists is None else sorted(set(artists))
        missing = [name for name in wanted if name not in {artist for _, artist in songs}]
        if missing:
            raise JaxrapError(f"{corpus_dir}: artist(s) {missing} have no song in the train split; choose among the corpus' artists")
        texts, labels = [], []
        for text, artist in songs:
            if artist in wanted:
                windows = bar_windows(text, settings.window_bars)
                texts += windows
                labels += [artist] * len(windows)
        if not texts:
            raise JaxrapError(f"{corpus_dir}: the train split has no bars to train an artist classifier on")
        return cls.fit(texts, labels, seed=seed, settings=settings)

    @classmethod
    def for_model(
        cls, corpus_dir: str | Path, song_prompt: SongPrompt | None, *, seed: int = 0,
        settings: ClassifierSettings = ClassifierSettings(),
    ) -> ArtistClassifier | None:
        """The judge of a model's samples: trained on the model's named artists that have train
        songs in the corpus (the artists its eval prompts can ask for). None for a model without
        artist tokens, or with fewer than two such artists: there is no style to tell apart."""
        if len(judged_artists(song_prompt)) < 2:
            return None
        from jaxrap.data.corpus import load_corpus

        in_train = set(load_corpus(corpus_dir)["train"]["artist"])
        artists = [name for name in judged_artists(song_prompt) if name in in_train]
        return cls.train(corpus_dir, artists=artists, seed=seed, settings=settings) if len(artists) >= 2 else None

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The artist each text reads like (an empty text gets the classifier's default guess)."""
        return [str(label) for label in self._pipeline.predict(list(texts))] if len(texts) else []

    def accuracy(self, texts: Sequence[str], labels: Sequence[str]) -> ArtistAccuracy:
        """Attribution of ``texts`` written for ``labels`` (artists of the classifier)."""
        if len(texts) != len(labels):
            raise JaxrapError(f"{len(texts)} texts but {len(labels)} labels; give one artist per text")
        unknown = sorted(set(labels) - set(self.labels))
        if unknown:
            raise JaxrapError(
                f"artist(s) {unknown} are not labels of the classifier; it knows: {', '.join(self.labels)}"
                " (judge only texts written for these)"
            )
        index = {label: i for i, label in enumerate(self.labels)}
        confusion = np.zeros((len(self.labels), len(self.labels)), dtype=np.int64)
        for label, predicted in zip(labels, self.predict(texts)):
            confusion[index[label], index[predicted]] += 1
        return ArtistAccuracy(self.labels, confusion)


def save_confusion_png(confusion: np.ndarray, labels: Sequence[str], path: str | Path, *, title: str = "") -> Path:
    """Draw ``confusion`` (rows: requested artist, columns: attributed artist; counts) as a PNG.

    Cells are shaded by the share of their row, so artists with few texts read as clearly as
    the others; each cell prints its count.
    """
    return save_confusion_panels([(title, confusion)], labels, path)


def save_confusion_panels(panels: Sequence[tuple[str, np.ndarray]], labels: Sequence[str], path: str | Path) -> Path:
    """``save_confusion_png`` for several (title, confusion) matrices over the same ``labels``,
    side by side in one PNG (`jaxrap eval`: the songs' continuations, then the samples)."""
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    matrices = [np.asarray(confusion) for _, confusion in panels]
    for confusion in matrices:
        if confusion.shape != (len(labels), len(labels)):
            raise JaxrapError(f"confusion matrix of shape {confusion.shape} for {len(labels)} labels; it must be labels x labels")
    size = 1.5 + 0.6 * len(labels)
    figure = Figure(figsize=(len(panels) * size + 1, size), layout="constrained")
    every_axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for axes, (title, _), confusion in zip(every_axes, panels, matrices):
        shares = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)  # (K, K) row shares
        image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        for i, j in np.ndindex(*confusion.shape):
            axes.text(j, i, str(confusion[i, j]), ha="center", va="center", color="white" if shares[i, j] > 0.5 else "black")
        axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        axes.set_yticks(range(len(labels)), labels)
        axes.set_xlabel("attributed to")
        axes.set_ylabel("written for")
        if title:
            axes.set_title(title)
    figure.colorbar(image, ax=list(every_axes), label="share of the row")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path
