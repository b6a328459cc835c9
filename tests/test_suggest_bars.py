"""Generator.suggest_bars, the writing room's API, on a tiny random model: the candidates are the
bar decoder's draws for the bar (met first, each text once), continue the verse above the bar,
rhyme with the bar's group (members below included), follow the seed, and bad input is refused
with one line."""

from __future__ import annotations

import threading

import pytest

from jaxrap.errors import FieldError, JaxrapError
from jaxrap.phonetics.rhyme import rhyme_key
from jaxrap.sample import bar_decode
from jaxrap.sample.bar_check import BarCheck
from jaxrap.sample.generator import Generator
from jaxrap.sample.params import SamplingParams

VERSE = ["J'traîne au quartier", "On rêvait d'Paris", "La pluie tombe, j'écris", "Demain j'sais pas où"]
K = 3
PARAMS = SamplingParams(seed=0, rhyme_scheme="AABB", syllables=4, syllable_tolerance=1)


@pytest.fixture(scope="module")
def generator(tiny_lyrics_model_dir):
    return Generator.load(tiny_lyrics_model_dir)


def test_the_next_bar_rhymes_with_its_group_above_and_the_seed_repeats(generator):
    bars = generator.suggest_bars(VERSE[:1], PARAMS, K)
    assert 1 <= len(bars) <= K and len({bar.text for bar in bars}) == len(bars)
    assert [bar.met for bar in bars] == sorted((bar.met for bar in bars), reverse=True)  # met ones first
    assert {(bar.index, bar.letter, bar.target_key, bar.syllable_range) for bar in bars} == {
        (1, "A", rhyme_key(VERSE[0]), (3, 5))
    }
    for bar in bars:
        assert bar.met == (bar.rhyme_key == rhyme_key(VERSE[0]) and 3 <= bar.syllables <= 5 and bar.reason is None)
    assert generator.suggest_bars(VERSE[:1], PARAMS, K, index=1) == bars  # index len(bars): the next bar
    assert generator.suggest_bars(VERSE[:1], PARAMS.replace(seed=1), K) != bars


def test_the_candidates_are_the_bar_decoders_draws(generator):
    """The bar the stream keeps, for the same seed, prompt and candidates, is one of the
    suggestions, met if it is (the draws depend on seed, bar, attempt, step and row only)."""
    params = PARAMS.replace(max_bars=1, redraws=0, candidates=K, syllables=None)  # a random model's bars are long
    met = 0
    for seed in range(4):
        (delta,) = generator.stream("".join(bar + "\n" for bar in VERSE[:2]), params.replace(seed=seed))
        suggested = generator.suggest_bars(VERSE[:2], params.replace(seed=seed), K)
        assert (delta.bar.text, delta.bar.met) in [(bar.text, bar.met) for bar in suggested]
        met += delta.bar.met
    assert met


def test_a_bar_regenerated_in_place_continues_the_bars_above_and_rhymes_with_those_below(generator):
    # Bar 2 opens its B group: its sound is the one of bar 3, below it.
    (first, *_) = bars = generator.suggest_bars(VERSE, PARAMS, K, index=2)
    assert (first.index, first.letter, first.target_key) == (2, "B", rhyme_key(VERSE[3]))
    assert all(bar.target_key == rhyme_key(VERSE[3]) for bar in bars)
    # Without a scheme the bars below change nothing: the candidates continue bars[:index] alone,
    # and the regenerated bar's own text is not read.
    lengths = PARAMS.replace(rhyme_scheme=None)
    assert generator.suggest_bars(VERSE, lengths, K, index=2) == generator.suggest_bars(VERSE[:2], lengths, K)
    assert generator.suggest_bars([*VERSE[:2], "", VERSE[3]], lengths, K, index=2) == generator.suggest_bars(VERSE[:2], lengths, K)


