"""A column's flow (jaxrap eval, the sweep) on invented bars with known answers: which bars each
metric reads (the prompt's for the scheme only), pooling per artist, the JSON form, bad targets."""

from __future__ import annotations

import pytest

from jaxrap.errors import FieldError
from jaxrap.evaluate.flow_metrics import RhymeDensity, SchemeScore, SyllableStats
from jaxrap.evaluate.flow_report import FlowTargets, flow_stats, text_flow
from jaxrap.evaluate.samples import EvalPrompt
from jaxrap.sample.params import SamplingParams

PROMPT = "J'écris sur le mur\n"  # 5 syllables, ends on yʁ
# 4 syllables each; endings yʁ, ɔ̃, ɔ̃, i
TEXT = "La vie est dure\nOn tourne en rond\n\nSous le plafond\n[Refrain]\nJe rentre la nuit\n"


def test_the_prompts_bars_count_for_the_scheme_only():
    # bars: mur (prompt), dure, rond, plafond, nuit. AABB: (mur, dure) and (rond, plafond) rhyme;
    # nuit starts a group of its own. ABAB asks (mur, rond) and (dure, plafond): neither rhymes.
    flow = text_flow(PROMPT, TEXT, FlowTargets(rhyme_scheme="AABB", syllables=5, syllable_tolerance=0))
    assert flow.scheme == SchemeScore(hits=2, pairs=2)
    assert text_flow(PROMPT, TEXT, FlowTargets(rhyme_scheme="ABAB")).scheme == SchemeScore(hits=0, pairs=2)
    # syllables: the 4 text bars (4 each), not the prompt's 5; all within ±1 of 5, none exactly 5
    assert flow.syllables == SyllableStats(bars=4, syllables=16, within1=4, within2=4, within_tolerance=0)
    assert text_flow(PROMPT, TEXT, FlowTargets(syllables=4, syllable_tolerance=0)).syllables.within_tolerance == 4
    # density: text bars only. plafond / rond share their last vowel (1), dure / rond / nuit nothing;
    # with the prompt, dure / mur would add 1
    assert flow.density == RhymeDensity(total=1, bars=3)


def test_only_lines_a_newline_ends_are_bars():
    """A text cut at its token budget ends mid-bar: its last line is no bar."""
    cut = TEXT + "Personne ne"
    assert text_flow(PROMPT, cut, FlowTargets("AABB", 4)) == text_flow(PROMPT, TEXT, FlowTargets("AABB", 4))
    assert text_flow(PROMPT, "La vie est", FlowTargets("AA")) == text_flow(PROMPT, "", FlowTargets("AA"))
    assert text_flow(PROMPT, "", FlowTargets("AA")).syllables.bars == 0
    # a prompt's unfinished line begins the text's first bar: "Je rentre" + " la nuit"
    flow = text_flow("J'écris sur le mur\nJe rentre", " la nuit\nPersonne ne suit\n", FlowTargets("ABAB", 4, 0))
    assert flow.syllables == SyllableStats(2, 8, 2, 2, 2) and flow.scheme == SchemeScore(0, 1)  # (mur, suit)


def test_pairs_among_prompt_bars_are_not_scored_and_a_word_does_not_rhyme_with_itself():
    two_bar_prompt = "Je rentre la nuit\nJe vois la mer\n"
    assert text_flow(two_bar_prompt, "Personne ne suit\n", FlowTargets(rhyme_scheme="AAAA")).scheme == SchemeScore(1, 2)
    assert text_flow("Je pense à la mer\n", "Je rêve de la mer\n", FlowTargets(rhyme_scheme="AA")).scheme == SchemeScore(0, 1)
    assert text_flow(PROMPT, TEXT, FlowTargets()).scheme == SchemeScore(0, 0)  # no scheme asked


def test_flow_pools_per_artist_and_overall():
    prompts = [EvalPrompt("Kilo", "Kilo", PROMPT, ""), EvalPrompt("Brume", None, "Je vois la mer\n", "")]
    other = "Au bout de l'hiver\nLe petit samedi soir je sors\n"
    texts = [[TEXT, other], [other]]
    targets = FlowTargets(rhyme_scheme="AABB", syllables=5)
    stats = flow_stats(prompts, texts, targets)
    assert list(stats.per_artist) == ["Brume", "Kilo"]
    assert stats.per_artist["Kilo"] == text_flow(PROMPT, TEXT, targets) + text_flow(PROMPT, other, targets)
    assert stats.per_artist["Brume"].scheme == SchemeScore(1, 1)  # mer / hiver
    assert stats.overall == stats.per_artist["Kilo"] + stats.per_artist["Brume"]
    assert stats.overall.syllables.bars == 4 + 2 + 2


def test_json_form_has_shares_only_for_the_targets_asked():
    stats = flow_stats([EvalPrompt("Kilo", None, PROMPT, "")], [[TEXT]], FlowTargets())
    record = stats.as_dict()
    assert record["scheme_accuracy"] is None and record["scheme_pairs"] is None
    assert record["syllables_within1"] is None and record["syllables_within_tolerance"] is None
    assert record["bars"] == 4 and record["syllables_per_bar"] == 4.0
    assert record["rhyme_density"] == pytest.approx(1 / 3) and record["density_bars"] == 3
    assert record["function_word_endings"] == 0.0
    assert set(record["per_artist"]["Kilo"]) == set(record) - {"per_artist"}

    targeted = flow_stats([EvalPrompt("Kilo", None, PROMPT, "")], [[TEXT]], FlowTargets("AABB", 5, 0)).as_dict()
    assert targeted["scheme_accuracy"] == 1.0 and targeted["scheme_pairs"] == 2
    assert targeted["syllables_within1"] == 1.0 and targeted["syllables_within_tolerance"] == 0.0


def test_targets_are_validated_like_the_sampling_flags():
    assert FlowTargets(rhyme_scheme=" ABBA ").rhyme_scheme == "ABBA"
    cases = [
        ({"rhyme_scheme": "aabb"}, "rhyme_scheme", r"'a' \(position 1\) is not a scheme letter; use A-Z"),
        ({"rhyme_scheme": "AAB3"}, "rhyme_scheme", r"'3' \(position 4\)"),
        ({"rhyme_scheme": ""}, "rhyme_scheme", "rhyme scheme is empty"),
        ({"syllables": 0}, "syllables", "syllables must be an integer >= 1 .*got 0"),
        ({"syllables": -4}, "syllables", "got -4"),
        ({"syllables": 2.5}, "syllables", "got 2.5"),
        ({"syllable_tolerance": -1}, "syllable_tolerance", "syllable_tolerance must be an integer >= 0, got -1"),
        ({"rhyme_vowels": 0}, "rhyme_vowels", r"rhyme_vowels must be in \[1, 4\], got 0"),
        ({"rhyme_vowels": 5}, "rhyme_vowels", "got 5"),
    ]
    for values, field, message in cases:
        with pytest.raises(FieldError, match=message) as error:
            FlowTargets(**values)
        assert error.value.field == field and "\n" not in str(error.value)


def test_bars_ending_on_a_function_word_are_counted_and_rhyme_on_n_vowels_scored():
    text = "Toute ma vie\nJe donne mon avis\nJ'parle de\nTu sais que\n"
    flow = text_flow("", text, FlowTargets("AABB", rhyme_vowels=2))
    assert flow.endings.share == 0.5 and flow.scheme == SchemeScore(hits=1, pairs=2)
    assert FlowTargets.from_params(SamplingParams(rhyme_scheme="AABB", rhyme_vowels=3)).rhyme_vowels == 3
