"""Hugging Face checkpoint I/O: every format loads to the same params; saves round-trip."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
import torch
import transformers

from jaxrap.errors import JaxrapError
from jaxrap.model import gpt2, hf


def _assert_same_params(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_save_load_save_is_bit_exact(torch_reference, tmp_path):
    _, directory = torch_reference
    config, params = hf.load_pretrained(directory)
    hf.save_pretrained(tmp_path / "a", config, params)
    config_a, params_a = hf.load_pretrained(tmp_path / "a")
    hf.save_pretrained(tmp_path / "b", config_a, params_a)
    assert config_a == config
    for name in ("model.safetensors", "config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_saved_directory_loads_in_transformers(torch_reference, tmp_path):
    reference, directory = torch_reference
    config, params = hf.load_pretrained(directory)
    hf.save_pretrained(tmp_path, config, params)
    reloaded = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    ids = torch.arange(20).reshape(2, 10)
    with torch.no_grad():
        np.testing.assert_array_equal(reloaded(ids).logits.numpy(), reference(ids).logits.numpy())


def test_pytorch_bin_and_flax_msgpack_load_the_same_weights(torch_reference, tmp_path):
    from flax import serialization

    reference, directory = torch_reference
    _, expected = hf.load_pretrained(directory)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "config.json").write_text((directory / "config.json").read_text())
    torch.save(reference.state_dict(), tmp_path / "bin" / "pytorch_model.bin")
    _assert_same_params(hf.load_pretrained(tmp_path / "bin")[1], expected)

    # transformers' (v4) Flax GPT-2 layout: {"transformer": {...}}, Conv1D kernels as (out, in).
    def to_flax(tree, path=()):
        if isinstance(tree, dict):
            return {str(k): to_flax(v, (*path, k)) for k, v in tree.items()}
        return np.asarray(tree).T if path[-1] == "kernel" else np.asarray(tree)

    (tmp_path / "flax").mkdir()
    (tmp_path / "flax" / "config.json").write_text((directory / "config.json").read_text())
    msgpack = serialization.msgpack_serialize({"transformer": to_flax(expected)})
    (tmp_path / "flax" / "flax_model.msgpack").write_bytes(msgpack)
    _assert_same_params(hf.load_pretrained(tmp_path / "flax")[1], expected)


def test_shape_mismatch_names_the_tensor(torch_reference, tmp_path):
    _, directory = torch_reference
    config = json.loads((directory / "config.json").read_text())
    config["n_inner"] = 64  # checkpoint's MLP is 128 wide
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "model.safetensors").write_bytes((directory / "model.safetensors").read_bytes())
    with pytest.raises(JaxrapError, match=r"tensor transformer\.h\.0\.mlp\.c_fc\.\w+ has shape .*config.json implies"):
        hf.load_pretrained(tmp_path)


def test_missing_weights_and_non_gpt2_configs_are_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 1}))
    with pytest.raises(JaxrapError, match="no weights found"):
        hf.load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(JaxrapError, match="GPT-2 checkpoints only"):
        hf.load_pretrained(tmp_path)
    with pytest.raises(JaxrapError, match="no config.json"):
        hf.load_pretrained(tmp_path / "..")


def test_unreachable_hub_id_says_how_to_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(JaxrapError, match="could not be fetched from the Hugging Face hub.*local model directory"):
        hf.load_pretrained("antoinelouis/belgpt2")


def test_corrupt_safetensors_is_a_clear_error(torch_reference, tmp_path):
    _, directory = torch_reference
    (tmp_path / "config.json").write_text((directory / "config.json").read_text())
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(JaxrapError, match="unreadable safetensors"):
        hf.load_pretrained(tmp_path)


def test_random_init_saves_a_loadable_model(tiny_config, tmp_path):
    _, params = gpt2.build(tiny_config, seed=3)
    hf.save_pretrained(tmp_path, tiny_config, params)
    assert hf.load_config(tmp_path) == tiny_config
    _assert_same_params(hf.load_pretrained(tmp_path)[1], params)
