"""Invented French-rap-like songs for the corpus tests (never lines from a real corpus).

Songs are random draws from a made-up vocabulary: two different seeds share almost no
5-word sequence, so they are unrelated songs for deduplication. Three invented artists, each
with words of their own, are there for the artist classifier.
"""

from __future__ import annotations

import random

_WORDS = (
    "béton bitume asphalte quartier banlieue tour dalle hall escalier parking métro quai rame "
    "nuit lune aube soleil pluie brouillard orage hiver été ciel étoile néon lampadaire "
    "frère daron mama cousin voisin équipe bande potes gamin petit grand "
    "stylo plume encre page cahier rime couplet refrain micro studio tempo boucle "
    "rêve espoir galère sueur larme rage fierté honneur silence écho mémoire "
    "marcher courir tomber grimper rapper écrire gratter bosser rêver briller saigner "
    "vite lentement fort haut loin ensemble toujours jamais encore demain hier "
    "j'avance j'écris j'attends j'esquive j'rêve j'grandis on tient on roule on veille "
    "dans sur sous vers avec sans pour contre entre"
).split()


def invented_song(seed: int, bars: int = 12, words_per_bar: int = 7) -> str:
    """A song of ``bars`` lines in stanzas of four, deterministic in ``seed``."""
    rng = random.Random(seed)
    lines = []
    for k in range(bars):
        if k and k % 4 == 0:
            lines.append("")
        words = [rng.choice(_WORDS) for _ in range(words_per_bar)]
        lines.append(" ".join(words).capitalize())
    return "\n".join(lines)


_SHARED_WORDS = "le la les on dans avec pour sans toujours encore nuit jour rue ville temps".split()
# Each invented artist has its own words and spelling habits.
ARTIST_STYLES = {
    "Brume": "brouillard lanterne quai marée goéland phare écume bruine".split(),
    "Kilo": "wesh frérot tieks zbeul daronne bendo kichta gova".split(),
    "Ondine": "étoile comète galaxie orbite satellite nébuleuse lumière cosmos".split(),
}


def invented_artist_text(artist: str, seed: int, bars: int = 12) -> str:
    """``bars`` lines of 8 words, every other one ``artist``'s own; deterministic in ``seed``."""
    rng = random.Random(f"{artist}-{seed}")
    lines = []
    for _ in range(bars):
        words = [rng.choice(ARTIST_STYLES[artist]) if k % 2 else rng.choice(_SHARED_WORDS) for k in range(8)]
        lines.append(" ".join(words).capitalize())
    return "\n".join(lines)


def save_corpus(directory, train: list[tuple[str, str]]) -> str:
    """A prepared-corpus directory whose train split holds the (text, artist) songs ``train``;
    validation and test hold one other song."""
    import datasets

    def split(rows):
        return datasets.Dataset.from_dict({
            "text": [text for text, _ in rows], "artist": [artist for _, artist in rows],
            "title": [f"Titre {i}" for i in range(len(rows))], "year": [-1] * len(rows),
        })

    held_out = [(invented_artist_text("Brume", 999), "Brume")]
    datasets.DatasetDict({"train": split(train), "validation": split(held_out), "test": split(held_out)}).save_to_disk(str(directory))
    return str(directory)
