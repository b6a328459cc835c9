"""Invented French-rap-like songs for the corpus tests (never lines from a real corpus).

Songs are random draws from a made-up vocabulary: two different seeds share almost no
5-word sequence, so they are unrelated songs for deduplication.
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
