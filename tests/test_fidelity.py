"""Continuation log-likelihoods against transformers, and the artist-fidelity score's arithmetic
on a judge with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from jaxrap.data.artists import UNKNOWN_ARTIST, SongPrompt
from jaxrap.evaluate.fidelity import artist_fidelity
from jaxrap.evaluate.likelihood import ContinuationScorer
from jaxrap.load import load_model


def test_scores_equal_transformers_log_probs(tiny_lyrics_model_dir):
    scorer = ContinuationScorer(load_model(tiny_lyrics_model_dir))
    reference = transformers.GPT2LMHeadModel.from_pretrained(tiny_lyrics_model_dir).eval()
    rng = np.random.default_rng(0)
    contexts = [rng.integers(2, 250, n).tolist() for n in (1, 5, 30)]
    continuations = [rng.integers(2, 250, n).tolist() for n in (7, 0, 12)]
    scores = scorer.score(contexts, continuations)
    for context, continuation, score in zip(contexts, continuations, scores):
        assert score.shape == (len(continuation),)
        ids = torch.tensor([context + continuation])
        with torch.no_grad():
            log_probs = torch.log_softmax(reference(ids).logits[0], -1).numpy()  # (T, V)
        expected = [log_probs[len(context) + k - 1, token] for k, token in enumerate(continuation)]
        np.testing.assert_allclose(score, expected, atol=1e-4)


def test_a_pair_longer_than_the_context_keeps_the_context(tiny_lyrics_model_dir):
    scorer = ContinuationScorer(load_model(tiny_lyrics_model_dir))  # 128 positions
    (score,) = scorer.score([[5] * 100], [[6] * 50])
    assert score.shape == (28,)


class ArtistJudge:
    """A stand-in scorer: every continuation token has log-probability ``table[artist]``, the
    artist read from the context's second token (the song prefix is [eos, artist])."""

    def __init__(self, table: dict[int, float]):
        self.table = table

    def score(self, contexts, continuations):
        return [np.full(len(c), self.table[context[1]]) for context, c in zip(contexts, continuations)]


SONG_PROMPT = SongPrompt(0, {UNKNOWN_ARTIST: 2, "MC A": 3, "MC B": 4, "MC C": 5})


def test_margin_and_rank_from_known_likelihoods():
    judge = ArtistJudge({3: -1.0, 4: -2.0, 5: -4.0})  # every text reads most like MC A, then B, then C
    fidelity = artist_fidelity(judge, SONG_PROMPT, ["MC A", "MC B", "MC C", UNKNOWN_ARTIST],
                               [[7], [7], [7], [7]], [[9, 9], [9, 9, 9, 9], [9], [9]])
    assert (fidelity.texts, fidelity.candidates) == (3, 3)  # the unknown bucket is no label
    assert fidelity.chance == pytest.approx(1 / 3)
    # per token: A: -1 - mean(-2, -4) = 2; B: -2 - mean(-1, -4) = 0.5; C: -4 - mean(-1, -2) = -2.5
    assert fidelity.per_artist["MC A"] == {"texts": 1, "margin": pytest.approx(2.0), "top1": 1.0}
    assert fidelity.per_artist["MC B"]["margin"] == pytest.approx(0.5)
    assert fidelity.margin == pytest.approx((2.0 + 0.5 - 2.5) / 3)
    assert fidelity.top1 == pytest.approx(1 / 3) and fidelity.mean_rank == pytest.approx(2.0)


def test_no_fidelity_without_two_named_artists():
    judge = ArtistJudge({2: -1.0, 3: -1.0})
    assert artist_fidelity(judge, SongPrompt(0, {UNKNOWN_ARTIST: 2, "MC A": 3}), ["MC A"], [[7]], [[9]]) is None
    assert artist_fidelity(ArtistJudge({}), SONG_PROMPT, [UNKNOWN_ARTIST], [[7]], [[9]]) is None


def test_real_scores_of_a_conditioned_model(conditioned_model_dir):
    loaded = load_model(conditioned_model_dir)
    fidelity = artist_fidelity(ContinuationScorer(loaded), loaded.song_prompt, ["Médine", "Shurik'n"],
                               [[40, 41], [42]], [[50, 51, 52], [53, 54]])
    assert (fidelity.texts, fidelity.candidates) == (2, 2)
    assert fidelity.mean_rank in (1.0, 1.5, 2.0) and fidelity.margin != 0.0  # the artist token matters
