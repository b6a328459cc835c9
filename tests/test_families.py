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
