"""Bar-by-bar decoding: rhyme schemes and syllable targets, with candidates and on-device steering.

What ``Generator.stream`` runs when a bar control is set (``SamplingParams.bar_controls``); plain
decoding (``decode.token_chunks``) is untouched. Two levers (README, "Rhyme and flow"):

- **steering** on device: the bar state of every row rides in the decode loop's carry
  (``steering.BarCarry``) and ``steering.steer`` masks and biases the logits (strength
  ``SamplingParams.steering``, 0 for off);
- **candidates**: each sample decodes ``candidates`` bars at once from its shared context
  (rows laid out by ``rows.RowLayout``), the host checks them word by word (``bar_check``) and
  keeps one drawn uniformly among those that meet the targets (the model's distribution given
  the constraint, not its most generic bar). When none does, the bar is drawn again from the
  same start, at most ``redraws`` times; then the closest is kept and the miss reported on its
  ``Bar`` record.

**One batch, one shared cache index, rows of different lengths.** The prompt is prefilled once
and grown to every row. Rows step in lockstep (the KV cache's write index is shared), each at
its own position (``TokenHistory.length`` per row, passed as position ids): a row that ended
its bar (newline, end of song, its bar's token cap, its token budget) keeps stepping with its
token masked out of the cache (``KVCache.mask``) and nothing appended, until every row is done.
Then ``select`` copies each sample's chosen row over its group (the bar's cache window, token
history, counts, bar state) and moves the write index to the end of the longest chosen bar;
samples whose bar was shorter leave masked slots, which attention skips. A redraw rewinds the
index, the lengths, the counts and the bar state to the bar's start (``BarSnapshot``); samples
that already have their bar replay it, token for token (``BarPlan.forced``), so that after the
last attempt every group holds its chosen bar.

Randomness: a draw is a function of (seed, bar, attempt, step, row) and the choice among
candidates of (seed, bar, attempt, sample), so the same seed gives the same text in any
process.

**Artist guidance** composes as an inner factor of the layout: with guidance each row is a
conditioned / unconditioned pair of model rows (``jaxrap.sample.guidance``), prefilled from the
two prompts, fed the same tokens, mixed into one row's logits before the processors and the
steering; ``select`` copies pairs. The token history, bar state and host checks see rows only.

Shapes: B = samples x candidates rows, G model rows per row (1, or 2 with guidance), S cache
slots, W = BAR_WINDOW tokens per bar.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct

from jaxrap.model import lm
from jaxrap.model.kv_cache import KVCache
from jaxrap.model.registry import LMConfig
from jaxrap.phonetics.rhyme import key_vowels
from jaxrap.phonetics.sounds import MAX_RHYME_VOWELS
from jaxrap.phonetics.token_tables import NO_VOWEL, VOWEL_ID, TokenTables, token_tables
from jaxrap.sample.bar_check import Bar, BarCheck, BarTarget, SongTargets, check_bar, closest
from jaxrap.sample.decode import DecodeModel, lm_logits, prefill, prompt_rows
from jaxrap.sample.guidance import guide, model_rows
from jaxrap.sample.params import SamplingParams
from jaxrap.sample.processors import SamplingArrays, TokenHistory, process_logits, sample_tokens
from jaxrap.sample.rows import RowLayout
from jaxrap.sample.steering import (
    ANY_LENGTH,
    FREE_BAR_RHYME_FROM,
    NO_CLASS,
    BarCarry,
    BarTargets,
    SteeringTables,
    advance,
    steer,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

BAR_WINDOW = 64  # most tokens of one bar (static: the forced-token buffer, the window select copies)
# A rhyme group's first bar ends on a sound at least this share of the vocabulary's whole-word
# tokens (with a rhyme class) end on, so that its group can find rhymes: 15 of the tiny 4,096-token
# BPE's 1,980, the 22 commonest sounds; rarer ones (-ap, -ɛk, -øl) were most misses (README).
OPENING_SOUND_SHARE = 0.0075
BAR_CHUNK = 16  # decode steps per jitted call: the host checks for cancel between calls
NO_TOKEN = -1  # in BarPlan.forced: sample this step


@struct.dataclass
class BarState:
    cache: KVCache  # B*G model rows; write index shared; each row's own slots marked in cache.mask
    history: TokenHistory  # per-row lengths
    carry: BarCarry
    bar_done: jax.Array  # (B,) bool: the row ended its bar (or its sample has finished)
    step: jax.Array  # () int32: steps into this attempt at the bar

    @property
    def branches(self) -> int:
        """G: model rows per row (2 with guidance)."""
        return self.cache.mask.shape[0] // self.bar_done.shape[0]


@struct.dataclass
class BarPlan:
    """One attempt at a bar: what each row aims at, which rows replay a kept bar, which draw."""

    targets: BarTargets
    forced: jax.Array  # (B, W) int32: row b's token at step t, NO_TOKEN to sample
    bar: jax.Array  # () int32: the generated bar's number
    attempt: jax.Array  # () int32


def start_song(
    graphdef: nnx.GraphDef,
    config: LMConfig,
    params: lm.Params,
    head: jax.Array,  # (C, V)
    prompt: jax.Array,  # (G, P) int32, right-padded: the prompt, and its unconditioned twin with guidance
    prompt_length: jax.Array,  # () int32
    sampling: SamplingArrays,
    tables: SteeringTables,
    *,
    rows: int,
) -> BarState:
    """The prompt prefilled once for all rows; its last token is fed again by the first step, so
    that every bar starts alike (the newest token not yet in the cache). The bar carry starts
    from the prompt's unfinished last line, replayed token by token."""
    state, _ = prefill(graphdef, config, params, head, prompt, prompt_length, sampling, num_samples=rows)
    replay = jax.lax.fori_loop(
        0, prompt_length, lambda i, carry: advance(carry, state.history.tokens[:, i], tables), BarCarry.start(rows)
    )
    return BarState(
        cache=dataclasses.replace(state.cache, index=prompt_length - 1),
        history=state.history,
        carry=dataclasses.replace(replay, tokens=jnp.zeros_like(replay.tokens)),
        bar_done=jnp.zeros((rows,), bool),
        step=jnp.zeros((), jnp.int32),
    )


