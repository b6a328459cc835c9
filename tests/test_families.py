"""Every family through the training pipeline: a Llama-style model from scratch, and a
pretrained Llama-style checkpoint fine-tuned with artist tokens on an FSDP mesh, its tensors
streamed onto the devices and its embedding and untied head grown as they arrive."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
import transformers

from jaxrap.config import MeshConfig, load_config
from jaxrap.data.artists import tokenizer_artists
from jaxrap.data.tokenizer import load_tokenizer
from jaxrap.load import load_model
from jaxrap.model import hf, lm
from jaxrap.model.embeddings import NOISE_SCALE, grow_token_embeddings
from jaxrap.model.llama_config import LlamaConfig
from jaxrap.rundir import RunDir
from jaxrap.sample.decode import token_chunks
from jaxrap.sharding import make_mesh, state_shardings
from jaxrap.train.pipeline import ensure_tokenizer, model_from_config, run_training
from jaxrap.train.trackers import MemoryTracker

SCRATCH_LLAMA = [
    "model.shape.model_type=llama", "model.shape.n_layer=2", "model.shape.n_head=4", "model.shape.n_kv_head=2",
    "model.shape.n_embd=32", "model.shape.n_positions=32", "model.shape.dropout=0.0",
    "model.shape.tie_word_embeddings=true",
]


def _train(corpus, tokenizer, run_dir, overrides, mesh=None):
    config = load_config(None, [
        f"data.path={corpus}", f"model.tokenizer={tokenizer}", "data.block_size=32", "train.per_device_batch_size=4",
        "train.steps=30", "train.log_every=10", "train.eval_every=30", "optim.lr=1e-2", "optim.warmup_steps=5",
        *overrides,
    ])
    memory = MemoryTracker()
    result = run_training(config, run_dir, trackers=[memory], say=memory.messages.append,
                          mesh=mesh or make_mesh(MeshConfig(), jax.devices()[:1]))
    return result, memory


def test_a_scratch_llama_style_model_trains_resumes_and_exports(tiny_corpus_dir, tiny_tokenizer_dir, tmp_path):
    run = RunDir(tmp_path / "run")
    result, memory = _train(tiny_corpus_dir, tiny_tokenizer_dir, run.path, SCRATCH_LLAMA)
    losses = [metrics["loss"] for _, metrics in memory.records if "loss" in metrics]
    assert losses[-1] < losses[0] - 1.0, losses
    assert any(message.startswith("model: Llama 2 layers x 32 wide, 4 heads (2 key/value)") for message in memory.messages)
    saved = json.loads(run.model_config_file.read_text())
    assert (saved["model_type"], saved["num_key_value_heads"], saved["tie_word_embeddings"]) == ("llama", 2, True)

    # Resumed to 40 steps: the shape comes back from model_config.json.
    resumed, _ = _train(tiny_corpus_dir, tiny_tokenizer_dir, run.path, [*SCRATCH_LLAMA, "train.steps=40"])
    assert resumed.step == 40

    # Loaded back, its logits are transformers' LlamaForCausalLM's of the exported directory.
    loaded = load_model(run.path)
    assert isinstance(loaded.config, LlamaConfig)
    out = tmp_path / "export"
    hf.save_pretrained(out, loaded.config, loaded.params, tokenizer=loaded.tokenizer)
    reference = transformers.LlamaForCausalLM.from_pretrained(out).eval()
    ids = np.random.default_rng(0).integers(2, loaded.config.vocab_size, (1, 20))
    import torch

    with torch.no_grad():
        expected = reference(torch.tensor(ids)).logits.numpy()
    ours = np.asarray(lm.forward(lm.abstract(loaded.config)[0], loaded.params, ids)[0])
    np.testing.assert_allclose(ours, expected, atol=1e-4)


@pytest.fixture(scope="module")
def untied_llama_dir(tiny_tokenizer_dir, tmp_path_factory):
    """A random-init transformers LlamaForCausalLM, untied, with the tiny BPE: a pretrained model to fine-tune."""
    tokenizer = load_tokenizer(tiny_tokenizer_dir)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    model = transformers.LlamaForCausalLM(config)
    directory = tmp_path_factory.mktemp("untied_llama")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_fine_tuning_streams_onto_the_mesh_and_grows_embedding_and_head(untied_llama_dir, tiny_corpus_dir, tmp_path):
    config = load_config(None, [
        f"data.path={tiny_corpus_dir}", f"model.init={untied_llama_dir}", "data.block_size=32", "data.artist_tokens=true",
        "data.min_artist_songs=1", "train.per_device_batch_size=1", "train.steps=2", "train.eval_every=2",
        "mesh.fsdp=2",
    ])
    run = RunDir(tmp_path / "run")
    tokenizer = ensure_tokenizer(config, run, tiny_corpus_dir, lambda text: None, reuse=False)
    old_size = len(load_tokenizer(untied_llama_dir))
    new_ids = sorted(tokenizer_artists(tokenizer).values())
    assert new_ids[0] >= old_size and len(tokenizer) == old_size + len(new_ids)
    model_config, init_params = model_from_config(config, run, tokenizer, resuming=False)
    assert model_config.vocab_size == len(tokenizer)

    mesh = make_mesh(config.mesh)
    shardings = state_shardings(mesh, lm.abstract(model_config)[1])
    placed = init_params(shardings)
    embedding, head = placed["embed_tokens"]["embedding"], placed["lm_head"]["kernel"]
    assert embedding.sharding == shardings["embed_tokens"]["embedding"] and embedding.shape == (len(tokenizer), 64)
    assert head.shape == (64, len(tokenizer))

    # The same numbers as growing the host copy after loading it whole.
    _, host = hf.load_pretrained(untied_llama_dir)
    expected = grow_token_embeddings(host, len(tokenizer), new_ids, seed=config.train.seed, embedding=("embed_tokens", "embedding"))
    np.testing.assert_array_equal(np.asarray(embedding), expected["embed_tokens"]["embedding"])
    np.testing.assert_array_equal(np.asarray(head), expected["lm_head"]["kernel"])
    old_head = host["lm_head"]["kernel"]
    assert np.all(np.abs(np.asarray(head)[:, old_size:].T - old_head.mean(1)) <= 6 * NOISE_SCALE * old_head.std(1))

    result, _ = _train(tiny_corpus_dir, untied_llama_dir, tmp_path / "trained", [
        f"model.init={untied_llama_dir}", "data.artist_tokens=true", "data.min_artist_songs=1", "model.tokenizer=null",
        "train.steps=2", "train.eval_every=2", "train.per_device_batch_size=1", "mesh.fsdp=2",
    ], mesh=mesh)
    assert result.step == 2 and np.isfinite(result.eval_loss)


# --- sampling on a Llama-style model with a SentencePiece-style tokenizer ---------------------------


def test_sentencepiece_vocabularies_give_word_marks_newlines_and_bos(sentencepiece_tokenizer_dir):
    """The per-token tables read ▁ as a word start and the <0x0A> byte token as a newline, and
    the tokenizer's post-processor (not the family) decides the prompt's bos."""
    from jaxrap.phonetics.syllables import count_syllables
    from jaxrap.phonetics.token_tables import replay_bar, token_tables

    tokenizer = load_tokenizer(sentencepiece_tokenizer_dir)
    tables = token_tables(tokenizer)
    newline = tokenizer.convert_tokens_to_ids("<0x0A>")
    assert tables.has_newline[newline] and tables.breaks_word[newline] and tables.syllables[newline] == 0
    ids = tokenizer("J'traîne au quartier", add_special_tokens=False)["input_ids"]
    pieces = tokenizer.convert_ids_to_tokens(ids)
    assert [tables.starts_word[i] for i in ids] == [piece.startswith("▁") for piece in pieces]
    assert replay_bar(tables, ids).syllables == count_syllables("J'traîne au quartier") == 4
    assert tokenizer("Je")["input_ids"][0] == tokenizer.bos_token_id


def test_a_plain_llama_model_prompts_with_its_bos_and_decodes_as_transformers(llama_lyrics_model_dir):
    import torch

    from jaxrap.sample.generator import Generator
    from jaxrap.sample.params import SamplingParams
    from jaxrap.sample.processors import SamplingArrays

    generator = Generator.load(llama_lyrics_model_dir)
    prompt_ids = generator.encode_prompt("J'traîne au quartier")
    assert prompt_ids[0] == generator.tokenizer.bos_token_id == 1  # added by the tokenizer's post-processor
    reference = transformers.LlamaForCausalLM.from_pretrained(llama_lyrics_model_dir).eval()
    with torch.no_grad():
        expected = reference.generate(
            torch.tensor([prompt_ids]), do_sample=False, max_new_tokens=30, min_new_tokens=30, repetition_penalty=1.2,
            pad_token_id=generator.tokenizer.pad_token_id,
        )[0, len(prompt_ids):].tolist()
    params = SamplingParams(temperature=0.0, repetition_penalty=1.2, repetition_window=0, max_new_tokens=30,
                            min_new_tokens=30, seed=0)
    sampling = SamplingArrays.from_params(params, generator.tokenizer.eos_token_id)
    tokens = np.concatenate(list(token_chunks(generator.model, prompt_ids, sampling, num_samples=1)), 1)[0]
    assert tokens[tokens >= 0].tolist() == expected
    assert len(list(generator.stream("J'traîne au quartier", params))) > 2  # streamed in chunks, not at the end


def test_byte_fallback_pieces_stream_as_whole_characters(sentencepiece_tokenizer_dir):
    """Characters outside the vocabulary (ñ, 😀) are spelled in UTF-8 byte tokens (<0xC3> <0xB1>):
    pushed one token at a time, the deltas never show half a character and add up to the text."""
    from jaxrap.sample.sample_text import REPLACEMENT, SampleText

    tokenizer = load_tokenizer(sentencepiece_tokenizer_dir)
    text = "l’été mañana 😀\nLe béton"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert {"<0xC3>", "<0xB1>", "<0xF0>", "<0x0A>"} <= set(tokenizer.convert_ids_to_tokens(ids))
    sample = SampleText(tokenizer, [tokenizer.bos_token_id], eos_token_id=tokenizer.eos_token_id, max_new_tokens=100)
    deltas = [sample.push([token]) for token in ids] + [sample.finish("length")]
    assert not any(REPLACEMENT in delta for delta in deltas)
    assert "".join(deltas) == text


def test_bar_decoding_keeps_the_cache_exact_on_a_llama_style_model(conditioned_llama_model_dir, monkeypatch):
    """RoPE follows each candidate row's own positions through candidates, redraws, replays and
    masked gaps, in both guidance branches: the check of tests/test_bar_decode.py on this family."""
    from test_bar_decode import check_the_cache_through_candidates_redraws_and_replays

    from jaxrap.sample.generator import Generator

    check_the_cache_through_candidates_redraws_and_replays(Generator.load(conditioned_llama_model_dir), monkeypatch, "Médine")


def test_rhyme_scheme_syllables_artist_and_guidance_on_a_llama_style_model(conditioned_llama_model_dir):
    from jaxrap.sample.generator import Generator
    from jaxrap.sample.params import SamplingParams

    generator = Generator.load(conditioned_llama_model_dir)
    assert generator.artists == ("Médine", "Shurik'n", "unknown")
    prompt = generator.encode_prompt("Le béton", "Médine")
    assert prompt[:2] == [generator.tokenizer.eos_token_id, generator.tokenizer.convert_tokens_to_ids("<|artist:Médine|>")]
    params = SamplingParams(seed=3, num_samples=2, rhyme_scheme="AABB", syllables=6, max_bars=4, max_new_tokens=100,
                            artist="Médine", artist_guidance=2.0)
    deltas = list(generator.stream("", params))
    bars = [delta.bar for delta in deltas if delta.bar is not None]
    assert {delta.sample for delta in deltas} == {0, 1} and bars
    assert [bar.letter for bar in bars if bar.index < 4][:2] in (["A", "A"],)
