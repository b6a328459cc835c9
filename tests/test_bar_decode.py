"""Bar-by-bar decoding on a tiny random model: the KV cache stays exact through candidates,
redraws and replays; the kept bar is drawn uniformly among those that pass; redraws are
bounded and misses reported; targets follow the prompt and --rhyme-with; the bar controls
compose with streaming, samples, artists, stop strings, bar limits, budgets, cancel and the
seed; and nothing recompiles when a control changes."""

from __future__ import annotations

import threading
from collections import defaultdict

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import binomtest

from jaxrap.errors import JaxrapError
from jaxrap.model import gpt2
from jaxrap.phonetics.rhyme import rhyme_key
from jaxrap.phonetics.scheme import rhyme_target_key
from jaxrap.phonetics.token_tables import replay_bar, token_tables
from jaxrap.sample import bar_decode
from jaxrap.sample.bar_check import BarCheck
from jaxrap.sample.bar_decode import BarDecoder
from jaxrap.sample.generator import Generator
from jaxrap.sample.guidance import guide, model_rows
from jaxrap.sample.params import SamplingParams

PROMPT = "J'traîne au quartier\n"
# 2 samples x 3 candidates: one batch shape for most tests, so the module compiles it once.
GUIDANCE = 2.5  # the guided tests' weight
BARS = SamplingParams(seed=0, num_samples=2, candidates=3, syllables=4, syllable_tolerance=1, max_new_tokens=100)


@pytest.fixture(scope="module")
def generator(tiny_lyrics_model_dir):
    return Generator.load(tiny_lyrics_model_dir)


def deltas_of(generator, params, prompt=PROMPT, cancel=None):
    return list(generator.stream(prompt, params, cancel=cancel))


class ScriptedChecks:
    """Stands in for ``bar_check.check_bar``: each call is a candidate (in decode order: attempt,
    then sample, then candidate), and ``verdict(call_in_bar, line)`` -> (met, syllables_off)."""

    def __init__(self, verdict):
        self.verdict, self.calls = verdict, defaultdict(list)  # bar index -> [(line, check)]

    def __call__(self, line, target, *, complete):
        calls = self.calls[target.index]
        met, off = self.verdict(len(calls), line)
        check = BarCheck(line, 0, None, None, complete, () if met else ("scripted miss",), off, False)
        calls.append((line, check))
        return check


def next_logits_by_cache(model, state) -> np.ndarray:
    """(B, V) the logits each row's next step would get from the decoder's cache (guided when
    the state holds guidance pairs)."""
    module = gpt2.merge(model.graphdef, model.params)
    history, G = state.history, state.branches
    hidden, _ = module.hidden_states(
        model_rows(history.newest, G), positions=model_rows(history.length[:, None] - 1, G), cache=state.cache
    )
    return np.asarray(guide(hidden[:, 0] @ model.head, jnp.float32(GUIDANCE), G))


