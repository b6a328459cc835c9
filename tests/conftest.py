"""Shared fixtures: tiny shapes only, so the whole suite runs in minutes on 2 CPU cores."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from unittest import mock

import hypothesis
import pytest

# Tests must never reach the network; HF libraries honour these.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# Four virtual CPU devices for the whole session, set before jax is imported: tests/test_sharding.py
# compares a 4-device mesh with a 1-device one (jax.devices()[:1]). Un-sharded jits still run on
# device 0 alone.
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4".strip()
# No test reads or writes the user's persistent XLA compilation cache (jaxrap.compile_cache): it
# is off in this process and in every process a test starts; a test that wants one names its own.
os.environ["JAXRAP_COMPILATION_CACHE"] = ""

REAL_CORPUS_ENV = "JAXRAP_LYRICS_CSV"

# Property tests (Hypothesis) draw the same examples on every run and machine (derandomize), keep
# no example database, and have no per-example deadline: on a busy 2-core CPU a deadline only
# makes them flaky. Each test sets max_examples to stay within a few seconds.
hypothesis.settings.register_profile("jaxrap", derandomize=True, database=None, deadline=None)
hypothesis.settings.load_profile("jaxrap")


@pytest.fixture(scope="module")
def several_query_blocks():
    """Attention within a sequence by blocks of 8 queries (jaxrap.model.attention.query_blocks)
    for a whole test module, so that parity tests at 16-40 tokens cross several blocks;
    compiled functions are dropped before and after (blocks are read at trace time)."""
    import jax

    from jaxrap.model import attention

    with mock.patch.object(attention, "CPU_QUERY_BLOCK", 8):
        jax.clear_caches()
        yield
    jax.clear_caches()


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


# Invented bars (never lyrics from the real CSV) with what tokenizers trip on: accents, both
# apostrophes, « », œ, emojis, spaces before ? and !, digits.
_INVENTED_BARS = (
    "J'traîne au quartier, l’été brûle le béton",
    "« Ça va ? » qu'il m'demande, j'réponds « ouais, tranquille »",
    "Mon cœur bat en œuvre d'art, j'ai l'âme en chantier",
    "On rêvait d'Paris, on a eu la périph' 🔥",
    "Qu’est-ce que t’attends ? La pluie tombe, j’écris !",
    "Dix-huit ans, 1 000 rêves, zéro regret",
    "Aujourd'hui j'suis là, demain j'sais pas où 🎤",
    "L'ascenseur est en panne, comme l'espoir au bloc",
    "Ni Dieu ni maître, juste ma plume et mon cahier",
    "Frère, écoute : la rue n'pardonne à personne…",
)


@pytest.fixture(scope="session")
def tiny_corpus_dir(tmp_path_factory) -> Path:
    """A prepared corpus (the format `jaxrap prepare` writes) of invented songs: 30/6/6 songs."""
    import random

    import datasets

    rng = random.Random(0)

    def split(num_songs: int, first_id: int) -> datasets.Dataset:
        songs = []
        for song_id in range(first_id, first_id + num_songs):
            bars = [rng.choice(_INVENTED_BARS) for _ in range(rng.randint(3, 12))]
            songs.append({"text": "\n".join(bars), "artist": rng.choice(["Médine", "Shurik'n"]),
                          "title": f"Titre {song_id}", "year": rng.choice([-1, 1998, 2012])})
        return datasets.Dataset.from_list(songs)

    corpus = datasets.DatasetDict({"train": split(30, 0), "validation": split(6, 30), "test": split(6, 36)})
    directory = tmp_path_factory.mktemp("tiny_corpus")
    corpus.save_to_disk(str(directory))
    return directory


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tiny_corpus_dir, tmp_path_factory) -> Path:
    """A byte-level BPE of 300 entries trained on tiny_corpus_dir."""
    from jaxrap.data.tokenizer import train_tokenizer

    directory = tmp_path_factory.mktemp("tiny_tokenizer")
    train_tokenizer(tiny_corpus_dir, 300, directory)
    return directory


@pytest.fixture(scope="session")
def real_corpus_dir(real_corpus_csv, tmp_path_factory) -> Path:
    """The real lyrics slice prepared once per session with `jaxrap prepare` defaults."""
    from jaxrap.cli import main

    directory = tmp_path_factory.mktemp("real_corpus") / "rap"
    assert main(["prepare", "--source", str(real_corpus_csv), "--out", str(directory)]) == 0
    return directory


@pytest.fixture(scope="session")
def tiny_lyrics_model_dir(tiny_tokenizer_dir, tmp_path_factory) -> Path:
    """A random-init GPT-2 (2 layers, 32 wide, 128 positions) with the tiny tokenizer, saved in
    Hugging Face format: what `jaxrap generate --model` and transformers both load."""
    from jaxrap.data.tokenizer import load_tokenizer
    from jaxrap.model import gpt2, hf
    from jaxrap.model.config import GPT2Config

    tokenizer = load_tokenizer(tiny_tokenizer_dir)
    config = GPT2Config(n_positions=128, n_embd=32, n_layer=2, n_head=4).for_tokenizer(tokenizer)
    directory = tmp_path_factory.mktemp("tiny_lyrics_model")
    hf.save_pretrained(directory, config, gpt2.build(config, seed=0)[1], tokenizer=tokenizer)
    return directory


@pytest.fixture(scope="session")
def conditioned_model_dir(tiny_corpus_dir, tmp_path_factory) -> Path:
    """A random-init GPT-2 exported as jaxrap exports a run trained with artist tokens: a BPE
    with <|artist:unknown|>, <|artist:Médine|>, <|artist:Shurik'n|> (ids 2, 3, 4) and
    jaxrap_prompt.json, so prompts and scored songs start with eos and the artist token."""
    from jaxrap.data.artists import artist_tokens_for, write_prompt_format
    from jaxrap.data.tokenizer import train_tokenizer
    from jaxrap.model import gpt2, hf
    from jaxrap.model.config import GPT2Config

    directory = tmp_path_factory.mktemp("conditioned_model")
    tokenizer = train_tokenizer(tiny_corpus_dir, 300, directory, extra_special_tokens=artist_tokens_for(["Médine", "Shurik'n"]))
    config = GPT2Config(n_positions=128, n_embd=32, n_layer=2, n_head=4).for_tokenizer(tokenizer)
    hf.save_pretrained(directory, config, gpt2.build(config, seed=1)[1], tokenizer=tokenizer)
    write_prompt_format(directory, artist_tokens=True)
    return directory


@pytest.fixture(scope="session")
def subprocess_compilation_cache(tmp_path_factory) -> dict[str, str]:
    """Environment entries that give `jaxrap` subprocesses one persistent XLA compilation cache
    for the session (``jaxrap.compile_cache``), every program cached however quick.

    For tests that start several processes compiling the same programs (a run and its rerun):
    the later ones load them instead of compiling again. Opt-in, and for processes only: this
    pytest process does not get it (count_compilations counts XLA compilations).
    """
    return {"JAXRAP_COMPILATION_CACHE": str(tmp_path_factory.mktemp("subprocess_xla_cache"))}


@pytest.fixture
def count_compilations():
    """``with count_compilations() as compiled:`` collects one entry per XLA compilation inside."""
    import jax

    @contextlib.contextmanager
    def counting():
        compiled = []

        def listener(event, duration, **kwargs):
            if event == "/jax/core/compile/backend_compile_duration":
                compiled.append(event)

        jax.monitoring.register_event_duration_secs_listener(listener)
        try:
            yield compiled
        finally:
            jax.monitoring.unregister_event_duration_listener(listener)

    return counting


@pytest.fixture(scope="session")
def sentencepiece_tokenizer_dir(tiny_corpus_dir, tmp_path_factory) -> Path:
    """A SentencePiece-style BPE (Llama's layout: ▁ word marks, <0x0A> byte fallback, a <s> the
    post-processor adds) of 500 entries trained on tiny_corpus_dir."""
    from jaxrap.data.tokenizer import train_sentencepiece_tokenizer

    directory = tmp_path_factory.mktemp("sentencepiece_tokenizer")
    train_sentencepiece_tokenizer(tiny_corpus_dir, 500, directory)
    return directory


def _llama_model_dir(tokenizer, directory: Path, seed: int) -> Path:
    """A random-init Llama-style model (2 layers, 32 wide, GQA 4/2, untied head, 128 positions)
    of ``tokenizer``'s vocabulary, saved in Hugging Face format with it."""
    from jaxrap.model import hf, lm
    from jaxrap.model.llama_config import LlamaConfig

    config = LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=128, initializer_range=0.2,
    ).for_tokenizer(tokenizer)
    hf.save_pretrained(directory, config, lm.build(config, seed=seed)[1], tokenizer=tokenizer)
    return directory


