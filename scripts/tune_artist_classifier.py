"""Cross-validate the artist classifier's settings on a corpus' train split, as
``jaxrap/evaluate/artist_classifier.py``'s defaults were chosen.

    python scripts/tune_artist_classifier.py --data data/rap            # ~10 min on 2 CPU cores

The train songs are split into ``--folds`` folds (seeded). For every setting and fold, the
classifier is trained on the windows of the other folds' songs and judges each held-out song's
bars after its first bar, cut to 4 and to 16 bars (a short sample and about what the
quickstart model writes in 256 tokens), as ``jaxrap eval`` judges continuations. Scores are
balanced accuracy (the mean of the per-artist accuracies), mean over folds, with half the
fold-to-fold standard deviation. Validation and test stay untouched for the ceiling.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jaxrap.evaluate.artist_classifier import ArtistClassifier, ClassifierSettings, bar_windows

CUTS = (4, 16)  # bars of each held-out continuation
DEFAULT = ClassifierSettings()
GRID = (
    dataclasses.replace(DEFAULT, window_bars=10_000),  # whole songs
    dataclasses.replace(DEFAULT, window_bars=4),
    dataclasses.replace(DEFAULT, svm_c=0.1),
    DEFAULT,
    dataclasses.replace(DEFAULT, svm_c=1.0),
    dataclasses.replace(DEFAULT, window_bars=16),
    dataclasses.replace(DEFAULT, word_ngrams=(1, 1), char_ngrams=(1, 4)),
    dataclasses.replace(DEFAULT, char_ngrams=(3, 6)),
)


def continuation(text: str, bars: int) -> str:
    """The ``bars`` bars after a song's first bar."""
    return "\n".join(bar_windows(text, 1 + bars)[0].split("\n")[1:]) if text.strip() else ""


def cross_validate(
    texts: Sequence[str], artists: Sequence[str], settings: ClassifierSettings, folds: int, seed: int
) -> dict[int, list[float]]:
    """Balanced accuracy per fold, for each cut in CUTS."""
    from sklearn.model_selection import KFold

    scores: dict[int, list[float]] = {cut: [] for cut in CUTS}
    for train, held_out in KFold(folds, shuffle=True, random_state=seed).split(texts):
        windows, labels = [], []
        for i in train:
            song = bar_windows(texts[i], settings.window_bars)
            windows += song
            labels += [artists[i]] * len(song)
        judge = ArtistClassifier.fit(windows, labels, seed=seed, settings=settings)
        held_out = [i for i in held_out if continuation(texts[i], 1)]
        for cut in CUTS:
            result = judge.accuracy([continuation(texts[i], cut) for i in held_out], [artists[i] for i in held_out])
            scores[cut].append(result.balanced_accuracy)
    return scores


def describe(settings: ClassifierSettings) -> str:
    changed = {field.name: getattr(settings, field.name) for field in dataclasses.fields(settings)
               if getattr(settings, field.name) != getattr(DEFAULT, field.name)}
    return ", ".join(f"{name} {value}" for name, value in changed.items()) or "defaults"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="prepared corpus directory (jaxrap prepare)")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds over the train songs (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="fold assignment and solver seed (default 0)")
    parser.add_argument("--settings", type=int, nargs="*", help="indices into GRID to run (default: all)")
    args = parser.parse_args(argv)

    from jaxrap.data.corpus import load_corpus

    train = load_corpus(args.data)["train"]
    texts, artists = list(train["text"]), list(train["artist"])
    grid = [GRID[i] for i in args.settings] if args.settings else GRID
    print(f"{'settings':<45}" + "".join(f"{f'{cut} bars':>16}" for cut in CUTS) + f"{'seconds':>10}")
    for settings in grid:
        started = time.perf_counter()
        scores = cross_validate(texts, artists, settings, args.folds, args.seed)
        cells = "".join(f"{f'{np.mean(scores[cut]):.3f} ±{np.std(scores[cut]) / 2:.3f}':>16}" for cut in CUTS)
        print(f"{describe(settings):<45}{cells}{time.perf_counter() - started:>10.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