def test_the_misses_follow_the_met_ones_nearest_first_each_text_once(generator, monkeypatch):
    """Scripted checks: the first attempt has no met candidate, so the bar is drawn again; the
    second meets with its last candidate. The met one comes first, then the misses by closeness,
    and a text drawn twice is shown once."""
    calls: list[str] = []

    def scripted(line, target, *, complete):
        calls.append(line)
        met = len(calls) == 2 * K
        off = {1: 0, 2: 2, 3: 1, 4: 3, 5: 4}.get(len(calls), 0)
        return BarCheck("same text" if len(calls) in (4, 5) else f"{line} #{len(calls)}", 4, None, None, True,
                        () if met else (f"miss {len(calls)}",), off, False)

    monkeypatch.setattr(bar_decode, "check_bar", scripted)
    bars = generator.suggest_bars(VERSE[:1], PARAMS.replace(redraws=2), K)
    assert len(calls) == 2 * K  # no third attempt once one met
    assert [bar.met for bar in bars] == [True, False, False]
    assert [bar.reason for bar in bars] == [None, "miss 1", "miss 3"]
    assert {(bar.candidates, bar.redraws) for bar in bars} == {(2 * K, 1)}
    monkeypatch.setattr(bar_decode, "check_bar", lambda line, target, *, complete: BarCheck(
        "same text", 4, None, None, True, ("miss",), 1, False))
    assert [bar.text for bar in generator.suggest_bars(VERSE[:1], PARAMS.replace(redraws=0), K)] == ["same text"]


def test_artist_and_guidance_apply(conditioned_model_dir):
    generator = Generator.load(conditioned_model_dir)
    guided = PARAMS.replace(artist="Médine", artist_guidance=2.5)
    bars = generator.suggest_bars(VERSE[:1], guided, K)
    assert bars and bars == generator.suggest_bars(VERSE[:1], guided, K)
    assert bars != generator.suggest_bars(VERSE[:1], PARAMS.replace(artist="Médine"), K)
    with pytest.raises(FieldError, match="needs an artist") as error:
        generator.suggest_bars(VERSE[:1], PARAMS.replace(artist_guidance=2.5), K)
    assert error.value.field == "artist_guidance"


def test_a_verse_longer_than_the_context_keeps_its_numbering(generator):
    verse = VERSE * 12  # about 400 tokens for a context of 128
    (bar, *_) = generator.suggest_bars(verse, PARAMS, K)
    assert (bar.index, bar.letter, bar.target_key) == (48, "A", None)
    (bar, *_) = generator.suggest_bars(verse, PARAMS, K, index=45)
    assert (bar.index, bar.letter, bar.target_key) == (45, "A", rhyme_key(verse[44]))


def test_an_empty_verse_asks_for_its_first_bar_and_cancel_gives_nothing(generator):
    (bar, *_) = generator.suggest_bars([], PARAMS, K)
    assert (bar.index, bar.letter, bar.target_key) == (0, "A", None)
    cancel = threading.Event()
    cancel.set()
    assert generator.suggest_bars(VERSE, PARAMS, K, cancel=cancel) == []


@pytest.mark.parametrize(
    ("bars", "k", "index", "error", "message"),
    [
        (VERSE, 0, None, FieldError, r"candidates must be in \[1, 64\], got 0"),
        (VERSE, 65, None, FieldError, r"candidates must be in \[1, 64\], got 65"),
        (VERSE, K, 5, JaxrapError, r"bar index 5 is outside the verse's bars 0\.\.4"),
        (VERSE, K, -1, JaxrapError, r"bar index -1 is outside"),
        ("J'traîne", K, None, JaxrapError, r"the verse must be a list of bars"),
        (["un\ndeux"], K, None, JaxrapError, r"bar 1 of the verse holds a line break"),
        (["un", "  ", "deux"], K, None, JaxrapError, r"bar 2 of the verse is blank or a \[section\] marker"),
        (["un", "[Refrain]"], K, None, JaxrapError, r"bar 2 of the verse is blank"),
    ],
)
def test_bad_input_is_one_clear_error(generator, bars, k, index, error, message):
    with pytest.raises(error, match=message) as raised:
        generator.suggest_bars(bars, PARAMS, k, index=index)
    assert "\n" not in str(raised.value)
    if error is FieldError:
        assert raised.value.field == "candidates"