@pytest.fixture(scope="session")
def llama_lyrics_model_dir(sentencepiece_tokenizer_dir, tmp_path_factory) -> Path:
    """A plain Hugging Face Llama-style model with a SentencePiece-style tokenizer."""
    from jaxrap.data.tokenizer import load_tokenizer

    return _llama_model_dir(load_tokenizer(sentencepiece_tokenizer_dir), tmp_path_factory.mktemp("llama_lyrics_model"), 0)


@pytest.fixture(scope="session")
def conditioned_llama_model_dir(sentencepiece_tokenizer_dir, tmp_path_factory) -> Path:
    """The Llama-style model as jaxrap exports one trained with artist tokens: the SentencePiece
    tokenizer with <|artist:unknown|>, <|artist:Médine|>, <|artist:Shurik'n|> added, and
    jaxrap_prompt.json."""
    from jaxrap.data.artists import add_artist_tokens, write_prompt_format
    from jaxrap.data.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(sentencepiece_tokenizer_dir)
    add_artist_tokens(tokenizer, ["Médine", "Shurik'n"])
    directory = _llama_model_dir(tokenizer, tmp_path_factory.mktemp("conditioned_llama_model"), 1)
    write_prompt_format(directory, artist_tokens=True)
    return directory


def pytest_sessionfinish(session, exitstatus):
    """Free jax's compiled programs and collect the garbage while the session still runs. Under
    pytest-xdist, execnet sends SIGINT to a worker that has not exited 5 seconds after the session
    ends, and collecting a worker's heap took about that long (1.4 and 5.1 s, measured here): the
    KeyboardInterrupt showed up in the output, inside a gc callback, at the end of every run."""
    import gc
    import sys

    if "jax" in sys.modules:
        import jax

        jax.clear_caches()
    gc.collect()
