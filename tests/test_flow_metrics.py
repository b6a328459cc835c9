"""Flow metrics on invented bars with known answers: scheme accuracy, syllables per bar, rhyme
density; and the scheme / rhyme-word validation behind --rhyme-scheme and --rhyme-with."""

from __future__ import annotations

import pytest

from jaxrap.errors import JaxrapError
from jaxrap.evaluate.flow_metrics import (
    FunctionEndings,
    RhymeDensity,
    SchemeScore,
    SyllableStats,
    function_word_endings,
    lyric_bars,
    rhyme_density,
    scheme_accuracy,
    syllable_stats,
)
from jaxrap.phonetics.scheme import parse_rhyme_scheme, rhyme_target_key

# Endings: -ure (A), -ɔ̃ (B), -i (C), -ɛʁ (D).
AABB = [
    "J'écris sur le mur",  # yʁ
    "La vie est dure",  # yʁ
    "On tourne en rond",  # ɔ̃
    "Sous le plafond",  # ɔ̃
    "Je rentre la nuit",  # i
    "Personne ne suit",  # i
    "Je vois la mer",  # ɛʁ
    "Au bout de l'hiver",  # ɛʁ
]


def test_aabb_bars_score_full_marks_on_aabb_and_none_on_abab():
    assert scheme_accuracy(AABB, "AABB") == SchemeScore(hits=4, pairs=4)
    assert scheme_accuracy(AABB, "ABAB") == SchemeScore(hits=0, pairs=4)
    assert scheme_accuracy(AABB, "ABBA").accuracy == 0.0
    # AAAA: one group per 4 bars, 6 pairs each; only 1,2 / 3,4 / 5,6 / 7,8 rhyme
    assert scheme_accuracy(AABB, "AAAA") == SchemeScore(hits=4, pairs=12)


def test_repetitions_bring_new_rhymes():
    """With AABB, bars 5-6 need not rhyme with bars 1-2: the pair (1, 5) is not asked for."""
    same_sound = ["Je marche seul", "Dans mon linceul", "Il fait nuit", "Tout s'enfuit"] * 2
    assert parse_rhyme_scheme("AABB").groups(8) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert scheme_accuracy(same_sound, "AABB") == SchemeScore(4, 4)


def test_free_bars_and_prompt_bars():
    assert parse_rhyme_scheme("AxAx").groups(4) == [0, None, 0, None]
    assert scheme_accuracy(["la mer", "rien", "l'hiver", "demain"], "AxAx") == SchemeScore(1, 1)
    # first=2: bars 0-1 are the prompt; the pair (0, 1) is theirs, so only (2, 3) is scored
    assert scheme_accuracy(AABB[:4], "AABB", first=2) == SchemeScore(1, 1)
    assert scheme_accuracy(AABB[:4], "AABB", first=3) == SchemeScore(1, 1)  # (2, 3) ends at bar 3
    assert scheme_accuracy(AABB[:4], "AABB", first=4) == SchemeScore(0, 0)


def test_a_word_does_not_rhyme_with_itself():
    bars = ["Je pense à la mer", "Je rêve de la mer", "Le bleu de la mer", "Au bord de la terre"]
    assert scheme_accuracy(bars, "AAAA") == SchemeScore(hits=3, pairs=6)  # only pairs with "terre"
    assert scheme_accuracy(["La mer", "LA MER !"], "AA") == SchemeScore(0, 1)


def test_bars_without_a_key_miss_and_scores_pool():
    assert scheme_accuracy(["la mer", "🔥🔥"], "AA") == SchemeScore(0, 1)
    total = scheme_accuracy(AABB, "AABB") + scheme_accuracy(AABB, "ABAB")
    assert total == SchemeScore(4, 8) and total.accuracy == 0.5
    assert SchemeScore(0, 0).accuracy == 0.0


def test_syllables_per_bar_against_a_target():
    bars = ["Je rentre la nuit", "Personne ne suit", "Le petit samedi soir je sors", "Au bout de l'hiver"]  # 4, 4, 9, 5
    stats = syllable_stats(bars, target=6)
    assert stats == SyllableStats(bars=4, syllables=22, within1=1, within2=3)
    assert stats.mean == 5.5 and stats.share_within1 == 0.25 and stats.share_within2 == 0.75
    assert syllable_stats(bars) == SyllableStats(4, 22, 0, 0)
    # the tolerance a request gives: |4-6|, |4-6|, |9-6|, |5-6| = 2, 2, 3, 1
    assert syllable_stats(bars, target=6, tolerance=3).within_tolerance == 4
    assert syllable_stats(bars, target=6, tolerance=0).share_within_tolerance == 0.0
    assert syllable_stats(bars, target=5, tolerance=0).share_within_tolerance == 0.25
    assert (stats + stats).bars == 8 and SyllableStats(0, 0, 0, 0).mean == 0.0