def decode_bar(
    graphdef: nnx.GraphDef,
    params: lm.Params,
    head: jax.Array,
    state: BarState,
    plan: BarPlan,
    sampling: SamplingArrays,
    tables: SteeringTables,
    steps: jax.Array,  # () int32
) -> tuple[BarState, jax.Array]:
    """Up to ``steps`` steps of every row until each has ended its bar: (state, () all done)."""
    model = lm.merge(graphdef, params)
    S, W = state.cache.mask.shape[1], plan.forced.shape[1]
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(sampling.seed), plan.bar), plan.attempt)

    def not_finished(carry):
        i, state = carry
        return (i < steps) & ~jnp.all(state.bar_done)

    def step(carry):
        i, state = carry
        active, history, G = ~state.bar_done, state.history, state.branches  # (B,)
        hidden, cache = model.hidden_states(
            model_rows(history.newest, G),
            attention_mask=model_rows(active[:, None], G),
            positions=model_rows(history.length[:, None] - 1, G),
            cache=state.cache,
        )  # (B*G, 1, C)
        assert cache is not None  # given a cache, hidden_states returns it updated

        def steering(logits, history, sampling):
            return steer(logits, state.carry, plan.targets, tables, sampling.eos_token_id)

        logits = guide(lm_logits(hidden[:, 0], head), sampling.artist_guidance, G)  # (B, V)
        logits = process_logits(logits, history, sampling, extra=(steering,))
        token = sample_tokens(logits, jax.random.fold_in(key, state.step), sampling)  # (B,)
        forced = jnp.take(plan.forced, jnp.minimum(state.step, W - 1), axis=1)  # (B,)
        token = jnp.where(forced != NO_TOKEN, forced, token)
        history = history.append(token, sampling, active)
        ended = (
            tables.ends_bar[token]
            | (token == sampling.eos_token_id)
            | (state.carry.tokens + 1 >= plan.targets.max_tokens)
            | (history.num_generated >= sampling.max_new_tokens)
        )
        bar_done = state.bar_done | (active & ended) | (cache.index >= S)
        carry = advance(state.carry, token, tables, active)
        return i + 1, BarState(cache, history, carry, bar_done, state.step + 1)

    _, state = jax.lax.while_loop(not_finished, step, (jnp.zeros((), jnp.int32), state))
    return state, jnp.all(state.bar_done)


