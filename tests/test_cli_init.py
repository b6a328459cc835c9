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
