"""Hugging Face checkpoint I/O: every format loads to the same params; saves round-trip."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from jax.sharding import PartitionSpec as P

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


def test_missing_weights_and_unsupported_configs_are_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 1}))
    with pytest.raises(JaxrapError, match="no weights found"):
        hf.load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "falcon"}))
    with pytest.raises(JaxrapError, match="model_type 'falcon' is not supported; jaxrap runs gpt2, llama, mistral, qwen2, qwen3"):
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


# --- Llama-style checkpoints: sharded files, streamed onto the mesh, refused before reading ---


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    """A random-init transformers LlamaForCausalLM (GQA 4/2) saved in bfloat16, in two shards
    with model.safetensors.index.json, as large checkpoints come."""
    config = transformers.LlamaConfig(
        vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, initializer_range=0.1,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).to(torch.bfloat16).eval()
    directory = tmp_path_factory.mktemp("llama_sharded")
    model.save_pretrained(directory, max_shard_size="60KB")
    assert (directory / "model.safetensors.index.json").is_file()
    return model, directory


def test_sharded_bfloat16_safetensors_load_exactly(llama_dir):
    model, directory = llama_dir
    config, params = hf.load_pretrained(directory)
    state = {name: p.float().numpy() for name, p in model.state_dict().items()}
    np.testing.assert_array_equal(params["embed_tokens"]["embedding"], state["model.embed_tokens.weight"])
    np.testing.assert_array_equal(params["layers"][1]["self_attn"]["k_proj"]["kernel"].T, state["model.layers.1.self_attn.k_proj.weight"])
    assert params["layers"][0]["mlp"]["down_proj"]["kernel"].dtype == np.float32


def test_tensors_go_straight_onto_their_sharding(llama_dir):
    """Each leaf arrives as a jax array placed by the rule of jaxrap.sharding (fsdp over 4
    devices), in the dtype asked for, equal to the host copy."""
    from jaxrap import sharding
    from jaxrap.config import MeshConfig
    from jaxrap.model import lm

    _, directory = llama_dir
    config, host = hf.load_pretrained(directory)
    mesh = sharding.make_mesh(MeshConfig(data=1, fsdp=4))
    shardings = sharding.state_shardings(mesh, lm.abstract(config)[1])
    _, placed = hf.load_pretrained(directory, shardings=shardings, dtype=jnp.bfloat16)
    embedding = placed["embed_tokens"]["embedding"]
    assert embedding.sharding == shardings["embed_tokens"]["embedding"] and embedding.dtype == jnp.bfloat16
    assert embedding.sharding.spec == P("fsdp")  # 256 x 64: the vocab rows split over 4 devices
    assert len(embedding.addressable_shards) == 4 and embedding.addressable_shards[0].data.shape == (64, 64)
    for ours, expected in zip(jax.tree.leaves(placed), jax.tree.leaves(host), strict=True):
        np.testing.assert_array_equal(np.asarray(ours, np.float32), expected)  # bfloat16 file values: exact


def test_a_missing_or_misshapen_tensor_is_named_before_any_weight_is_read(llama_dir, tmp_path, monkeypatch):
    from safetensors.numpy import save_file

    from jaxrap.model import tensor_files

    _, directory = llama_dir
    reads = []
    real = tensor_files._safetensors

    def counting(files):
        opened = real(files)
        return tensor_files.TensorFiles(opened.shapes, lambda name: reads.append(name) or opened.read(name))

    monkeypatch.setattr(tensor_files, "_safetensors", counting)
    config, params = hf.load_pretrained(directory)
    (tmp_path / "config.json").write_text((directory / "config.json").read_text())
    tensors = {hf.hf_name(config, tuple(k.key for k in path)): (leaf.T if path[-1].key == "kernel" else leaf)
               for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items() if k != "model.layers.1.mlp.up_proj.weight"},
              tmp_path / "model.safetensors")
    reads.clear()
    with pytest.raises(JaxrapError, match=r"no tensor model\.layers\.1\.mlp\.up_proj\.weight \(is it a Llama-style LM"):
        hf.load_pretrained(tmp_path)
    bad = {**tensors, "model.layers.0.self_attn.v_proj.weight": np.zeros((64, 64), np.float32)}
    save_file({k: np.ascontiguousarray(v) for k, v in bad.items()}, tmp_path / "model.safetensors")
    misshapen = r"tensor model\.layers\.0\.self_attn\.v_proj\.weight has shape \(64, 64\), but config.json implies \(32, 64\)"
    with pytest.raises(JaxrapError, match=misshapen):
        hf.load_pretrained(tmp_path)
    assert reads == []  # both refused from the headers alone


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_type": "gemma"}, "model_type 'gemma' is not supported; jaxrap runs gpt2, llama, mistral, qwen2, qwen3"),
        ({"rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e4}}, "RoPE scaling type 'yarn' is not supported"),
        ({"rope_scaling": {"type": "dynamic", "factor": 4.0}}, "RoPE scaling type 'dynamic' is not supported"),
        ({"num_key_value_heads": 3}, r"num_attention_heads \(4\) must be a multiple of num_key_value_heads \(3\)"),
        ({"hidden_size": 66, "head_dim": None}, r"hidden_size \(66\) must be divisible by num_attention_heads \(4\)"),
        ({"hidden_act": "gelu"}, "hidden_act 'gelu' is not supported"),
    ],
)
def test_bad_configs_are_refused_before_the_weights(llama_dir, tmp_path, change, message):
    _, directory = llama_dir
    data = {**json.loads((directory / "config.json").read_text()), **change}
    (tmp_path / "config.json").write_text(json.dumps(data))  # and no weights at all: the config speaks first
    with pytest.raises(JaxrapError, match=message):
        hf.load_pretrained(tmp_path)