def select(state: BarState, sources: jax.Array, start: jax.Array, index: jax.Array) -> BarState:
    """Every row becomes a copy of row ``sources[row]`` (B,): its token history, counts and bar
    state, and its cache slots from ``start`` (the bar's first) over the bar window; the write
    index moves to ``index``. Slots before ``start`` already agree within a group. With guidance
    a row's model rows (its pair) move together."""
    cache = state.cache
    G = state.branches
    model_sources = (sources[:, None] * G + jnp.arange(G)).reshape(-1)  # (B*G,)
    H = cache.keys[0].shape[0] // model_sources.shape[0]
    W = min(BAR_WINDOW, cache.mask.shape[1])
    heads = (model_sources[:, None] * H + jnp.arange(H)).reshape(-1)  # (B*G*H,) rows of the merged batch-head axis

    def copy_window(x: jax.Array, axis: int) -> jax.Array:
        window = jax.lax.dynamic_slice_in_dim(x, start, W, axis)
        return jax.lax.dynamic_update_slice_in_dim(x, window[heads], start, axis)

    cache = dataclasses.replace(
        cache,
        keys=tuple(copy_window(k, 2) for k in cache.keys),  # (B*H, D, S)
        values=tuple(copy_window(v, 1) for v in cache.values),  # (B*H, S, D)
        mask=cache.mask[model_sources],
        index=index,
    )
    history = state.history
    history = dataclasses.replace(
        history,
        tokens=history.tokens[sources],
        length=history.length[sources],
        window_counts=history.window_counts[sources],
        generated_counts=history.generated_counts[sources],
    )
    return dataclasses.replace(
        state, cache=cache, history=history, carry=jax.tree.map(lambda x: x[sources], state.carry)
    )


@functools.cache
def _programs(graphdef: nnx.GraphDef, config: LMConfig) -> tuple[Callable, Callable, Callable]:
    """start_song, decode_bar and select jitted for one model structure (see decode._jitted)."""
    return (
        jax.jit(functools.partial(start_song, graphdef, config), static_argnames=("rows",)),
        jax.jit(functools.partial(decode_bar, graphdef), donate_argnames=("state",)),
        jax.jit(select, donate_argnames=("state",)),
    )


def opening_sounds(tables: TokenTables) -> frozenset[str]:
    """The rhyme keys at least OPENING_SOUND_SHARE of the whole-word tokens with a class end on
    (function words aside: they carry no rhyme)."""
    classes = tables.rhyme_class[tables.starts_word & (tables.rhyme_class >= 0) & ~tables.function_word]
    counts = np.bincount(classes, minlength=len(tables.rhyme_keys))
    return frozenset(
        key for key, count in zip(tables.rhyme_keys, counts) if count >= OPENING_SOUND_SHARE * len(classes)
    )


def rhyme_vowel_ids(key: str | None) -> np.ndarray:
    """(K,) ``BarTargets.rhyme_vowels`` of a target key: the ids of its vowels before the last,
    the one before the last at K - 2; NO_VOWEL elsewhere (and for no key)."""
    out = np.full(MAX_RHYME_VOWELS, NO_VOWEL, np.int32)
    leading = () if key is None else key_vowels(key)[0]
    out[MAX_RHYME_VOWELS - 1 - len(leading) : MAX_RHYME_VOWELS - 1] = [VOWEL_ID[vowel] for vowel in leading]
    return out


