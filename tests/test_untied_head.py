"""An LM head not tied to the token embedding (tie_word_embeddings: false), end to end.

The reference is transformers' GPT2LMHeadModel built untied and saved with save_pretrained:
jaxrap must load its own ``lm_head.weight``, not reuse the embedding, and compute, decode,
score, export, grow and train it. A tied model keeps no ``lm_head`` at all (its files and
checkpoints are what they were).
"""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
import torch
import transformers
from safetensors import safe_open

from jaxrap.cli import main
from jaxrap.data.tokenizer import load_tokenizer
from jaxrap.errors import JaxrapError
from jaxrap.evaluate.likelihood import ContinuationScorer
from jaxrap.load import load_model
from jaxrap.model import gpt2, hf
from jaxrap.model.config import GPT2Config
from jaxrap.sample.decode import NO_TOKEN, DecodeModel, token_chunks
from jaxrap.sample.params import SamplingParams
from jaxrap.sample.processors import SamplingArrays
from jaxrap.train.optimizer import decay_mask

IDS = np.random.default_rng(0).integers(2, 290, (2, 24))


@pytest.fixture(scope="module")
def untied(tiny_tokenizer_dir, tmp_path_factory):
    """(transformers model, directory): an untied random-init GPT-2 with the tiny tokenizer."""
    tokenizer = load_tokenizer(tiny_tokenizer_dir)
    shape = GPT2Config(n_positions=64, n_embd=32, n_layer=2, n_head=4).for_tokenizer(tokenizer)
    fields = {k: v for k, v in shape.to_hf_dict().items() if k not in ("architectures", "model_type")}
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**{**fields, "tie_word_embeddings": False})).eval()
    assert not torch.equal(model.lm_head.weight, model.transformer.wte.weight)
    directory = tmp_path_factory.mktemp("untied")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return model, directory


def _logits(model, ids) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor(ids)).logits.numpy()


def test_config_reads_writes_and_counts_the_untied_head(untied):
    reference, directory = untied
    config = hf.load_config(directory)
    assert config.tie_word_embeddings is False
    assert GPT2Config.from_hf_dict({"model_type": "gpt2"}).tie_word_embeddings is True  # GPT-2's default
    assert config.to_hf_dict()["tie_word_embeddings"] is False
    assert config.num_params() == sum(p.numel() for p in reference.parameters())
    assert config.flops_per_token(64) == config.replace(tie_word_embeddings=True).flops_per_token(64)
    with pytest.raises(JaxrapError, match="tie_word_embeddings must be true or false"):
        config.replace(tie_word_embeddings="no")


def test_logits_equal_transformers(untied):
    reference, directory = untied
    config, params = hf.load_pretrained(directory)
    np.testing.assert_array_equal(params["lm_head"]["kernel"], reference.lm_head.weight.detach().numpy().T)
    logits = np.asarray(gpt2.forward(gpt2.abstract(config)[0], params, IDS)[0])
    expected = _logits(reference, IDS)
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    tied = np.asarray(gpt2.forward(gpt2.abstract(config.replace(tie_word_embeddings=True))[0],
                                   {k: v for k, v in params.items() if k != "lm_head"}, IDS)[0])
    assert np.abs(tied - expected).max() > 0.1  # what main computed: the embedding as the head


def test_greedy_generation_equals_transformers_generate(untied):
    reference, directory = untied
    config, params = hf.load_pretrained(directory)
    prompt = IDS[0, :8].tolist()
    with torch.no_grad():
        expected = reference.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=24, min_new_tokens=24,
                                      pad_token_id=config.pad_token_id)[0, len(prompt):].tolist()
    sampling = SamplingArrays.from_params(SamplingParams(temperature=0.0, repetition_penalty=1.0, max_new_tokens=24, seed=0), None)
    tokens = np.concatenate(list(token_chunks(DecodeModel.from_params(config, params), prompt, sampling, num_samples=1)), 1)[0]
    assert tokens[tokens != NO_TOKEN].tolist() == expected


def test_scores_equal_transformers_log_probs(untied):
    reference, directory = untied
    context, continuation = IDS[0, :5].tolist(), IDS[0, 5:20].tolist()
    score = ContinuationScorer(load_model(directory)).score([context], [continuation])[0]
    log_probs = torch.log_softmax(torch.tensor(_logits(reference, [context + continuation])[0]), -1).numpy()
    np.testing.assert_allclose(score, [log_probs[4 + k, t] for k, t in enumerate(continuation)], atol=1e-4)


def test_export_round_trip_is_bit_exact_and_loads_in_transformers(untied, tmp_path):
    reference, directory = untied
    config, params = hf.load_pretrained(directory)
    hf.save_pretrained(tmp_path / "a", config, params)
    hf.save_pretrained(tmp_path / "b", *hf.load_pretrained(tmp_path / "a"))
    for name in ("model.safetensors", "config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    with safe_open(tmp_path / "a" / "model.safetensors", "np") as handle:
        np.testing.assert_array_equal(handle.get_tensor("lm_head.weight"), reference.lm_head.weight.detach().numpy())
    assert json.loads((tmp_path / "a" / "config.json").read_text())["tie_word_embeddings"] is False
    reloaded = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "a").eval()
    np.testing.assert_array_equal(_logits(reloaded, IDS), _logits(reference, IDS))


