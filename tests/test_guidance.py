"""Classifier-free guidance on the artist token: transformers' guided generate, the guided logits
against the model run on both prompts apart, W = 1 unchanged, no recompiles, composition with
the processors and the host-side stops, bad input, the untrained-unknown warning."""

from __future__ import annotations

import functools
import json
import shutil
import warnings

import jax
import numpy as np
import pytest

from jaxrap.cli import main
from jaxrap.data.artists import PROMPT_FORMAT_FILE
from jaxrap.errors import FieldError, JaxrapError
from jaxrap.model import gpt2
from jaxrap.sample import decode
from jaxrap.sample.decode import prompt_bucket, token_chunks
from jaxrap.sample.generator import Generator, UntrainedGuidanceWarning
from jaxrap.sample.guidance import guide
from jaxrap.sample.params import SamplingParams
from jaxrap.sample.processors import SamplingArrays

PROMPT = "J'traîne au quartier"
ARTIST = "Médine"
GREEDY = SamplingParams(temperature=0.0, repetition_penalty=1.0, seed=0, artist=ARTIST)


@pytest.fixture(scope="module")
def generator(conditioned_model_dir):
    return Generator.load(conditioned_model_dir)


def prompt_pair(generator) -> tuple[list[int], list[int]]:
    """The prompt after the artist's token, and after unknown's."""
    return generator.encode_prompt(PROMPT, ARTIST), generator.encode_prompt(PROMPT)


def guided_tokens(generator, params: SamplingParams) -> np.ndarray:
    """(num_samples, n) tokens of the jitted decoder guided by ``params.artist_guidance``;
    NO_TOKEN (-1) after a row finished or past the last step."""
    conditioned, unconditioned = prompt_pair(generator)
    sampling = SamplingArrays.from_params(params, generator.tokenizer.eos_token_id)
    chunks = token_chunks(generator.model, conditioned, sampling, num_samples=params.num_samples,
                          unconditioned_ids=unconditioned)
    return np.concatenate(list(chunks), 1)


@pytest.mark.parametrize("weight, ngram", [(2.5, 0), (10.0, 3)])
def test_guided_greedy_equals_transformers_generate_with_a_negative_prompt(generator, conditioned_model_dir, weight, ngram):
    """transformers mixes log-softmaxed logits: a constant per row away from ours, so without a
    repetition penalty (the one processor that is not shift-invariant) the texts are the same."""
    import torch
    import transformers

    reference = transformers.GPT2LMHeadModel.from_pretrained(conditioned_model_dir).eval()
    conditioned, unconditioned = prompt_pair(generator)
    new = 30
    settings = dict(do_sample=False, max_new_tokens=new, min_new_tokens=new, no_repeat_ngram_size=ngram,
                    pad_token_id=generator.tokenizer.pad_token_id)
    with torch.no_grad():
        expected = reference.generate(torch.tensor([conditioned]), guidance_scale=weight,
                                      negative_prompt_ids=torch.tensor([unconditioned]), **settings)[0, len(conditioned):]
        unguided = reference.generate(torch.tensor([conditioned]), **settings)[0, len(conditioned):]
    assert expected.tolist() != unguided.tolist()  # guidance changes this model's greedy text: the comparison means something
    params = GREEDY.replace(max_new_tokens=new, min_new_tokens=new, no_repeat_ngram_size=ngram, num_samples=2,
                            artist_guidance=weight)
    ours = guided_tokens(generator, params)
    assert ours[0][ours[0] >= 0].tolist() == expected.tolist() and ours[1][ours[1] >= 0].tolist() == expected.tolist()