@dataclasses.dataclass(frozen=True)
class BarSnapshot:
    """Host copies of what a bar's attempt changes besides slots it writes past the start."""

    index: np.int32
    length: np.ndarray  # (B,)
    window_counts: np.ndarray  # (B, V)
    generated_counts: np.ndarray  # (B, V)
    carry: BarCarry  # of numpy arrays

    @classmethod
    def take(cls, state: BarState) -> BarSnapshot:
        history = state.history
        return cls(
            np.int32(state.cache.index),
            np.array(history.length),
            np.array(history.window_counts),
            np.array(history.generated_counts),
            jax.tree.map(np.array, state.carry),
        )

    def restore(self, state: BarState) -> BarState:
        history = dataclasses.replace(
            state.history,
            length=jnp.asarray(self.length),
            window_counts=jnp.asarray(self.window_counts),
            generated_counts=jnp.asarray(self.generated_counts),
        )
        cache = dataclasses.replace(state.cache, index=jnp.asarray(self.index))
        return dataclasses.replace(state, cache=cache, history=history, carry=jax.tree.map(jnp.asarray, self.carry))


@dataclasses.dataclass(frozen=True)
class KeptBar:
    """A sample's bar, as ``BarDecoder.next_bar`` returns it."""

    sample: int
    ids: list[int]  # its tokens, the newline or end-of-song that ended it included
    bar: Bar | None  # its record; None for an end of song before any token of a bar
    out_of_room: bool  # the context had no slot left: the sample cannot go on


@dataclasses.dataclass
class _Candidate:
    attempt: int
    row: int
    ids: list[int]
    check: BarCheck


