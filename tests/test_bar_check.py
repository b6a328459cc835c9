"""Bar targets on the host: what a bar must be (prompt bars, rhyme word, groups renewed each
repetition), whether a line is it (word-level syllables and rhyme keys, the same word is a
miss), and which candidate is closest when none is."""

from __future__ import annotations

import numpy as np
import pytest

from jaxrap.phonetics.rhyme import rhyme_key
from jaxrap.sample.bar_check import BarTarget, SongTargets, check_bar, closest


def target(letter="A", key=None, used=(), low=1, high=None) -> BarTarget:
    return BarTarget(index=1, letter=letter, rhyme_key=key, used_words=frozenset(used), low=low, high=high)


def test_a_bar_in_range_on_its_rhyme_meets_its_target():
    check = check_bar("J'rentre seul à la maison sous la pluie", target(key="i", low=8, high=12), complete=True)
    assert check.met and check.syllables == 9 and check.rhyme_key == "i" and check.word == "pluie"
    assert check.failures == () and check.syllables_off == 0


@pytest.mark.parametrize(
    "line, bar_target, complete, reason",
    [
        ("Sous la pluie", target(low=8, high=12), True, "3 syllables, not 8-12"),
        ("Pluie", target(low=8, high=12), True, "1 syllable, not 8-12"),
        ("J'rentre seul à la maison sous la mer", target(key="i"), True, "ends on 'ɛʁ' (mer), not 'i'"),
        ("J'rentre seul à la maison dans la nuit", target(key="i", used={"nuit"}), True, "does not rhyme with itself"),
        ("🔥 🔥", target(), True, "no word said"),
        ("J'rentre seul à la maison", target(), False, "not ended within its tokens"),
        ("Ça fait pff", target(), True, "cannot rhyme"),
    ],
)
def test_each_miss_says_why(line, bar_target, complete, reason):
    check = check_bar(line, bar_target, complete=complete)
    assert not check.met and any(reason in failure for failure in check.failures), check.failures


def test_a_free_bar_has_no_rhyme_to_meet_and_the_first_of_a_group_any():
    assert check_bar("Ça fait pff", target(letter=None), complete=True).met
    assert check_bar("J'rentre seul à la maison sous la mer", target(key=None), complete=True).met


def test_closest_prefers_a_complete_bar_then_fewer_misses_then_the_rhyme_then_the_length():
    t = target(key="i", low=8, high=12)
    checks = [
        check_bar("J'rentre seul à la maison sous la pluie", t, complete=False),  # incomplete
        check_bar("Sous la mer", t, complete=True),  # 2 misses
        check_bar("J'rentre seul à la maison sous la mer", t, complete=True),  # rhyme missed
        check_bar("Elle rentre seule avec lui", t, complete=True),  # 6 syllables: 2 off
        check_bar("Sous la pluie", t, complete=True),  # 3 syllables: 5 off
    ]
    assert [len(c.failures) for c in checks] == [1, 2, 1, 1, 1]
    assert closest(checks, np.random.default_rng(0)) == 3


def test_closest_draws_ties_uniformly():
    t = target(key="i")
    checks = [check_bar(line, t, complete=True) for line in ("la mer", "la terre", "le fer")]
    picks = np.bincount([closest(checks, np.random.default_rng(seed)) for seed in range(600)], minlength=3)
    assert picks.min() > 150


def test_a_prompt_ending_on_a_bar_sets_its_letters_target():
    song = SongTargets(
        "[Intro]\nJ'traîne au quartier\n\n", rhyme_scheme="AABB", rhyme_with=None, syllables=12, tolerance=2
    )
    assert song.first_generated == 1  # markers and blank lines are not bars
    first = song.target(1)
    assert (first.letter, first.rhyme_key, first.used_words) == ("A", rhyme_key("quartier"), {"quartier"})
    assert (first.low, first.high) == (10, 14)
    assert song.target(2).rhyme_key is None  # B: its first bar sets it
    assert song.target(4).letter == "A" and song.target(4).rhyme_key is None  # a new repetition, a new sound


def test_an_unfinished_prompt_line_is_the_first_generated_bar():
    song = SongTargets("Première ligne\nJ'traîne au", rhyme_scheme="ABAB", rhyme_with=None, syllables=None, tolerance=2)
    assert song.first_generated == 1 and song.target(1).letter == "B" and song.target(1).rhyme_key is None
    assert (song.target(1).low, song.target(1).high) == (1, None)
    assert song.target(2).rhyme_key == rhyme_key("Première ligne")