def test_pytorch_bin_and_flax_msgpack_load_the_untied_head(untied, tmp_path):
    from flax import serialization

    reference, directory = untied
    _, expected = hf.load_pretrained(directory)
    for name in ("bin", "flax"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text((directory / "config.json").read_text())
    torch.save(reference.state_dict(), tmp_path / "bin" / "pytorch_model.bin")
    # transformers' (v4) Flax layout: Conv1D kernels (out, in), the head's nn.Dense kernel (in, out).
    def to_flax(tree, path=()):
        if isinstance(tree, dict):
            return {str(k): to_flax(v, (*path, k)) for k, v in tree.items()}
        return np.asarray(tree).T if path[-1] == "kernel" and path[0] != "lm_head" else np.asarray(tree)

    flax_params = to_flax(expected)
    msgpack = serialization.msgpack_serialize(
        {"transformer": {k: v for k, v in flax_params.items() if k != "lm_head"}, "lm_head": flax_params["lm_head"]}
    )
    (tmp_path / "flax" / "flax_model.msgpack").write_bytes(msgpack)
    for name in ("bin", "flax"):
        loaded = hf.load_pretrained(tmp_path / name)[1]
        for x, y in zip(jax.tree.leaves(loaded), jax.tree.leaves(expected), strict=True):
            np.testing.assert_array_equal(x, y)


def test_a_missing_or_misshapen_head_is_refused_naming_the_tensor(untied, tmp_path):
    from safetensors.numpy import save_file

    _, directory = untied
    (tmp_path / "config.json").write_text((directory / "config.json").read_text())
    with safe_open(directory / "model.safetensors", "np") as handle:
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    save_file({k: v for k, v in tensors.items() if k != "lm_head.weight"}, tmp_path / "model.safetensors")
    with pytest.raises(JaxrapError, match=r"no tensor lm_head\.weight \(config.json sets tie_word_embeddings: false\)"):
        hf.load_pretrained(tmp_path)
    save_file({**tensors, "lm_head.weight": tensors["lm_head.weight"][:-1]}, tmp_path / "model.safetensors")
    with pytest.raises(JaxrapError, match=r"tensor lm_head\.weight has shape \(299, 32\), but config.json implies \(300, 32\)"):
        hf.load_pretrained(tmp_path)
    config, params = hf.load_pretrained(directory)
    with pytest.raises(JaxrapError, match="without an lm_head do not match tie_word_embeddings: false"):
        hf.save_pretrained(tmp_path / "out", config, {k: v for k, v in params.items() if k != "lm_head"})


def test_a_tied_model_has_no_head_of_its_own(tiny_config, tmp_path):
    _, params = gpt2.build(tiny_config, seed=3)
    assert "lm_head" not in params
    hf.save_pretrained(tmp_path, tiny_config, params)
    with safe_open(tmp_path / "model.safetensors", "np") as handle:
        assert not any(name.startswith("lm_head") for name in handle.keys())
    assert json.loads((tmp_path / "config.json").read_text())["tie_word_embeddings"] is True


def test_init_writes_an_untied_model(tiny_tokenizer_dir, tmp_path):
    shape = tmp_path / "shape.yaml"
    shape.write_text("n_layer: 1\nn_head: 2\nn_embd: 16\nn_positions: 32\ntie_word_embeddings: false\n")
    out = tmp_path / "model"
    assert main(["init", "--config", str(shape), "--tokenizer", str(tiny_tokenizer_dir), "--out", str(out)]) == 0
    config, params = hf.load_pretrained(out)
    assert params["lm_head"]["kernel"].shape == (16, config.vocab_size)
    reference = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    logits = np.asarray(gpt2.forward(gpt2.abstract(config)[0], params, IDS[:, :16])[0])
    np.testing.assert_allclose(logits, _logits(reference, IDS[:, :16]), atol=1e-4)


def test_fine_tuning_trains_grows_and_exports_the_head(untied, tiny_corpus_dir, tmp_path):
    """A few steps from the untied model, with an artist token added to its tokenizer: the head
    grows a column like the embedding's row, is decayed as a kernel, moves, and exports."""
    from jaxrap.config import MeshConfig, load_config
    from jaxrap.rundir import load_run_model
    from jaxrap.sharding import make_mesh
    from jaxrap.train.pipeline import run_training
    from jaxrap.train.trackers import MemoryTracker

    _, directory = untied
    _, start = hf.load_pretrained(directory)
    assert decay_mask(start)["lm_head"]["kernel"] is True
    config = load_config(None, [
        f"data.path={tiny_corpus_dir}", f"model.init={directory}", "data.block_size=16", "data.artist_tokens=true",
        "train.per_device_batch_size=4", "train.steps=3", "train.log_every=1", "train.eval_every=3",
        "optim.lr=1e-2", "optim.warmup_steps=1",
    ])
    memory = MemoryTracker()
    run_training(config, tmp_path / "run", trackers=[memory], say=memory.messages.append,
                 mesh=make_mesh(MeshConfig(), jax.devices()[:1]), async_checkpoints=False)
    run = load_run_model(tmp_path / "run")
    head, wte = run.params["lm_head"]["kernel"], run.params["wte"]["embedding"]
    old = start["lm_head"]["kernel"].shape[1]
    assert run.config.tie_word_embeddings is False and head.shape == (32, len(run.tokenizer)) == wte.T.shape
    assert len(run.tokenizer) > old  # <|artist:unknown|> was added
    assert np.abs(head[:, :old] - start["lm_head"]["kernel"]).max() > 1e-3  # trained
    assert np.abs(head - wte.T).max() > 0.1  # still its own matrix

    out = tmp_path / "export"
    assert main(["export", "--run-dir", str(tmp_path / "run"), "--out", str(out)]) == 0
    reference = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    logits = np.asarray(gpt2.forward(gpt2.abstract(run.config)[0], run.params, IDS)[0])
    np.testing.assert_allclose(logits, _logits(reference, IDS), atol=1e-4)
