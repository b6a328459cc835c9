"""Aggregated lyric metrics on invented texts with known answers: a looping text, an AABB
quatrain, an ABAB quatrain, bars that do not rhyme."""

from __future__ import annotations

import pytest

from jaxrap.evaluate.lyric_metrics import lyric_stats, rhyming_pairs

AABB = """Le béton m'a appris la patience
J'écris la nuit pour garder ma conscience
Les lampadaires veillent sur ma rue
Et mes rêves dansent avec les nuages perdus"""

ABAB = """Je marche seul dans le froid
Sous les néons de la gare
Ma plume parle pour moi
Quand le ciel devient trop noir"""

NO_RHYME = """Le métro passe sous la ville
On attend le printemps
Ma mère prie pour nous
Demain sera un autre jour"""

LOOP = """On roule dans la nuit
J'm'arrache, j'm'arrache, j'm'arrache, j'm'arrache, j'm'arrache"""


def test_an_aabb_quatrain_rhymes_at_every_other_pair():
    # pairs (1,2) ɑ̃s and (3,4) y rhyme; (2,3) does not
    assert rhyming_pairs(AABB) == (2, 3)


def test_abab_and_non_rhyming_bars_score_zero_consecutive_rhymes():
    assert rhyming_pairs(ABAB) == (0, 3)  # documented limit: only neighbours count
    assert rhyming_pairs(NO_RHYME) == (0, 3)


def test_identical_bars_are_repetition_not_rhyme():
    text = "On roule toute la nuit\nOn roule toute la nuit\nLa lune me suit"
    assert rhyming_pairs(text) == (1, 1)  # nuit / suit; the repeated bar is skipped
    assert rhyming_pairs("\n\n[Refrain]\n") == (0, 0)


def test_stats_over_texts_pool_pairs_and_count_loops():
    stats = lyric_stats([AABB, NO_RHYME, LOOP])
    assert stats.texts == 3
    assert stats.loop_rate == pytest.approx(1 / 3)
    assert stats.rhyme_pairs == 7 and stats.rhyme_rate == pytest.approx(2 / 7)  # LOOP: nuit / arrache
    # rep-4 averages per text; only LOOP repeats 4-grams (words split at apostrophes: j m arrache)
    loop_words = "on roule dans la nuit".split() + "j m arrache".split() * 5
    grams = [tuple(loop_words[i : i + 4]) for i in range(len(loop_words) - 3)]
    assert stats.rep4 == pytest.approx((1 - len(set(grams)) / len(grams)) / 3)
    assert lyric_stats([AABB]).rep4 == 0.0 and lyric_stats([AABB]).loop_rate == 0.0


def test_distinct_n_falls_when_texts_repeat_each_other():
    varied = lyric_stats([AABB, ABAB])
    copied = lyric_stats([AABB, AABB])
    assert copied.distinct1 < varied.distinct1
    assert copied.distinct2 == pytest.approx(lyric_stats([AABB]).distinct2 / 2)  # every bigram twice
    assert lyric_stats([]).texts == 0