@pytest.mark.parametrize("weight, penalty, ngram", [(6.0, 1.4, 0), (3.0, 1.2, 3)])
def test_guided_greedy_equals_transformers_processors_on_the_mixed_logits(
    generator, conditioned_model_dir, weight, penalty, ngram
):
    """The reference: transformers' GPT-2 run on each prompt + the text so far, the logits mixed,
    then transformers' own processors, in its order, and the argmax."""
    import torch
    import transformers
    from transformers.generation import logits_process as lp

    reference = transformers.GPT2LMHeadModel.from_pretrained(conditioned_model_dir).eval()
    conditioned, unconditioned = prompt_pair(generator)
    new, eos = 30, generator.tokenizer.eos_token_id
    processors = lp.LogitsProcessorList([
        lp.RepetitionPenaltyLogitsProcessor(penalty), *([lp.NoRepeatNGramLogitsProcessor(ngram)] if ngram else []),
        lp.MinNewTokensLengthLogitsProcessor(len(conditioned), new, eos),
    ])
    texts = [list(conditioned), list(unconditioned)]
    with torch.no_grad():
        for _ in range(new):
            c, u = (reference(torch.tensor([ids])).logits[:, -1] for ids in texts)
            token = int(processors(torch.tensor([texts[0]]), u + weight * (c - u)).argmax(-1))
            texts = [ids + [token] for ids in texts]
    expected = texts[0][len(conditioned):]
    params = GREEDY.replace(max_new_tokens=new, min_new_tokens=new, repetition_penalty=penalty, repetition_window=0,
                            no_repeat_ngram_size=ngram, num_samples=2, artist_guidance=weight)
    ours = guided_tokens(generator, params)
    assert ours[0][ours[0] >= 0].tolist() == expected and ours[1][ours[1] >= 0].tolist() == expected
    unguided = guided_tokens(generator, params.replace(artist_guidance=1.0))[0]
    assert unguided[unguided >= 0].tolist() != expected


@pytest.mark.parametrize("weight", [3.0, 0.5])
def test_guided_logits_equal_the_model_run_on_both_prompts_apart_and_mixed(generator, weight):
    """Each sample's pair of rows in the batch and the cache: the decoder's guided logits at every
    step equal the logits of a full forward pass over each prompt + that sample's tokens, mixed,
    within 1e-5."""
    model, B, steps = generator.model, 3, 8
    conditioned, unconditioned = prompt_pair(generator)
    params = SamplingParams(temperature=1.0, top_p=1.0, seed=2, num_samples=B, max_new_tokens=steps + 1,
                            artist=ARTIST, artist_guidance=weight)
    sampling = SamplingArrays.from_params(params, None)
    prompt = np.zeros((2, prompt_bucket(len(conditioned), model.config.n_positions)), np.int32)
    prompt[:, : len(conditioned)] = [conditioned, unconditioned]
    state, first = model.prefill(model.params, model.head, prompt, np.int32(len(conditioned)), sampling, num_samples=B)
    decoded = [np.broadcast_to(np.asarray(guide(first, weight, 2)), (B, first.shape[-1]))]
    state, token, _ = model.first_token(state, first, sampling)
    tokens = [np.asarray(token)[:, 0]]
    next_logits = jax.jit(functools.partial(decode.next_logits, model.graphdef))
    for _ in range(steps):
        decoded.append(np.asarray(next_logits(model.params, model.head, state, sampling)[0]))  # (B, V)
        state, token, _ = model.decode_chunk(model.params, model.head, state, sampling, np.int32(1))
        tokens.append(np.asarray(token)[:, 0])
    tokens = np.stack(tokens, 1)  # (B, steps + 1)
    assert len({tuple(row) for row in tokens}) == B  # the samples differ: a row mixed with another's would show

    forward = jax.jit(lambda params, ids: gpt2.forward(model.graphdef, params, ids)[0])
    for b in range(B):
        full = [np.asarray(forward(model.params, np.array([p + tokens[b, :steps].tolist()], np.int32)))[0]
                for p in (conditioned, unconditioned)]  # (T, V) each
        for t in range(steps + 1):
            c, u = (logits[len(conditioned) - 1 + t] for logits in full)
            np.testing.assert_allclose(decoded[t][b], u + weight * (c - u), atol=1e-5, rtol=1e-5)


def test_processors_see_the_guided_logits(generator):
    """Top-k 1 keeps only the guided argmax: sampling then writes the guided greedy text."""
    params = SamplingParams(temperature=1.0, top_k=1, top_p=1.0, repetition_penalty=1.0, seed=4, max_new_tokens=20,
                            min_new_tokens=20, artist=ARTIST, artist_guidance=2.5)
    greedy = guided_tokens(generator, GREEDY.replace(max_new_tokens=20, min_new_tokens=20, artist_guidance=2.5))
    assert guided_tokens(generator, params).tolist() == greedy.tolist()
    plain = generator.generate(PROMPT, params.replace(artist_guidance=1.0))[0]
    assert generator.encode_text(plain) != greedy[0].tolist()  # top-k of the conditioned logits alone differs


