"""Artist fidelity: does a text read as its own artist, to a model conditioned on artists?

A cheap style attribution with the model itself as the judge. A text (a generated sample, or
a human continuation) written for artist a after a prompt is scored once per named artist b:
``LL_b`` = log p(text | end-of-song, <|artist:b|>, prompt), all K of them in one batched
forward. Per text:

- ``margin`` = (LL_a - mean over b != a of LL_b) / tokens: how many nats per token more
  likely the text is under its own artist than under the others (0: the artist token does
  not matter; > 0: the text carries its artist's style as the model knows it);
- ``rank`` of a among the K artists by LL (1 = attributed to its own artist); ``top1`` is
  the share of rank 1, against a chance level of 1 / K.

The ``unknown`` bucket is neither a label nor a candidate. Human continuations of the same
songs give the reference: how far the model separates real artists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypedDict

import numpy as np

from jaxrap.data.artists import UNKNOWN_ARTIST, SongPrompt
from jaxrap.evaluate.likelihood import ContinuationScorer


class ArtistScore(TypedDict):
    """The fidelity of one artist's texts (a dict: the JSON form is the value itself)."""

    texts: int
    margin: float  # nats per token, mean over the artist's texts
    top1: float  # share of them most likely under their own artist


@dataclasses.dataclass(frozen=True)
class ArtistFidelity:
    texts: int
    candidates: int  # K named artists each text was scored under
    margin: float  # nats per token, mean over texts
    top1: float  # share of texts most likely under their own artist
    mean_rank: float
    per_artist: dict[str, ArtistScore]

    @property
    def chance(self) -> float:
        return 1.0 / self.candidates if self.candidates else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "chance": self.chance}


def artist_fidelity(
    scorer: ContinuationScorer,
    song_prompt: SongPrompt,
    artists: Sequence[str | None],
    prompts: Sequence[Sequence[int]],
    texts: Sequence[Sequence[int]],
) -> ArtistFidelity | None:
    """Fidelity of ``texts`` (token ids) written as ``artists`` after ``prompts`` (token ids,
    without the song prefix). None when the model knows fewer than two named artists."""
    candidates = [name for name in song_prompt.artists if name != UNKNOWN_ARTIST]
    rows = [i for i, artist in enumerate(artists) if artist in candidates and texts[i]]
    if len(candidates) < 2 or not rows:
        return None
    contexts = [[*song_prompt.prefix(b), *prompts[i]] for i in rows for b in candidates]
    scores = scorer.score(contexts, [texts[i] for i in rows for _ in candidates])
    # (texts, K) total log-likelihoods and the token counts they are over
    totals = np.array([s.sum() for s in scores]).reshape(len(rows), len(candidates))
    lengths = np.array([len(s) for s in scores]).reshape(len(rows), len(candidates))[:, 0]
    own = np.array([candidates.index(str(artists[i])) for i in rows])
    own_ll = totals[np.arange(len(rows)), own]
    others = (totals.sum(axis=1) - own_ll) / (len(candidates) - 1)
    margins = (own_ll - others) / np.maximum(lengths, 1)
    ranks = 1 + (totals > own_ll[:, None]).sum(axis=1)
    per_artist: dict[str, ArtistScore] = {}
    for name in candidates:
        mine = own == candidates.index(name)
        if mine.any():
            per_artist[name] = ArtistScore(texts=int(mine.sum()), margin=float(margins[mine].mean()), top1=float((ranks[mine] == 1).mean()))
    return ArtistFidelity(
        texts=len(rows), candidates=len(candidates), margin=float(margins.mean()), top1=float((ranks == 1).mean()),
        mean_rank=float(ranks.mean()), per_artist=per_artist,
    )
