"""Jitted decoding: transformers parity, KV cache = full forward, no recompiles, determinism."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrap.load import load_hf_model
from jaxrap.model import gpt2
from jaxrap.model.gpt2 import KVCache
from jaxrap.sample.decode import prompt_bucket, token_chunks
from jaxrap.sample.generator import ContextOverflowWarning, Generator
from jaxrap.sample.params import SamplingParams
from jaxrap.sample.processors import SamplingArrays

PROMPT = "J'traîne au quartier"
GREEDY = SamplingParams(temperature=0.0, repetition_penalty=1.0, seed=0)


@pytest.fixture(scope="module")
def generator(tiny_lyrics_model_dir):
    return Generator.load(tiny_lyrics_model_dir)


def tokens_of(generator, prompt_ids, params, eos=None) -> np.ndarray:
    """(num_samples, n) generated ids, NO_TOKEN (-1) after a row finished."""
    sampling = SamplingArrays.from_params(params, eos)
    return np.concatenate(list(token_chunks(generator.model, prompt_ids, sampling, num_samples=params.num_samples)), 1)


@pytest.mark.parametrize("penalty, ngram", [(1.0, 0), (1.3, 0), (1.0, 3)])
def test_greedy_equals_transformers_generate(generator, tiny_lyrics_model_dir, penalty, ngram):
    import torch
    import transformers

    reference = transformers.GPT2LMHeadModel.from_pretrained(tiny_lyrics_model_dir).eval()
    prompt_ids = generator.tokenizer(PROMPT)["input_ids"]
    new = 40
    with torch.no_grad():
        expected = reference.generate(
            torch.tensor([prompt_ids]), do_sample=False, max_new_tokens=new, min_new_tokens=new,
            repetition_penalty=penalty, no_repeat_ngram_size=ngram, pad_token_id=generator.tokenizer.pad_token_id,
        )[0, len(prompt_ids):].tolist()
    params = GREEDY.replace(max_new_tokens=new, min_new_tokens=new, repetition_penalty=penalty,
                            repetition_window=0, no_repeat_ngram_size=ngram, num_samples=2)
    ours = tokens_of(generator, prompt_ids, params, eos=generator.tokenizer.eos_token_id)
    assert ours[0][ours[0] >= 0].tolist() == expected
    assert ours[1][ours[1] >= 0].tolist() == expected


def test_kv_cache_decoding_equals_full_forward(generator):
    model = generator.model
    tokens = jnp.asarray(np.random.default_rng(0).integers(2, model.config.vocab_size, (1, 30)), jnp.int32)
    prompt_length, bucket = 11, prompt_bucket(11, model.config.n_positions)

    @jax.jit
    def cached_logits(params, head, tokens):  # teacher-forced: prefill 11 tokens, then one at a time
        module = gpt2.merge(model.graphdef, params)
        valid = jnp.arange(bucket)[None] < prompt_length
        prompt = jnp.where(valid, jnp.pad(tokens[:, :prompt_length], ((0, 0), (0, bucket - prompt_length))), 0)
        _, cache = module.hidden_states(prompt, attention_mask=valid, cache=KVCache.empty(model.config, 1, bucket))
        cache = cache.grow(2, model.config.n_positions).replace(index=jnp.int32(prompt_length))  # as prefill leaves it

        def step(cache, slot):
            token = jax.lax.dynamic_slice_in_dim(tokens, slot, 1, axis=1)  # (1, 1)
            hidden, cache = module.hidden_states(jnp.broadcast_to(token, (2, 1)), cache=cache)
            return cache, hidden[:, 0] @ head  # (2, V)

        return jax.lax.scan(step, cache, jnp.arange(prompt_length, 30))[1]  # (19, 2, V)

    full = jax.jit(gpt2.forward, static_argnums=0)(model.graphdef, model.params, tokens)[0][0]  # (30, V)
    cached = cached_logits(model.params, model.head, tokens)
    np.testing.assert_allclose(cached[:, 0], full[prompt_length:], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(cached[:, 0], cached[:, 1])


def test_changing_sampling_params_or_prompt_length_within_a_bucket_compiles_nothing(generator, count_compilations):
    base = SamplingParams(max_new_tokens=12, seed=0)
    short, longer = "J'traîne", "J'traîne au quartier"
    assert prompt_bucket(len(generator.encode_prompt(short)), 128) == prompt_bucket(len(generator.encode_prompt(longer)), 128)
    generator.generate(short, base)
    changes = [
        dict(temperature=0.0), dict(temperature=1.4, top_k=5), dict(top_k=200), dict(top_p=0.3, min_p=0.2),
        dict(repetition_penalty=1.6, repetition_window=4), dict(frequency_penalty=0.7, presence_penalty=-0.4),
        dict(no_repeat_ngram_size=2), dict(seed=9, max_new_tokens=30, min_new_tokens=20),
        dict(stop=("e",), max_bars=1),
    ]
    with count_compilations() as compiled:
        for change in changes:
            generator.generate(short, base.replace(**change))
        generator.generate(longer, base)
    assert compiled == []


def test_repetition_penalty_lowers_repeated_ngrams(generator):
    def repeated_trigrams(ids):
        grams = [tuple(ids[i:i + 3]) for i in range(len(ids) - 2)]
        return 1 - len(set(grams)) / len(grams)

    prompt_ids = generator.encode_prompt(PROMPT)
    params = GREEDY.replace(max_new_tokens=100, min_new_tokens=100, repetition_window=0)
    plain = repeated_trigrams(tokens_of(generator, prompt_ids, params)[0].tolist())
    penalized = repeated_trigrams(tokens_of(generator, prompt_ids, params.replace(repetition_penalty=2.0))[0].tolist())
    assert plain > 0.5  # greedy decoding of a random model loops
    assert penalized < 0.75 * plain


def test_same_seed_same_text_other_seed_other_text(generator):
    params = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=30, min_new_tokens=30, num_samples=2, seed=5)
    first = generator.generate(PROMPT, params)
    assert generator.generate(PROMPT, params) == first
    assert first[0] != first[1]  # samples of one batch differ
    assert generator.generate(PROMPT, params.replace(seed=6)) != first


def test_end_of_song_stops_a_sample_and_min_new_tokens_bans_it(generator, tiny_lyrics_model_dir):
    prompt_ids = generator.encode_prompt(PROMPT)
    greedy = tokens_of(generator, prompt_ids, GREEDY.replace(max_new_tokens=30, min_new_tokens=30))[0].tolist()
    end = greedy[6]  # pretend this token ends songs: greedy decoding must stop at its first use
    first = greedy.index(end)
    stopped = tokens_of(generator, prompt_ids, GREEDY.replace(max_new_tokens=30), eos=end)[0].tolist()
    assert stopped[: first + 1] == greedy[: first + 1]
    assert set(stopped[first + 1:]) == {-1}
    held = tokens_of(generator, prompt_ids, GREEDY.replace(max_new_tokens=30, min_new_tokens=first + 4), eos=end)[0]
    assert end not in held[: first + 4].tolist()

    # The same through the Generator, with a tokenizer whose eos is that token.
    loaded = load_hf_model(tiny_lyrics_model_dir)
    tokenizer = loaded.tokenizer
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(end)
    deltas = list(Generator(dataclasses.replace(loaded, tokenizer=tokenizer)).stream(PROMPT, GREEDY.replace(max_new_tokens=30)))
    assert "".join(d.text for d in deltas) == generator.tokenizer.decode(greedy[:first])
    assert deltas[-1].finish_reason == "end_of_song"


def test_stop_string_cuts_the_text_just_before_it(generator):
    params = GREEDY.replace(max_new_tokens=60, min_new_tokens=60)
    (text,) = generator.generate(PROMPT, params)
    stop = text[25:28]
    deltas = list(generator.stream(PROMPT, params.replace(stop=("zzz-never", stop))))
    assert "".join(d.text for d in deltas) == text[: text.find(stop)]
    assert deltas[-1].finish_reason == "stop"


def test_context_overflow_keeps_the_prompt_tail_with_a_warning(generator):
    long_prompt = "Frère, écoute : la rue n'pardonne à personne… " * 12  # > 128 tokens
    assert len(generator.encode_prompt(long_prompt)) > 128
    params = SamplingParams(max_new_tokens=20, min_new_tokens=20, seed=0)
    with pytest.warns(ContextOverflowWarning, match="last 108 tokens"):
        (text,) = generator.generate(long_prompt, params)
    assert len(generator.encode_prompt(text)) >= 5
    with pytest.warns(ContextOverflowWarning, match="at most 127"):
        generator.generate("J", params.replace(max_new_tokens=500, min_new_tokens=0))


def test_a_budget_as_long_as_the_context_shrinks_instead_of_the_prompt(generator):
    # A max_new_tokens as long as the context (as 256 on the quickstart model, n_positions 256): the
    # prompt must survive whole and the budget shrink, not the prompt shrink to one token.
    prompt_ids = generator.encode_prompt(PROMPT)
    S = generator.config.n_positions
    params = SamplingParams(max_new_tokens=S, seed=0)
    with pytest.warns(ContextOverflowWarning, match=f"at most {S - len(prompt_ids)}"):
        fitted_ids, fitted = generator.fit_context(prompt_ids, params)
    assert fitted_ids == prompt_ids and fitted.max_new_tokens == S - len(prompt_ids)
    long_ids = list(range(2, 2 + S))  # a prompt as long as the context keeps half of it
    with pytest.warns(ContextOverflowWarning) as caught:
        fitted_ids, fitted = generator.fit_context(long_ids, params)
    assert [f"last {S // 2} tokens" in str(w.message) for w in caught] == [True, False]
    assert f"at most {S // 2}" in str(caught[1].message)
    assert fitted_ids == long_ids[-(S // 2):] and fitted.max_new_tokens == S // 2


def test_the_default_budget_fits_the_context_silently(generator):
    """max_new_tokens None (the default): as many as the context leaves, at most 256, and no
    warning; only the user's own prompt, when cut, is announced."""
    import warnings

    prompt_ids = generator.encode_prompt(PROMPT)
    S = generator.config.n_positions
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted_ids, fitted = generator.fit_context(prompt_ids, SamplingParams(seed=0))
    assert fitted_ids == prompt_ids and fitted.max_new_tokens == min(256, S - len(prompt_ids))
    long_ids = list(range(2, 2 + S))
    with pytest.warns(ContextOverflowWarning) as caught:
        fitted_ids, fitted = generator.fit_context(long_ids, SamplingParams(seed=0, min_new_tokens=S))
    messages = [str(w.message) for w in caught]
    assert "up to 256 new tokens are generated by default" in messages[0] and f"last {S // 2} tokens" in messages[0]
    assert messages[1:] == [f"min_new_tokens {S} does not fit the model's context of {S} tokens after a {S // 2}-token prompt;"
                            f" generating at least {S // 2}"]
    assert fitted.max_new_tokens == fitted.min_new_tokens == S // 2
