"""The bad inputs of issue 18 as a user meets them: `jaxrap generate`, `eval` and `train` on a
model directory whose config.json or weights are wrong. Each is one line on stderr, exit 2, and
where the config alone can tell, it comes before any weight is read (these directories hold the
config and the tokenizer, but no weights at all: a weight read would say "no weights found")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from jaxrap.data.tokenizer import load_tokenizer
from jaxrap.model.llama_config import LlamaConfig
from jaxrap.model.registry import config_from_hf_dict
from jaxrap.sample.decode import MAX_CONTEXT, context_length

ENV = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}


def _jaxrap(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jaxrap", *args], capture_output=True, text=True, timeout=300, env={**ENV, **env})


def _one_line_error(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jaxrap: error: "), result.stderr[-2000:]
    assert message in lines[0], lines[0]
    assert "no weights found" not in lines[0]


def _model_dir(root: Path, name: str, llama_dir: Path, **changes) -> Path:
    """A copy of the Llama-style model's config.json (with ``changes``) and tokenizer, no weights."""
    directory = root / name
    directory.mkdir()
    data = {**json.loads((llama_dir / "config.json").read_text()), **changes}
    (directory / "config.json").write_text(json.dumps(data))
    load_tokenizer(llama_dir).save_pretrained(directory)
    return directory


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model_type": "gemma"}, "config.json: model_type 'gemma' is not supported; jaxrap runs gpt2, llama, mistral, qwen2, qwen3"),
        ({"rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0}},
         "RoPE scaling type 'yarn' is not supported; jaxrap supports default, linear, llama3"),
        ({"num_key_value_heads": 3}, "num_attention_heads (4) must be a multiple of num_key_value_heads (3)"),
        ({"hidden_size": 30, "head_dim": None}, "hidden_size (30) must be divisible by num_attention_heads (4)"),
        ({"vocab_size": 100}, "the tokenizer has 500 tokens but the model only 100"),
    ],
)
def test_generate_refuses_a_bad_config_before_any_weight(llama_lyrics_model_dir, tmp_path, changes, message):
    directory = _model_dir(tmp_path, "model", llama_lyrics_model_dir, **changes)
    _one_line_error(_jaxrap("generate", "--model", str(directory), "--prompt", "Le béton"), message)


def test_a_missing_or_misshapen_tensor_is_named(llama_lyrics_model_dir, tmp_path):
    from safetensors import safe_open

    with safe_open(llama_lyrics_model_dir / "model.safetensors", "np") as handle:
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    missing = _model_dir(tmp_path, "missing", llama_lyrics_model_dir)
    save_file({k: v for k, v in tensors.items() if k != "model.norm.weight"}, missing / "model.safetensors")
    _one_line_error(_jaxrap("generate", "--model", str(missing), "--prompt", "x"),
                    "checkpoint has no tensor model.norm.weight (is it a Llama-style LM checkpoint")
    misshapen = _model_dir(tmp_path, "misshapen", llama_lyrics_model_dir)
    save_file({**tensors, "lm_head.weight": np.zeros((499, 32), np.float32)}, misshapen / "model.safetensors")
    _one_line_error(_jaxrap("generate", "--model", str(misshapen), "--prompt", "x"),
                    "tensor lm_head.weight has shape (499, 32), but config.json implies (500, 32)")


def test_a_sliding_window_shorter_than_the_block_is_refused_with_the_figure(
    llama_lyrics_model_dir, tiny_corpus_dir, tmp_path
):
    directory = _model_dir(tmp_path, "mistral", llama_lyrics_model_dir, model_type="mistral", sliding_window=16)
    _one_line_error(
        _jaxrap("train", "--config", str(Path(__file__).resolve().parents[1] / "configs" / "llama_tiny_cpu.yaml"),
                "--run-dir", str(tmp_path / "run"), "--samples", "0", "--set", f"model.init={directory}",
                "--set", "model.shape=null", "--set", f"data.path={tiny_corpus_dir}", "--set", "data.block_size=32"),
        "data.block_size: must be <= the model's sliding_window (16), got 32",
    )
    _one_line_error(_jaxrap("eval", "--model", str(directory), "--data", str(tiny_corpus_dir), "--block-size", "32"),
                    "block size must be in 1..16 (the model's context, sliding_window), got 32")


