"""`jaxrap init`: a random-init model in HF format that transformers loads."""

from __future__ import annotations

import transformers

from jaxrap.cli import main
from jaxrap.model import hf


def test_init_writes_a_model_transformers_loads(tiny_tokenizer_dir, tmp_path, capsys):
    shape = tmp_path / "shape.yaml"
    shape.write_text("n_layer: 2\nn_head: 2\nn_embd: 32\nn_positions: 64\nlayer_norm_epsilon: 1e-5\n")
    out = tmp_path / "model"
    assert main(["init", "--config", str(shape), "--tokenizer", str(tiny_tokenizer_dir), "--out", str(out)]) == 0
    assert "random-init GPT-2" in capsys.readouterr().out

    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    config = hf.load_config(out)
    assert config.vocab_size == len(tokenizer)
    assert config.eos_token_id == tokenizer.eos_token_id
    assert config.pad_token_id == tokenizer.pad_token_id
    model = transformers.GPT2LMHeadModel.from_pretrained(out)
    assert model.config.n_layer == 2 and model.config.vocab_size == len(tokenizer)


def test_init_refuses_bad_input(tiny_tokenizer_dir, tmp_path, capsys):
    shape = tmp_path / "shape.yaml"
    shape.write_text("n_layers: 2\n")  # typo
    args = ["init", "--config", str(shape), "--tokenizer", str(tiny_tokenizer_dir), "--out", str(tmp_path / "m")]
    assert main(args) == 2
    assert "unknown GPT-2 config field(s) n_layers" in capsys.readouterr().err

    shape.write_text("n_layer: 1\nn_embd: 16\nn_head: 2\nn_positions: 16\n")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("user data")
    assert main(args) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "m" / "keep.txt").read_text() == "user data"


def test_init_writes_a_qwen3_that_transformers_loads(sentencepiece_tokenizer_dir, tmp_path, capsys):
    """A Hugging Face config.json of another family (model_type qwen3, q/k norm, explicit
    head_dim): the tokenizer's vocabulary and ids, saved for transformers' Qwen3ForCausalLM."""
    import json

    import numpy as np
    import torch

    from jaxrap.load import load_model
    from jaxrap.model import lm

    shape = tmp_path / "config.json"
    shape.write_text(json.dumps({"model_type": "qwen3", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                                 "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
                                 "max_position_embeddings": 64, "tie_word_embeddings": True}))
    out = tmp_path / "model"
    assert main(["init", "--config", str(shape), "--tokenizer", str(sentencepiece_tokenizer_dir), "--out", str(out)]) == 0
    assert "random-init Qwen3 2 layers x 32 wide, 4 heads (2 key/value)" in capsys.readouterr().out
    reference = transformers.Qwen3ForCausalLM.from_pretrained(out).eval()
    loaded = load_model(out)
    assert reference.config.vocab_size == len(loaded.tokenizer) == 500
    ids = np.array([loaded.tokenizer("Le béton")["input_ids"]])
    with torch.no_grad():
        expected = reference(torch.tensor(ids)).logits.numpy()
    np.testing.assert_allclose(np.asarray(lm.forward(lm.abstract(loaded.config)[0], loaded.params, ids)[0]), expected, atol=1e-4)
