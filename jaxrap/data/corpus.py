"""The prepared corpus: what `jaxrap prepare` writes and every later stage reads.

A ``datasets.DatasetDict`` saved with ``save_to_disk``: splits ``train``, ``validation`` and
``test``, columns ``text`` (one bar per line), ``artist``, ``title``, ``year`` (-1 if unknown),
with ``stats.json`` beside it.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from jaxrap.errors import JaxrapError

SPLITS = ("train", "validation", "test")
COLUMNS = ("text", "artist", "title", "year")
STATS_FILE = "stats.json"
_LETTERS = re.compile(r"[^\W\d_]+")


def is_corpus(path: str | Path) -> bool:
    return (Path(path) / "dataset_dict.json").is_file()


def load_corpus(path: str | Path):
    """The prepared DatasetDict at ``path``, checked for the splits and columns jaxrap needs."""
    import datasets

    path = Path(path)
    if not is_corpus(path):
        raise JaxrapError(
            f"{path}: not a prepared corpus; make one with"
            f" `jaxrap prepare --source lyrics.csv --out {path}`"
        )
    corpus = datasets.load_from_disk(str(path))
    for split in SPLITS:
        if split not in corpus:
            raise JaxrapError(f"{path}: prepared corpus has no {split!r} split; prepare it again")
        missing = [c for c in COLUMNS if c not in corpus[split].column_names]
        if missing:
            raise JaxrapError(
                f"{path}: split {split!r} lacks column(s) {', '.join(missing)}; prepare it again"
            )
    return corpus


def corpus_word_counts(path: str | Path, split: str = "train") -> Counter[str]:
    """How often each word is used in a split of the prepared corpus at ``path``: lowercase runs
    of letters (apostrophes, hyphens and digits split words). The rhyme finder's source of the
    words Lexique lacks (``jaxrap.phonetics.rhyme_finder.CorpusWords``)."""
    counts: Counter[str] = Counter()
    for text in load_corpus(path)[split]["text"]:
        counts.update(word.lower() for word in _LETTERS.findall(text))
    return counts