def test_rhyme_density_counts_the_longest_matching_vowel_run():
    # ma-ca-dam / la ca-lame: vowels (a, a, a) against (a, a, a, a)... all a: runs of 3
    assert rhyme_density(["macadam", "la calame"]) == RhymeDensity(total=3, bars=1)
    # "le temps passe" (ə, ɑ̃, a) / "les gens passent" (e, ɑ̃, a): ɑ̃ a = 2
    assert rhyme_density(["le temps passe", "les gens passent"]) == RhymeDensity(2, 1)
    # no shared end vowel
    assert rhyme_density(["la nuit", "le jour"]) == RhymeDensity(0, 1)


def test_rhyme_density_window_and_same_word_rule():
    bars = ["ma vie", "le jour", "la cour", "le four", "l'envie"]
    # "le four" matches "le jour" (ə u, 2); "l'envie" (ɑ̃ i) finds "ma vie" (a i, 1) 4 bars back
    assert rhyme_density(bars, window=4).total == 0 + 1 + 2 + 1
    assert rhyme_density(bars, window=3).total == 0 + 1 + 2 + 0
    assert rhyme_density(["je te dis", "je te dis"]) == RhymeDensity(0, 1)  # same word: no rhyme
    assert rhyme_density([]) == RhymeDensity(0, 0) and RhymeDensity(0, 0).density == 0.0
    assert (rhyme_density(bars) + rhyme_density(bars)).density == pytest.approx(4 / 4)


def test_lyric_bars_drops_blank_lines_and_markers():
    assert lyric_bars("[Couplet 1]\nla mer\n\n  \nl'hiver\n[Refrain]") == ["la mer", "l'hiver"]


@pytest.mark.parametrize(
    "scheme,message",
    [
        ("", "rhyme scheme is empty"),
        ("aabb", "'a' (position 1) is not a scheme letter; use A-Z for rhyme groups and x for a free bar"),
        ("AAB3", "'3' (position 4) is not a scheme letter"),
        ("AB-B", "'-' (position 3)"),
    ],
)
def test_bad_schemes_are_refused_with_the_letter_and_the_rule(scheme, message):
    with pytest.raises(JaxrapError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_rhyme_scheme(scheme)
    with pytest.raises(JaxrapError):
        scheme_accuracy(["la mer"], scheme)


def test_scheme_letters():
    scheme = parse_rhyme_scheme(" ABBA ")
    assert scheme.pattern == "ABBA" and [scheme.letter(i) for i in range(5)] == ["A", "B", "B", "A", "A"]
    assert parse_rhyme_scheme("XX").groups(2) == [0, 0]  # upper-case X is a letter; x is free


@pytest.mark.parametrize("word", ["psst", "", "!!", "j'", "PSG", "hmm"])
def test_rhyme_words_without_a_vowel_are_refused(word):
    with pytest.raises(JaxrapError, match="has no vowel"):
        rhyme_target_key(word)


def test_rhyme_words_give_their_key():
    assert rhyme_target_key("nuit") == rhyme_target_key("la pluie") == "i"
    assert rhyme_target_key("1000") == "il"


def test_on_n_vowels_a_pair_meets_the_scheme_only_when_all_n_match():
    bars = ["Toute ma vie", "Je donne mon avis", "Je rentre la nuit", "Tu fais du bruit"]  # a-i, a-i, a-i, y-i
    assert scheme_accuracy(bars, "AABB") == SchemeScore(hits=2, pairs=2)
    assert scheme_accuracy(bars, "AABB", vowels=2) == SchemeScore(hits=1, pairs=2)
    assert scheme_accuracy(bars, "AAAA", vowels=2) == SchemeScore(hits=3, pairs=6)
    assert scheme_accuracy(bars, "AABB", vowels=3) == SchemeScore(hits=0, pairs=2)  # i-a-i / ɔ̃-a-i


def test_a_bar_ending_on_a_function_word_rhymes_with_nothing():
    bars = ["J'parle de", "Tu sais que", "Mes rêves et", "Mes regrets"]  # ø, ø, e, e: sounds that match
    assert scheme_accuracy(bars, "AABB") == SchemeScore(hits=0, pairs=2)
    assert scheme_accuracy(["Allez, dis-le", "C'est le jeu"], "AA") == SchemeScore(hits=1, pairs=1)  # stressed
    assert function_word_endings(bars) == FunctionEndings(bars=4, function_word=3)
    assert (function_word_endings(bars) + function_word_endings(AABB)).share == 3 / 12