def test_w_1_decodes_exactly_as_without_guidance_and_runs_no_unconditioned_row(generator):
    prompts: list[tuple[int, ...]] = []
    spied = recording_prompt_shapes(generator, prompts)
    params = SamplingParams(seed=5, num_samples=2, max_new_tokens=24, artist=ARTIST, repetition_penalty=1.3)
    assert spied.generate(PROMPT, params.replace(artist_guidance=1.0)) == generator.generate(PROMPT, params)
    assert prompts == [(1, 16)]  # one prompt row: nothing but the conditioned rows is computed
    spied.generate(PROMPT, params.replace(artist_guidance=2.0))
    assert prompts[-1] == (2, 16)
    # Guided programs at w = 1 reproduce the unguided greedy text: the conditioned row of each pair is the right one.
    greedy = GREEDY.replace(max_new_tokens=24, min_new_tokens=24, num_samples=2)
    unguided = np.concatenate(list(token_chunks(generator.model, prompt_pair(generator)[0],
                                                SamplingArrays.from_params(greedy, None), num_samples=2)), 1)
    assert guided_tokens(generator, greedy).tolist() == unguided.tolist()


def recording_prompt_shapes(generator, shapes: list) -> Generator:
    """A generator of the same model whose prefill records its prompt's shape."""
    import dataclasses

    spied = Generator(generator.loaded)
    prefill = generator.model.prefill

    def recording(params, head, prompt, *args, **kwargs):
        shapes.append(prompt.shape)
        return prefill(params, head, prompt, *args, **kwargs)

    spied.model = dataclasses.replace(generator.model, prefill=recording)
    return spied


def test_changing_the_guidance_weight_compiles_nothing(generator, count_compilations):
    base = SamplingParams(max_new_tokens=12, seed=0, artist=ARTIST, num_samples=2, artist_guidance=1.5)
    first = generator.generate(PROMPT, base)
    with count_compilations() as compiled:
        others = [generator.generate(PROMPT, base.replace(artist_guidance=w)) for w in (2.0, 3.0, 0.5, 5.0)]
    assert compiled == []
    assert len({tuple(texts) for texts in [first, *others]}) > 1  # the weight is used, not compiled in