def test_a_sliding_window_at_least_the_context_or_off_is_full_attention():
    base = {"model_type": "mistral", "hidden_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2,
            "max_position_embeddings": 128}
    assert config_from_hf_dict({**base, "sliding_window": 4096}).n_positions == 128
    assert config_from_hf_dict({**base, "sliding_window": None}).n_positions == 128
    assert config_from_hf_dict({**base}).sliding_window == 4096  # MistralConfig's default
    qwen = {**base, "model_type": "qwen2", "sliding_window": 16}
    assert config_from_hf_dict(qwen).n_positions == 128  # use_sliding_window is false by default
    assert config_from_hf_dict({**qwen, "use_sliding_window": True, "max_window_layers": 0}).n_positions == 16


def test_the_sampler_caps_a_long_context():
    long = LlamaConfig(hidden_size=32, num_attention_heads=4, max_position_embeddings=131072)
    assert context_length(long) == MAX_CONTEXT == 4096
    assert context_length(long.replace(max_position_embeddings=2048)) == 2048


@pytest.mark.slow
def test_llama_tiny_cpu_end_to_end_through_the_cli(real_corpus_dir, tmp_path):
    """configs/llama_tiny_cpu.yaml as shipped, shrunk: train, eval, generate with a rhyme scheme
    and a syllable target, export, and the export loaded by transformers' LlamaForCausalLM gives
    jaxrap's logits. The commands share a persistent compilation cache, as a user's do."""
    import torch
    import transformers

    from jaxrap.load import load_model
    from jaxrap.model import lm

    run, out = tmp_path / "run", tmp_path / "export"
    shrink = [f"data.path={real_corpus_dir}", "data.vocab_size=512", "data.block_size=64", "model.shape.n_layer=2",
              "model.shape.n_embd=64", "model.shape.n_positions=128", "train.steps=30", "train.eval_every=30",
              "train.save_every=30", "train.log_every=10"]
    command = ["train", "--config", str(Path(__file__).resolve().parents[1] / "configs" / "llama_tiny_cpu.yaml"),
               "--run-dir", str(run), "--samples", "1"]
    for override in shrink:
        command += ["--set", override]
    cache = {"JAXRAP_COMPILATION_CACHE": str(tmp_path / "xla")}
    trained = _jaxrap(*command, **cache)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "model: Llama 2 layers x 64 wide, 4 heads (2 key/value)" in trained.stdout
    evaluated = _jaxrap("eval", "--model", str(run), "--data", str(real_corpus_dir), "--json", "--no-judge",
                        JAX_DEBUG_LOG_MODULES="jax._src.compiler", **cache)  # logs each cache hit and miss
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert json.loads(evaluated.stdout)["loss"] < 6.3  # below uniform over 512 tokens
    assert "Persistent compilation cache hit for 'jit_" in evaluated.stderr  # what train compiled alike
    generated = _jaxrap("generate", "--model", str(run), "--prompt", "", "--rhyme-scheme", "AABB", "--syllables", "12",
                        "--max-bars", "4", "--seed", "0", "--artist", "Disiz", **cache)
    assert generated.returncode == 0, generated.stderr[-3000:]
    assert len(generated.stdout.strip().splitlines()) >= 2 and "bars met their targets" in generated.stderr
    exported = _jaxrap("export", "--run-dir", str(run), "--out", str(out))
    assert exported.returncode == 0, exported.stderr[-3000:]
    reference = transformers.LlamaForCausalLM.from_pretrained(out).eval()
    loaded = load_model(out)
    ids = np.array([loaded.tokenizer("Le béton la nuit")["input_ids"]])
    with torch.no_grad():
        expected = reference(torch.tensor(ids)).logits.numpy()
    np.testing.assert_allclose(np.asarray(lm.forward(lm.abstract(loaded.config)[0], loaded.params, ids)[0]), expected, atol=1e-4)