def check_the_cache_through_candidates_redraws_and_replays(generator, monkeypatch, artist=None):
    """Sample 0 passes only at its second attempt (then replays while sample 1 redraws); sample 1
    never passes and keeps its closest candidate, drawn at the first attempt (a replay pass). After
    each bar, every row's history is the prompt and its sample's kept bars, and (while the context
    has room) the next logits from the cache (masked gaps, per-row positions) equal a full forward over that history: with
    an artist, guided, each branch's prompt run apart and mixed."""
    K = 3
    # Calls per bar: s0 a0 (0-2), s1 a0 (3-5), s0 a1 (6-8), s1 a1 (9-11), s1 a2 (12-14). Sample 1's
    # closest is call 4 unless it was cut short (the closest complete one then).
    checks = ScriptedChecks(lambda call, line: (6 <= call < 9, 0 if call == 4 else 5 + call))
    sample1_calls = [3, 4, 5, 9, 10, 11, 12, 13, 14]
    monkeypatch.setattr(bar_decode, "check_bar", checks)
    # No end of song; bars end at 3 syllables exactly, so that three fit the context whatever the draws.
    params = BARS.replace(redraws=2, candidates=K, steering=3.0, min_new_tokens=100, syllables=3, syllable_tolerance=0)
    prompts = [generator.encode_prompt(PROMPT, artist)]
    if artist is not None:  # the conditioned prompt, then the unconditioned one
        params = params.replace(artist=artist, artist_guidance=GUIDANCE)
        prompts.append(generator.encode_prompt(PROMPT))
    decoder = BarDecoder(generator.model, generator.tokenizer, prompts[0], params,
                         unconditioned_ids=prompts[1] if artist else None)
    kept_ids: list[list[int]] = [[], []]
    checked_bars = 0
    forward = jax.jit(gpt2.forward, static_argnums=0)
    for bar in range(3):
        kept = decoder.next_bar()
        assert [k.sample for k in kept] == [0, 1]
        for k in kept:
            kept_ids[k.sample] += k.ids
        calls = checks.calls[1 + bar]
        assert len(calls) == 15 and kept[0].bar.redraws == 1 and kept[1].bar.redraws == 2
        closest_call = min(sample1_calls, key=lambda call: calls[call][1].closeness())
        assert bar > 0 or closest_call == 4  # the first bar keeps a bar of the first attempt: a replay
        assert kept[1].bar.text == calls[closest_call][0]
        assert kept[0].bar.met and not kept[1].bar.met and kept[1].bar.reason == "scripted miss"
        state = decoder.state
        length, tokens = np.asarray(state.history.length), np.asarray(state.history.tokens)
        for row in range(2 * K):
            assert tokens[row, : length[row]].tolist() == prompts[0] + kept_ids[row // K], (bar, row)
        if int(state.cache.index) >= generator.config.n_positions:
            break  # the context is full: no next step to check
        checked_bars += 1
        cached = next_logits_by_cache(generator.model, state)
        for row in range(2 * K):
            sample = row // K
            full = [np.asarray(forward(generator.model.graphdef, generator.model.params,
                                       jnp.asarray([prompt + kept_ids[sample]]))[0][0, -1]) for prompt in prompts]
            expected = full[0] if artist is None else full[1] + GUIDANCE * (full[0] - full[1])
            np.testing.assert_allclose(cached[row], expected, rtol=1e-4, atol=1e-4)
    assert checked_bars >= 2


def test_the_cache_stays_exact_through_candidates_redraws_and_replays(generator, monkeypatch):
    check_the_cache_through_candidates_redraws_and_replays(generator, monkeypatch)


def test_guided_bars_keep_both_branches_exact_through_candidates_redraws_and_replays(conditioned_model_dir, monkeypatch):
    """Artist guidance composes with bar controls: each row's conditioned / unconditioned pair
    is decoded, selected and rewound together."""
    check_the_cache_through_candidates_redraws_and_replays(Generator.load(conditioned_model_dir), monkeypatch, "Médine")


def test_the_kept_bar_is_drawn_uniformly_among_those_that_pass(generator, monkeypatch):
    """Candidates 0 and 2 of every 3 pass: over many bars (one 4-token bar per sample and seed)
    each is kept about half the time, and candidate 1 never is."""
    K = BARS.candidates
    checks = ScriptedChecks(lambda call, line: (call % K != 1, 1))
    monkeypatch.setattr(bar_decode, "check_bar", checks)
    kept_positions = []
    for seed in range(60):
        checks.calls.clear()
        for delta in deltas_of(generator, BARS.replace(seed=seed, max_new_tokens=4, syllables=2, redraws=0)):
            calls = checks.calls[delta.bar.index]
            group = calls[delta.sample * K : (delta.sample + 1) * K]
            positions = [p for p, (line, _) in enumerate(group) if line == delta.bar.text]
            if len(positions) == 1:  # two candidates with the same text cannot be told apart
                kept_positions.append(positions[0])
    counts = np.bincount(kept_positions, minlength=K)
    assert counts[1] == 0 and counts.sum() >= 100, counts
    assert binomtest(int(counts[0]), int(counts.sum())).pvalue > 0.001, counts


def test_redraws_are_bounded_and_the_closest_miss_is_kept_and_reported(generator, monkeypatch):
    K, redraws = BARS.candidates, 2
    # Nothing passes; each sample's closest candidate comes from its second attempt, if it ended.
    checks = ScriptedChecks(lambda call, line: (False, 0 if call % (2 * K) == 1 and call // (2 * K) == 1 else 3 + call))
    monkeypatch.setattr(bar_decode, "check_bar", checks)
    bars = [(d.sample, d.bar) for d in deltas_of(generator, BARS.replace(redraws=redraws, max_new_tokens=60))]
    assert len(bars) >= 2
    for sample, bar in bars:
        calls = checks.calls[bar.index]
        mine = [calls[attempt * 2 * K + sample * K + k] for attempt in range(redraws + 1) for k in range(K)]
        assert len(calls) == 2 * K * (redraws + 1) and bar.candidates == len(mine) and bar.redraws == redraws
        assert not bar.met and bar.reason == "scripted miss"
        assert bar.text == min(mine, key=lambda call: call[1].closeness())[0]


def test_prompt_bars_count_and_set_targets(generator):
    params = BARS.replace(rhyme_scheme="AABB", max_bars=3, min_new_tokens=100)  # no end of song
    deltas = [d for d in deltas_of(generator, params) if d.sample == 0]
    first = deltas[0].bar
    assert (first.index, first.letter, first.target_key) == (1, "A", rhyme_key("J'traîne au quartier"))
    assert [d.bar.letter for d in deltas] == ["A", "B", "B"]
    assert deltas[2].bar.target_key == deltas[1].bar.rhyme_key or deltas[1].bar.rhyme_key is None
    # An unfinished prompt line is completed by the first bar, whose text holds it.
    (first, *_) = deltas_of(generator, BARS.replace(rhyme_scheme="AABB", max_bars=1), prompt="J'traîne")
    assert first.bar.index == 0 and first.bar.text.startswith("J'traîne") and first.bar.target_key is None


def test_rhyme_with_sets_the_first_group_and_its_word_is_a_miss(generator):
    params = BARS.replace(rhyme_scheme="AAAA", rhyme_with="nuit", max_bars=2)
    for delta in deltas_of(generator, params):
        assert delta.bar.target_key == rhyme_target_key("nuit")
        assert delta.bar.word != "nuit" or not delta.bar.met
        assert delta.bar.met == (
            delta.bar.rhyme_key == "i" and delta.bar.word != "nuit" and 3 <= delta.bar.syllables <= 5
        )


def test_steering_keeps_every_bar_within_its_syllables_token_by_token(generator):
    """With steering on, the token-level count (the on-device one) of every ended bar lies in the
    range, whatever the word-level count the candidates are checked with says."""
    tables = token_tables(generator.tokenizer)
    ended = 0
    for seed in range(4):
        params = BARS.replace(seed=seed, syllables=5, syllable_tolerance=1, steering=3.0)
        decoder = BarDecoder(generator.model, generator.tokenizer, generator.encode_prompt(PROMPT), params)
        while not decoder.done:
            for kept in decoder.next_bar():
                if kept.ids and tables.has_newline[kept.ids[-1]]:
                    ended += 1
                    assert 4 <= replay_bar(tables, kept.ids[:-1]).syllables <= 6, kept.ids
    assert ended >= 4


def test_bar_controls_compose_with_samples_streaming_and_the_seed(generator):
    params = BARS.replace(rhyme_scheme="ABAB", max_bars=4, min_new_tokens=100)  # no end of song
    deltas = deltas_of(generator, params)
    for sample in range(2):
        mine = [d for d in deltas if d.sample == sample]
        assert [d.bar.index for d in mine] == [1, 2, 3, 4] and mine[-1].finish_reason == "bars"
        assert all(d.text == d.bar.text + "\n" for d in mine)  # each delta shows one whole bar
    texts = generator.generate(PROMPT, params)
    assert texts == ["".join(d.text for d in deltas if d.sample == s) for s in range(2)]
    assert texts[0] != texts[1] and generator.generate(PROMPT, params.replace(seed=1)) != texts


def test_bar_controls_compose_with_artists(conditioned_model_dir):
    generator = Generator.load(conditioned_model_dir)
    params = BARS.replace(artist="Médine", rhyme_scheme="AABB", max_bars=2, min_new_tokens=100)
    texts = generator.generate(PROMPT, params)
    assert texts == generator.generate(PROMPT, params) and all(text.count("\n") == 2 for text in texts)
    assert "<|artist" not in "".join(texts)


def test_stop_strings_budgets_and_cancel_end_samples(generator):
    text, _ = generator.generate(PROMPT, BARS.replace(max_bars=3))
    stop = text.split("\n")[1][2:5]  # inside the second bar
    deltas = [d for d in deltas_of(generator, BARS.replace(max_bars=3, stop=(stop,))) if d.sample == 0]
    assert "".join(d.text for d in deltas) == text[: text.find(stop)] and deltas[-1].finish_reason == "stop"
    short = deltas_of(generator, BARS.replace(max_new_tokens=8, min_new_tokens=8))
    assert [d.finish_reason for d in short] == ["length", "length"]  # the budget ends the first bar
    assert all(d.bar.met is False and "not ended within its tokens" in d.bar.reason for d in short)
    cancel = threading.Event()
    seen = []
    for delta in generator.stream(PROMPT, BARS.replace(max_bars=6, min_new_tokens=100), cancel=cancel):  # no end of song
        seen.append(delta)
        cancel.set()
    assert {d.finish_reason for d in seen[-2:]} == {"cancelled"} and sum(d.bar is not None for d in seen) <= 2


def test_without_bar_controls_the_bar_fields_change_nothing(generator):
    plain = SamplingParams(seed=3, max_new_tokens=30, num_samples=2)
    assert generator.generate(PROMPT, plain) == generator.generate(
        PROMPT, plain.replace(candidates=5, steering=0.0, redraws=7, syllable_tolerance=4)
    )


def test_changing_bar_controls_compiles_nothing(generator, count_compilations, monkeypatch):
    # Scripted checks take every path (redraws, replays) during the warm-up.
    monkeypatch.setattr(bar_decode, "check_bar", ScriptedChecks(lambda call, line: (call >= 6, call % 4)))
    base = BARS.replace(rhyme_scheme="AABB", max_bars=2, redraws=2)
    generator.generate(PROMPT, base)
    changes = [
        dict(rhyme_scheme="ABBA"),
        dict(rhyme_scheme="AAAA", rhyme_with="nuit"),
        dict(rhyme_vowels=3),
        dict(rhyme_scheme="AAAA", rhyme_with="la nuit", rhyme_vowels=2),
        dict(syllables=9),
        dict(syllable_tolerance=0),
        dict(steering=0.0),
        dict(steering=7.5),
        dict(redraws=0),
        dict(seed=5),
        dict(syllables=None, rhyme_scheme="xA"),
        dict(temperature=0.0),
        dict(stop=("a",), max_bars=5),
    ]
    with count_compilations() as compiled:
        for change in changes:
            generator.generate(PROMPT, base.replace(**change))
        generator.generate("J'traîne, la nuit\n", base)  # another prompt of the same bucket
    assert compiled == []


def test_no_room_for_a_bar_is_a_clear_error(generator):
    with pytest.raises(JaxrapError, match="no room for one bar: 5 new tokens"):
        generator.generate(PROMPT, SamplingParams(syllables=12, max_new_tokens=5))


def test_a_rhyme_of_n_vowels_reaches_the_device_as_its_class_and_the_vowels_before(generator):
    from jaxrap.phonetics.sounds import SEQUENCE_VOWELS

    params = BARS.replace(rhyme_scheme="AAAA", rhyme_with="toute ma vie", rhyme_vowels=3, num_samples=1)
    decoder = BarDecoder(generator.model, generator.tokenizer, generator.encode_prompt(PROMPT), params)
    target = decoder.songs[0].target(1)
    assert target.rhyme_key == rhyme_key("toute ma vie", 3) == "u-a-i" and target.rhyme_vowels == 3
    device = decoder._device_targets([target])
    tables = token_tables(generator.tokenizer)
    assert {tables.rhyme_keys[c] for c in np.asarray(device.rhyme_class)} == {"i"}
    assert [[SEQUENCE_VOWELS[v] if v >= 0 else None for v in row] for row in np.asarray(device.rhyme_vowels)] == [
        [None, "u", "a", None]
    ] * params.candidates