def test_guidance_composes_with_stop_strings_max_bars_and_samples(generator):
    params = SamplingParams(seed=6, num_samples=3, max_new_tokens=40, artist=ARTIST, artist_guidance=2.0)
    full = generator.generate(PROMPT, params)
    assert len(set(full)) == 3
    stopped = generator.generate(PROMPT, params.replace(stop=("e",)))
    assert stopped == [text.split("e")[0] for text in full]
    bars = generator.generate(PROMPT, params.replace(max_bars=1))
    assert all(text.count("\n") <= 1 and full[i].startswith(text) for i, text in enumerate(bars))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(artist_guidance=0.0), "artist_guidance must be > 0 (1 turns it off), got 0.0"),
        (dict(artist_guidance=-2.0), "artist_guidance must be > 0 (1 turns it off), got -2.0"),
        (dict(artist_guidance=float("nan")), "artist_guidance must be a finite number, got nan"),
        (dict(artist_guidance=float("inf")), "artist_guidance must be a finite number, got inf"),
        (dict(artist_guidance="2"), "artist_guidance must be a number, got '2'"),
    ],
)
def test_bad_weights_are_refused_by_field(changes, message):
    with pytest.raises(FieldError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        SamplingParams(**{"artist": ARTIST, **changes})
    assert error.value.field == "artist_guidance"


def test_guidance_needs_a_model_with_artist_tokens_and_a_named_artist(generator, tiny_lyrics_model_dir):
    with pytest.raises(FieldError, match=r"--artist-guidance 2: needs an artist \(--artist NAME\)") as error:
        generator.generate(PROMPT, SamplingParams(artist_guidance=2.0, max_new_tokens=4))
    assert error.value.field == "artist_guidance"
    plain = Generator.load(tiny_lyrics_model_dir)
    with pytest.raises(JaxrapError, match="--artist-guidance 2: this model has no artist tokens to guide with"):
        plain.generate(PROMPT, SamplingParams(artist="X", artist_guidance=2.0, max_new_tokens=4))
    with pytest.raises(JaxrapError, match="needs a named artist, not unknown"):
        generator.generate(PROMPT, SamplingParams(artist="unknown", artist_guidance=2.0, max_new_tokens=4))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--artist", ARTIST, "--artist-guidance", "0"], "artist_guidance must be > 0"),
        (["--artist", ARTIST, "--artist-guidance", "inf"], "artist_guidance must be a finite number, got inf"),
        (["--artist-guidance", "2"], "--artist-guidance 2: needs an artist (--artist NAME)"),
        (["--artist", "unknown", "--artist-guidance", "2"], "--artist-guidance 2: needs a named artist"),
    ],
)
def test_cli_refuses_bad_guidance_with_exit_2_before_any_output(conditioned_model_dir, capsys, flags, message):
    assert main(["generate", "--model", str(conditioned_model_dir), "--prompt", "Le", "--max-new-tokens", "4", *flags]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and captured.err.count("\n") == 1


def test_cli_refuses_guidance_on_a_model_without_artist_tokens(tiny_lyrics_model_dir, capsys):
    args = ["generate", "--model", str(tiny_lyrics_model_dir), "--prompt", "Le", "--artist", "X", "--artist-guidance", "2"]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("jaxrap: error: --artist-guidance 2: this model has no artist tokens")


def test_cli_generates_with_guidance(conditioned_model_dir, capsys):
    args = ["generate", "--model", str(conditioned_model_dir), "--prompt", "Le", "--max-new-tokens", "6", "--seed", "1",
            "--artist", ARTIST, "--artist-guidance", "3"]
    assert main(args) == 0
    out = capsys.readouterr().out
    (text,) = Generator.load(conditioned_model_dir).generate(
        "Le", SamplingParams(max_new_tokens=6, seed=1, artist=ARTIST, artist_guidance=3.0))
    assert out == "Le" + text + ("" if text.endswith("\n") else "\n")  # stdout ends with a newline


def test_guidance_against_an_untrained_unknown_token_warns_once(conditioned_model_dir, tmp_path, capsys):
    model_dir = tmp_path / "model"
    shutil.copytree(conditioned_model_dir, model_dir)
    record = json.loads((model_dir / PROMPT_FORMAT_FILE).read_text())
    params = SamplingParams(max_new_tokens=4, seed=0, artist=ARTIST, artist_guidance=2.0)
    for unknown_songs, expected in ((0, 1), (12, 0)):
        (model_dir / PROMPT_FORMAT_FILE).write_text(json.dumps({**record, "unknown_train_songs": unknown_songs}))
        generator = Generator.load(model_dir)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            generator.generate(PROMPT, params)
            generator.generate(PROMPT, params.replace(seed=1))
            generator.generate(PROMPT, params.replace(artist_guidance=1.0))
        untrained = [w for w in caught if issubclass(w.category, UntrainedGuidanceWarning)]
        assert len(untrained) == expected, unknown_songs
    (model_dir / PROMPT_FORMAT_FILE).write_text(json.dumps({**record, "unknown_train_songs": 0}))
    assert main(["generate", "--model", str(model_dir), "--prompt", "Le", "--max-new-tokens", "4", "--seed", "0",
                 "--artist", ARTIST, "--artist-guidance", "2", "--num-samples", "2"]) == 0
    err = capsys.readouterr().err
    assert err.count("never trained <|artist:unknown|>") == 1 and err.count("\n") == 1


def test_eval_samples_guide_each_prompt_towards_its_own_artist(generator):
    from jaxrap.evaluate.samples import EvalPrompt, generate_samples

    prompts = [EvalPrompt(ARTIST, ARTIST, "Le béton\n", ""), EvalPrompt("MC Rare", "unknown", "Le béton\n", "")]
    params = SamplingParams(max_new_tokens=16, seed=3, num_samples=2)
    guided = generate_samples(generator, prompts, params.replace(artist_guidance=4.0))
    plain = generate_samples(generator, prompts, params)
    assert guided[0] == generator.generate("Le béton\n", params.replace(artist=ARTIST, artist_guidance=4.0))
    assert guided[0] != plain[0]
    assert guided[1] == plain[1]  # no artist to guide towards: unguided