class BarDecoder:
    """Decodes a prompt's samples bar by bar (the module docstring); ``next_bar`` gives the next
    bar of every sample that has not finished."""

    def __init__(
        self,
        model: DecodeModel,
        tokenizer: PreTrainedTokenizerFast,
        prompt_ids: Sequence[int],
        params: SamplingParams,
        *,
        unconditioned_ids: Sequence[int] | None = None,
        prompt_text: str | None = None,
        later_bars: Sequence[str] = (),
    ):
        """``unconditioned_ids``: the prompt after unknown's token (as long as ``prompt_ids``), to
        guide against with ``params.artist_guidance``; None decodes unguided. ``prompt_text``:
        the text the bars are numbered and targeted from (default: ``prompt_ids`` decoded; the
        writing room gives its whole verse above the bar, of which a long one's ids keep the end
        only); ``later_bars``: the verse's bars below the first generated one
        (``SongTargets``)."""
        self.model, self.tokenizer, self.params = model, tokenizer, params
        self.layout = RowLayout(params.num_samples, params.candidates)
        self.eos = tokenizer.eos_token_id
        self.sampling = SamplingArrays.from_params(params, self.eos)
        text_tables = token_tables(tokenizer)
        self.tables = SteeringTables.from_token_tables(text_tables, model.config.vocab_size)
        self.class_of = {key: c for c, key in enumerate(text_tables.rhyme_keys)}
        self.ends_bar = text_tables.has_newline
        newlines = [i for i, token in enumerate(prompt_ids) if token < len(self.ends_bar) and self.ends_bar[token]]
        self.unfinished = list(prompt_ids[newlines[-1] + 1 :] if newlines else prompt_ids)  # the prompt's last line
        prompt_text = self._decode_text(list(prompt_ids)) if prompt_text is None else prompt_text
        openers = opening_sounds(text_tables)
        self.songs = [
            SongTargets(
                prompt_text,
                rhyme_scheme=params.rhyme_scheme,
                rhyme_with=params.rhyme_with,
                syllables=params.syllables,
                tolerance=params.syllable_tolerance,
                opening_sounds=openers,
                later_bars=later_bars,
                rhyme_vowels=params.rhyme_vowels,
            )
            for _ in range(params.num_samples)
        ]
        self.finished = np.zeros(params.num_samples, bool)
        self.bar = 0  # generated bars so far
        self._start, self._decode, self._select = _programs(model.graphdef, model.config)
        S = model.context
        self.window = min(BAR_WINDOW, S)
        self.state = self._start(
            model.params,
            model.head,
            prompt_rows(prompt_ids, unconditioned_ids, S),
            np.int32(len(prompt_ids)),
            self.sampling,
            self.tables,
            rows=self.layout.size,
        )
        self.index = len(prompt_ids) - 1  # the cache's write index at the start of the next bar
        self.generated = np.zeros(params.num_samples, int)  # tokens of each sample's kept bars
        self._avoid: dict[str, int] = {}

    def finish(self, sample: int) -> None:
        """The host ended ``sample`` (stop string, bar limit): its rows idle from the next bar."""
        self.finished[sample] = True

    @property
    def done(self) -> bool:
        return bool(self.finished.all()) or self.index >= self.model.context

    def next_bar(self, cancel: threading.Event | None = None) -> list[KeptBar] | None:
        """The next bar of every sample not finished; None when ``cancel`` was set meanwhile."""
        index = self.songs[0].first_generated + self.bar
        targets = [song.target(index) for song in self.songs]
        live = [s for s in range(self.layout.samples) if not self.finished[s]]
        plan = BarPlan(
            targets=self._device_targets(targets),
            forced=self._forced({}),
            bar=jnp.int32(self.bar),
            attempt=jnp.int32(0),
        )
        snapshot = BarSnapshot.take(self.state) if self.params.redraws else None
        start_length = np.array(self.state.history.length)  # (B,)
        unfinished = self.unfinished if self.bar == 0 else []
        seen: dict[int, list[_Candidate]] = {s: [] for s in live}  # every candidate drawn, by sample
        kept: dict[int, _Candidate] = {}
        in_cache: dict[int, int] = {}  # sample -> a row holding its kept bar after the last pass
        for attempt in range(self.params.redraws + 1):
            if attempt:
                self.state = snapshot.restore(self.state)  # type: ignore[union-attr]  # redraws > 0
            if not self._run(dataclasses.replace(plan, forced=self._forced(kept), attempt=jnp.int32(attempt)), cancel):
                return None
            in_cache = {s: self.layout.row(s, 0) for s in kept}  # replayed on every row of the group
            for s, drawn in self._drawn(attempt, start_length, unfinished, targets, [s for s in live if s not in kept]).items():
                seen[s] += drawn
                passing = [c for c in drawn if c.check.met]
                if passing:
                    kept[s] = passing[self._rng(attempt, s).integers(len(passing))]
                    in_cache[s] = kept[s].row
            if len(kept) == len(live):
                break
        for s in live:
            if s not in kept:  # no candidate met the targets: the closest, a reported miss
                kept[s] = seen[s][closest([c.check for c in seen[s]], self._rng(self.params.redraws + 1, s))]
                if kept[s].attempt == attempt:
                    in_cache[s] = kept[s].row
        if len(in_cache) < len(live):  # a bar kept from an earlier attempt: replay them all once more
            self.state = snapshot.restore(self.state)  # type: ignore[union-attr]
            if not self._run(
                dataclasses.replace(plan, forced=self._forced(kept), attempt=jnp.int32(attempt + 1)), cancel
            ):
                return None
            in_cache = {s: self.layout.row(s, 0) for s in kept}
        return self._keep(kept, in_cache, seen, targets, index)

    def suggestions(self, cancel: threading.Event | None = None) -> list[Bar] | None:
        """Every candidate of the next bar of a one-sample decoder, as the writing room shows them
        (``Generator.suggest_bars``); None when ``cancel`` was set meanwhile.

        One attempt decodes ``params.candidates`` rows; while none of the candidates drawn so far
        meets the targets, the bar is drawn again, at most ``params.redraws`` times. Returned:
        the met candidates in draw order, then the misses nearest their target first
        (``BarCheck.closeness``), each text once, at most ``params.candidates`` of them. The
        decoder keeps no bar: call it on a fresh decoder."""
        assert self.layout.samples == 1, "suggestions are drawn for one sample"
        index = self.songs[0].first_generated + self.bar
        target = self.songs[0].target(index)
        plan = BarPlan(
            targets=self._device_targets([target]), forced=self._forced({}), bar=jnp.int32(self.bar), attempt=jnp.int32(0)
        )
        snapshot = BarSnapshot.take(self.state) if self.params.redraws else None
        start_length = np.array(self.state.history.length)  # (B,)
        unfinished = self.unfinished if self.bar == 0 else []
        seen: list[_Candidate] = []
        for attempt in range(self.params.redraws + 1):
            if attempt:
                self.state = snapshot.restore(self.state)  # type: ignore[union-attr]  # redraws > 0
            if not self._run(dataclasses.replace(plan, attempt=jnp.int32(attempt)), cancel):
                return None
            seen += self._drawn(attempt, start_length, unfinished, [target], [0])[0]
            if any(candidate.check.met for candidate in seen):
                break
        ranked = [c for c in seen if c.check.met] + sorted((c for c in seen if not c.check.met), key=lambda c: c.check.closeness())
        distinct: dict[str, _Candidate] = {}
        for candidate in ranked:
            distinct.setdefault(candidate.check.line, candidate)
        kept = list(distinct.values())[: self.params.candidates]
        return [self._record(c.check, target, index, len(seen), attempt) for c in kept]

    def _drawn(
        self, attempt: int, start_length: np.ndarray, unfinished: list[int], targets: Sequence[BarTarget], samples: Sequence[int]
    ) -> dict[int, list[_Candidate]]:
        """Each of ``samples``' candidates after an attempt: its rows' tokens since
        ``start_length`` (B,), checked against its target (``targets[sample]``)."""
        tokens, length = np.array(self.state.history.tokens), np.array(self.state.history.length)
        return {
            s: [
                _Candidate(
                    attempt,
                    row,
                    ids := tokens[row, start_length[row] : length[row]].tolist(),
                    self._check(unfinished, ids, targets[s]),
                )
                for row in self.layout.rows_of(s)
            ]
            for s in samples
        }

    def _keep(
        self,
        kept: dict[int, _Candidate],
        in_cache: dict[int, int],
        seen: dict[int, list[_Candidate]],
        targets: Sequence[BarTarget],
        index: int,
    ) -> list[KeptBar]:
        """Copy each kept bar over its group, move the write index past the longest, and report."""
        sources = np.arange(self.layout.size, dtype=np.int32)
        for s, row in in_cache.items():
            sources[list(self.layout.rows_of(s))] = row
        new_index = self.index + max(len(c.ids) for c in kept.values())
        self.state = self._select(self.state, sources, np.int32(self.index), np.int32(new_index))
        self.index = new_index
        self.bar += 1
        S = self.model.context
        out = []
        for s, chosen in sorted(kept.items()):
            check, target = chosen.check, targets[s]
            self.songs[s].record(check, index)
            self.generated[s] += len(chosen.ids)
            ended_song = chosen.ids[-1:] == [self.eos]
            record = (
                None
                if chosen.ids == [self.eos]
                else self._record(check, target, index, len(seen[s]), max(c.attempt for c in seen[s]))
            )
            if ended_song or self.generated[s] >= self.params.max_new_tokens or self.index >= S:
                self.finished[s] = True
            out.append(KeptBar(s, chosen.ids, record, out_of_room=self.index >= S and not ended_song))
        return out

    @staticmethod
    def _record(check: BarCheck, target: BarTarget, index: int, candidates: int, redraws: int) -> Bar:
        return Bar(
            index=index,
            text=check.line,
            syllables=check.syllables,
            rhyme_key=check.rhyme_key,
            word=check.word,
            letter=target.letter,
            target_key=target.rhyme_key,
            syllable_range=None if target.high is None else (target.low, target.high),
            met=check.met,
            reason="; ".join(check.failures) or None,
            candidates=candidates,
            redraws=redraws,
        )

    def _run(self, plan: BarPlan, cancel: threading.Event | None) -> bool:
        """Decode ``plan`` until every row has ended its bar (False: cancelled on the way). The
        next chunk is dispatched before this one's "all done" is read; once all are done it
        runs no step."""
        idle = self.layout.per_row(self.finished)  # rows of finished samples take no part
        state = dataclasses.replace(self.state, bar_done=jnp.asarray(idle), step=jnp.int32(0))
        decode = functools.partial(self._decode, self.model.params, self.model.head)
        state, done = decode(state, plan, self.sampling, self.tables, np.int32(BAR_CHUNK))
        while True:
            state, next_done = decode(state, plan, self.sampling, self.tables, np.int32(BAR_CHUNK))
            if bool(done):
                self.state = state
                return True
            if cancel is not None and cancel.is_set():
                self.state = state
                return False
            done = next_done

    def _device_targets(self, targets: Sequence[BarTarget]) -> BarTargets:
        classes = [NO_CLASS if t.rhyme_key is None else self.class_of.get(key_vowels(t.rhyme_key)[1], NO_CLASS) for t in targets]
        vowels = np.array([rhyme_vowel_ids(t.rhyme_key) for t in targets], np.int32)  # (samples, K)
        avoid = [self._avoid_token(t.used_words) for t in targets]
        first = targets[0]
        return BarTargets(
            rhyme_class=jnp.asarray(self.layout.per_row(np.array(classes, np.int32))),
            rhyme_vowels=jnp.asarray(self.layout.per_row(vowels)),
            avoid_token=jnp.asarray(self.layout.per_row(np.array(avoid, np.int32))),
            low=jnp.int32(first.low),
            high=jnp.int32(ANY_LENGTH if first.high is None else first.high),
            rhyme_from=jnp.int32(FREE_BAR_RHYME_FROM if first.high is None else first.low),
            max_tokens=jnp.int32(self.window),
            strength=jnp.float32(self.params.steering),
        )

    def _avoid_token(self, words: frozenset[str]) -> int:
        """A word the bar must not end on, as one token after a space (the form a bar's last word
        takes), or -1: the host check catches the rest."""
        for word in sorted(words):
            if word not in self._avoid:
                ids = self.tokenizer(" " + word, add_special_tokens=False)["input_ids"]
                self._avoid[word] = ids[0] if len(ids) == 1 else NO_TOKEN
            if self._avoid[word] != NO_TOKEN:
                return self._avoid[word]
        return NO_TOKEN

    def _forced(self, kept: dict[int, _Candidate]) -> jax.Array:
        """(B, W) the kept bars, on every row of their group; NO_TOKEN elsewhere."""
        forced = np.full((self.layout.size, self.window), NO_TOKEN, np.int32)
        for s, chosen in kept.items():
            forced[list(self.layout.rows_of(s)), : len(chosen.ids)] = chosen.ids
        return jnp.asarray(forced)

    def _check(self, unfinished: list[int], ids: list[int], target: BarTarget) -> BarCheck:
        """A candidate's tokens as a line, measured: complete when a newline or end-of-song ends it."""
        complete = bool(ids) and (ids[-1] == self.eos or self._ends_bar(ids[-1]))
        line = self._decode_text(unfinished + ids).split("\n")[0]
        return check_bar(line, target, complete=complete)

    def _decode_text(self, ids: list[int]) -> str:
        return cast(str, self.tokenizer.decode(ids, skip_special_tokens=True))  # one list of ids: one str

    def _ends_bar(self, token: int) -> bool:
        return token < len(self.ends_bar) and bool(self.ends_bar[token])

    def _rng(self, attempt: int, sample: int) -> np.random.Generator:
        return np.random.default_rng([int(self.params.seed), self.bar, attempt, sample])  # type: ignore[arg-type]
