"""Shared fixtures: tiny shapes only, so the whole suite runs in minutes on 2 CPU cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests must never reach the network; HF libraries honour these.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REAL_CORPUS_ENV = "JAXRAP_LYRICS_CSV"


@pytest.fixture(scope="session")
def real_corpus_csv() -> Path:
    """The real lyrics slice (../shared/data/lyrics_df_2.csv), named by $JAXRAP_LYRICS_CSV.

    Integration tests need it; .ci/run sets the variable. Missing it is a failure, not a
    skip: a skipped integration test would hide a broken pipeline.
    """
    value = os.environ.get(REAL_CORPUS_ENV)
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lyrics_df_2.csv"
    path = Path(value) if value else default
    if not path.is_file():
        pytest.fail(f"real corpus not found at {path}; set {REAL_CORPUS_ENV} to lyrics_df_2.csv")
    return path


@pytest.fixture(scope="session")
def tiny_config():
    from jaxrap.model.config import GPT2Config

    return GPT2Config(
        vocab_size=97, n_positions=64, n_embd=32, n_layer=2, n_head=4,
        bos_token_id=0, eos_token_id=0, pad_token_id=1,
    )


@pytest.fixture(scope="session")
def torch_reference(tiny_config, tmp_path_factory):
    """A random-init transformers GPT2LMHeadModel of the tiny shape, saved to a directory."""
    import torch
    import transformers

    fields = {k: v for k, v in tiny_config.to_hf_dict().items() if k not in ("architectures", "model_type")}
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**fields)).eval()
    directory = tmp_path_factory.mktemp("hf_reference")
    model.save_pretrained(directory)
    return model, directory