def test_rhyme_with_sets_the_first_generated_group_over_the_prompt():
    song = SongTargets("J'traîne au quartier\n", rhyme_scheme="xAxA", rhyme_with="la nuit", syllables=None, tolerance=0)
    assert song.target(1).rhyme_key == "i" and song.target(1).used_words == {"nuit"}
    assert song.target(3).rhyme_key == "i"
    assert song.target(2).letter is None


def test_recording_bars_fills_targets_once_and_remembers_words():
    song = SongTargets("", rhyme_scheme="AAAA", rhyme_with=None, syllables=None, tolerance=2)
    for index, line in enumerate(["dans la nuit", "sous la pluie"]):
        song.record(check_bar(line, song.target(index), complete=True), index)
    assert song.target(2).rhyme_key == "i" and song.target(2).used_words == {"nuit", "pluie"}
    assert not check_bar("toute la nuit", song.target(2), complete=True).met


def test_a_groups_first_bar_ends_on_a_sound_common_enough_to_rhyme_on():
    song = SongTargets(
        "", rhyme_scheme="AABB", rhyme_with=None, syllables=None, tolerance=2, opening_sounds=frozenset({"i", "e"})
    )
    opener = song.target(0)
    assert check_bar("dans la nuit", opener, complete=True).met
    rare = check_bar("elle attrape sa cape", opener, complete=True)
    assert rare.failures == ("ends on 'ap' (cape), too rare a sound for its group to rhyme on",)
    song.record(check_bar("dans la nuit", opener, complete=True), 0)
    assert check_bar("sous la pluie", song.target(1), complete=True).met  # the group's sound, not an opener


def test_bars_below_the_generated_one_set_the_sound_of_groups_above_do_not():
    """The writing room regenerating bar 2 of a verse: its B group's sound comes from bar 3
    below it, whose word it must not end on; the A group keeps its first bar's sound."""
    song = SongTargets("J'traîne au quartier\nJ'ai grandi sans papiers\n", rhyme_scheme="AABB", rhyme_with=None,
                       syllables=None, tolerance=2, later_bars=["Sous la pluie", "dans la nuit"])
    assert (song.target(2).letter, song.target(2).rhyme_key, song.target(2).used_words) == ("B", "i", {"pluie"})
    assert song.target(1).rhyme_key == rhyme_key("quartier")
    assert not check_bar("il pleut sous la pluie", song.target(2), complete=True).met


def test_with_n_rhyme_vowels_a_bar_meets_its_group_on_all_n():
    two = BarTarget(index=1, letter="A", rhyme_key="a-i", used_words=frozenset(), low=1, high=None, rhyme_vowels=2)
    assert check_bar("j'ai donné mon avis", two, complete=True).met
    assert check_bar("toute ma vie", two, complete=True).rhyme_key == "a-i"
    assert check_bar("je fuis la nuit", two, complete=True).met  # a-i across the word boundary
    miss = check_bar("tu fais du bruit", two, complete=True)
    assert miss.failures == ("ends on 'y-i' (bruit), not 'a-i'",) and miss.rhyme_missed
    short = check_bar("nuit", two, complete=True)
    assert short.failures == ("ends on 'nuit' with fewer than 2 vowels said",) and short.rhyme_key is None
    song = SongTargets("Toute ma vie\n", rhyme_scheme="AABB", rhyme_with=None, syllables=None, tolerance=2, rhyme_vowels=2)
    assert song.target(1).rhyme_key == "a-i" and song.target(1).rhyme_vowels == 2
    song = SongTargets("", rhyme_scheme="AAAA", rhyme_with="la nuit", syllables=None, tolerance=2, rhyme_vowels=2)
    assert song.target(0).rhyme_key == "a-i" and song.target(0).used_words == {"nuit"}


def test_a_bar_ending_on_a_function_word_carries_no_rhyme_and_sets_none():
    check = check_bar("j'sais pas c'que t'attends de", target(key="ø"), complete=True)
    assert check.failures == ("ends on 'de', a function word, which carries no rhyme",) and check.function_word
    assert check_bar("j'sais pas c'que t'attends de", target(letter=None), complete=True).met  # a free bar has no rhyme
    assert check_bar("allez, dis-le", target(key="ø"), complete=True).met  # stressed after a hyphen
    song = SongTargets("Ma vie et\n", rhyme_scheme="AABB", rhyme_with=None, syllables=None, tolerance=2)
    assert song.target(1).rhyme_key is None  # the prompt's bar ends on "et": the group's sound is still open
    song.record(check_bar("toute ma vie et", song.target(1), complete=True), 1)
    assert song.target(1).rhyme_key is None
