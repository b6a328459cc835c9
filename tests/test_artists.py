"""Artist conditioning: control tokens in the tokenizer and the token cache, the embedding grown
for a pretrained model (mean row + noise), prompts that start like training songs, resume keeping
the ids, `jaxrap artists`, `generate --artist` errors, and the slow real-corpus run per artist."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import jax
import numpy as np
import pytest
from invented_lyrics import invented_song

from jaxrap.cli import main
from jaxrap.config import MeshConfig, load_config
from jaxrap.data.artists import (
    PROMPT_FORMAT_FILE,
    UNKNOWN_ARTIST,
    SongPrompt,
    artist_token,
    conditioned_artists,
    drops_artist,
    read_prompt_record,
    tokenizer_artists,
)
from jaxrap.data.tokenizer import load_tokenizer
from jaxrap.data.tokens import tokenize_split
from jaxrap.errors import JaxrapError
from jaxrap.load import load_model
from jaxrap.model import gpt2
from jaxrap.model.embeddings import NOISE_SCALE, grow_token_embeddings
from jaxrap.rundir import RunDir
from jaxrap.sample.generator import Generator
from jaxrap.sample.params import SamplingParams
from jaxrap.sharding import make_mesh
from jaxrap.train.pipeline import ensure_tokenizer, model_from_config, run_training

# Train songs per artist: two get their own token (min_artist_songs=5), "MC Rare" goes to unknown.
TRAIN_SONGS = {"MC Alpha": 8, "MC Beta": 6, "MC Rare": 2}


@pytest.fixture(scope="module")
def artist_corpus(tmp_path_factory) -> Path:
    seeds = iter(range(1000))

    def split(songs_per_artist: dict[str, int]) -> datasets.Dataset:
        return datasets.Dataset.from_list([
            {"text": invented_song(next(seeds), bars=6), "artist": artist, "title": "Titre", "year": -1}
            for artist, count in songs_per_artist.items() for _ in range(count)
        ])

    corpus = datasets.DatasetDict({
        "train": split(TRAIN_SONGS),
        "validation": split({"MC Alpha": 2, "MC Beta": 2, "MC Rare": 1}),
        "test": split({"MC Alpha": 1, "MC Beta": 1, "MC Rare": 1}),
    })
    directory = tmp_path_factory.mktemp("artist_corpus")
    corpus.save_to_disk(str(directory))
    return directory


DATA_AND_TRAIN = ("data.vocab_size=300", "data.block_size=32", "data.artist_tokens=true", "data.min_artist_songs=5",
                  "train.per_device_batch_size=2", "train.steps=2", "train.eval_every=2", "train.save_every=2")


def tiny_run_config(corpus: Path, *overrides: str):
    return load_config(None, [
        f"data.path={corpus}", *DATA_AND_TRAIN, "model.shape.n_layer=1", "model.shape.n_head=2",
        "model.shape.n_embd=16", "model.shape.n_positions=64", "model.shape.dropout=0.0", "optim.lr=1e-2", *overrides,
    ])


def train(config, run_dir: Path) -> None:
    run_training(config, run_dir, trackers=[], say=lambda text: None, mesh=make_mesh(MeshConfig(), jax.devices()[:1]))


@pytest.fixture(scope="module")
def artist_run(artist_corpus, tmp_path_factory) -> Path:
    """A scratch model trained 2 steps with artist tokens (tokenizer trained with them)."""
    run_dir = tmp_path_factory.mktemp("artist_run") / "run"
    train(tiny_run_config(artist_corpus), run_dir)
    return run_dir


# --- names and prefixes ----------------------------------------------------------------------


def test_artists_with_too_few_train_songs_share_the_unknown_token():
    train_artists = [name for name, count in TRAIN_SONGS.items() for _ in range(count)]
    assert conditioned_artists(train_artists, 5) == ["MC Alpha", "MC Beta"]
    assert conditioned_artists(train_artists, 1) == ["MC Alpha", "MC Beta", "MC Rare"]
    with pytest.raises(JaxrapError, match="cannot be control tokens"):
        conditioned_artists(["Bad|>Name"] * 3, 1)


def test_song_prompt_prefixes_and_name_resolution():
    prompt = SongPrompt(start_id=0, artist_ids={UNKNOWN_ARTIST: 2, "Oxmo_Puccino": 3, "MC Beta": 4})
    assert prompt.artists == ("MC Beta", "Oxmo_Puccino", UNKNOWN_ARTIST)
    assert prompt.prefix("Oxmo_Puccino") == [0, 3]
    assert prompt.prefix("oxmo puccino") == [0, 3]  # case and spaces for underscores
    assert prompt.prefix(None) == [0, 2]  # no artist: the unknown bucket
    assert prompt.row_prefix({"artist": "MC Beta"}) == [4] and prompt.row_prefix({"artist": "MC Rare"}) == [2]
    with pytest.raises(JaxrapError, match=r"unknown artist 'Booba'; this model knows: MC Beta, Oxmo_Puccino, unknown"):
        prompt.prefix("Booba")
    plain = SongPrompt(start_id=0)
    assert plain.prefix() == [0] and plain.row_prefix({"artist": "MC Beta"}) == []
    with pytest.raises(JaxrapError, match="trained without artist tokens"):
        plain.prefix("MC Beta")


def test_artist_dropout_is_a_fixed_seeded_choice_per_song():
    texts = [invented_song(seed, bars=2) for seed in range(2000)]
    dropped = [drops_artist(text, 0.1, seed=0) for text in texts]
    assert 0.08 < np.mean(dropped) < 0.12  # about the rate (binomial sd 0.007)
    assert dropped == [drops_artist(text, 0.1, seed=0) for text in texts]  # the same every time
    assert dropped != [drops_artist(text, 0.1, seed=1) for text in texts]  # another seed, other songs
    assert not any(drops_artist(text, 0.0, seed=0) for text in texts)
    # a higher rate drops a superset: the uniform number of a song does not depend on the rate
    assert all(drops_artist(text, 0.3, seed=0) for text, drop in zip(texts, dropped) if drop)

    prompt = SongPrompt(start_id=0, artist_ids={UNKNOWN_ARTIST: 2, "MC Beta": 4})
    rows = [{"artist": "MC Beta", "text": text} for text in texts[:200]]
    prefixes = [prompt.row_prefix(row, artist_dropout=0.1, seed=0) for row in rows]
    assert prefixes == [[2] if drop else [4] for drop in dropped[:200]]
    assert prompt.unknown_songs(rows, artist_dropout=0.1, seed=0) == sum(dropped[:200])
    assert prompt.unknown_songs(rows) == 0
    assert prompt.unknown_songs([*rows, {"artist": "MC Rare", "text": "x"}]) == 1  # no token of its own


# --- a scratch model: tokens in the trained BPE ----------------------------------------------------


def test_training_adds_the_tokens_and_prefixes_every_song(artist_run, artist_corpus):
    tokenizer = load_tokenizer(RunDir(artist_run).tokenizer_dir)
    ids = tokenizer_artists(tokenizer)
    assert list(ids) == [UNKNOWN_ARTIST, "MC Alpha", "MC Beta"] and list(ids.values()) == [2, 3, 4]  # after eos, pad
    assert tokenizer.decode([ids["MC Alpha"]], skip_special_tokens=True) == ""  # never shown in lyrics
    song_prompt = SongPrompt.for_tokenizer(tokenizer, artist_tokens=True)
    split = tokenize_split(artist_corpus, "train", tokenizer, song_prefix=song_prompt.row_prefix)
    artists = datasets.load_from_disk(str(artist_corpus))["train"]["artist"]
    expected = {"MC Alpha": ids["MC Alpha"], "MC Beta": ids["MC Beta"], "MC Rare": ids[UNKNOWN_ARTIST]}
    assert [int(split.song(i)[0]) for i in range(split.num_songs)] == [expected[a] for a in artists]


def test_training_records_how_many_train_songs_started_with_unknown(artist_run, artist_corpus, tmp_path):
    assert read_prompt_record(artist_run)["unknown_train_songs"] == TRAIN_SONGS["MC Rare"]  # the rare artist's
    assert load_model(artist_run).unknown_train_songs() == TRAIN_SONGS["MC Rare"]

    named = tmp_path / "every_artist_named"  # every train artist has a token, no dropout: never trained
    train(tiny_run_config(artist_corpus, "data.min_artist_songs=1"), named)
    assert read_prompt_record(named)["unknown_train_songs"] == 0
    assert load_model(named).unknown_train_songs() == 0
    (named / PROMPT_FORMAT_FILE).unlink()  # a run trained before the record: counted from its corpus
    assert load_model(named).unknown_train_songs() == 0

    out = tmp_path / "exported"
    assert main(["export", "--run-dir", str(artist_run), "--out", str(out)]) == 0
    assert read_prompt_record(out)["unknown_train_songs"] == TRAIN_SONGS["MC Rare"]
    assert load_model(out).unknown_train_songs() == TRAIN_SONGS["MC Rare"]


def test_artist_dropout_prefixes_a_share_of_the_train_songs_with_unknown(artist_corpus, tmp_path):
    run_dir = tmp_path / "run"
    train(tiny_run_config(artist_corpus, "data.min_artist_songs=1", "data.artist_dropout=0.5", "train.seed=3"), run_dir)
    tokenizer = load_tokenizer(RunDir(run_dir).tokenizer_dir)
    ids = tokenizer_artists(tokenizer)
    corpus = datasets.load_from_disk(str(artist_corpus))
    train_rows = list(corpus["train"])
    dropped = [drops_artist(row["text"], 0.5, seed=3) for row in train_rows]
    assert 0 < sum(dropped) < len(dropped)
    # the cache entry training wrote: dropped songs start with unknown, the others with their artist
    song_prompt = SongPrompt.for_tokenizer(tokenizer, artist_tokens=True)
    split = tokenize_split(artist_corpus, "train", tokenizer,
                           song_prefix=lambda row: song_prompt.row_prefix(row, artist_dropout=0.5, seed=3))
    assert [int(split.song(i)[0]) for i in range(split.num_songs)] == [
        ids[UNKNOWN_ARTIST] if drop else ids[row["artist"]] for row, drop in zip(train_rows, dropped)
    ]
    plain = tokenize_split(artist_corpus, "train", tokenizer, song_prefix=song_prompt.row_prefix)
    assert plain.key != split.key  # the cache key tells them apart (it hashes every prefix)
    assert {p.name for p in (artist_corpus / "token_cache").iterdir()} >= {f"train-{split.key}"}
    validation = tokenize_split(artist_corpus, "validation", tokenizer, song_prefix=song_prompt.row_prefix)
    assert [int(validation.song(i)[0]) for i in range(validation.num_songs)] == [
        ids[row["artist"]] for row in corpus["validation"]  # validation keeps every song's own
    ]
    assert read_prompt_record(run_dir)["unknown_train_songs"] == sum(dropped)


def test_prompts_start_like_training_songs_and_the_artist_changes_the_logits(artist_run):
    generator = Generator.load(artist_run)
    ids = tokenizer_artists(generator.tokenizer)
    text_ids = generator.tokenizer("Le béton", add_special_tokens=False)["input_ids"]
    assert generator.encode_prompt("Le béton", "MC Beta") == [0, ids["MC Beta"], *text_ids]
    assert generator.encode_prompt("Le béton") == [0, ids[UNKNOWN_ARTIST], *text_ids]
    assert generator.artists == ("MC Alpha", "MC Beta", UNKNOWN_ARTIST)

    loaded = load_model(artist_run)
    graphdef, _ = gpt2.abstract(loaded.config)
    forward = jax.jit(lambda params, x: gpt2.forward(graphdef, params, x)[0])
    alpha, beta = (generator.encode_prompt("Le béton", name) for name in ("MC Alpha", "MC Beta"))
    logits = np.asarray(forward(loaded.params, np.array([alpha, beta], np.int32)))  # (2, T, V)
    assert np.abs(logits[0, 2:] - logits[1, 2:]).max() > 1e-3  # the text reads differently per artist

    texts = generator.generate("Le béton", SamplingParams(max_new_tokens=6, seed=1, artist="mc alpha"))
    assert texts == generator.generate("Le béton", SamplingParams(max_new_tokens=6, seed=1, artist="MC Alpha"))


def test_resume_keeps_the_token_ids(artist_run, artist_corpus, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(artist_run, run_dir)
    before = tokenizer_artists(load_tokenizer(RunDir(run_dir).tokenizer_dir))
    train(tiny_run_config(artist_corpus, "train.steps=3", "train.eval_every=3", "train.save_every=3"), run_dir)
    assert load_model(run_dir).step == 3
    assert tokenizer_artists(load_tokenizer(RunDir(run_dir).tokenizer_dir)) == before
    with pytest.raises(JaxrapError, match="data.min_artist_songs"):  # another artist set is another run
        train(tiny_run_config(artist_corpus, "train.steps=4", "data.min_artist_songs=1"), run_dir)


def test_jaxrap_artists_lists_them_and_generate_refuses_unknown_names(artist_run, tmp_path, capsys):
    assert main(["artists", "--model", str(artist_run)]) == 0
    assert capsys.readouterr().out == "MC Alpha\nMC Beta\nunknown\n"

    base = ["generate", "--model", str(artist_run), "--max-new-tokens", "4", "--seed", "0", "--prompt", "Le"]
    assert main([*base, "--artist", "Booba"]) == 2
    captured = capsys.readouterr()
    assert "unknown artist 'Booba'; this model knows: MC Alpha, MC Beta, unknown" in captured.err
    assert captured.out == ""  # refused before any output
    assert main([*base, "--artist", "MC Beta"]) == 0
    assert capsys.readouterr().out.startswith("Le")

    out = tmp_path / "exported"
    assert main(["export", "--run-dir", str(artist_run), "--out", str(out)]) == 0
    assert json.loads((out / PROMPT_FORMAT_FILE).read_text())["artist_tokens"] is True
    capsys.readouterr()
    assert main(["artists", "--model", str(out)]) == 0
    assert capsys.readouterr().out == "MC Alpha\nMC Beta\nunknown\n"
    exported = Generator.load(out)
    assert exported.encode_prompt("Le", "MC Beta") == Generator.load(artist_run).encode_prompt("Le", "MC Beta")


def test_models_without_artist_tokens_refuse_artist(tiny_lyrics_model_dir, capsys):
    assert main(["artists", "--model", str(tiny_lyrics_model_dir)]) == 2
    assert "plain Hugging Face model, so it knows no artists" in capsys.readouterr().err
    assert main(["generate", "--model", str(tiny_lyrics_model_dir), "--prompt", "Le", "--artist", "MC Beta"]) == 2
    assert "this model has no artist tokens" in capsys.readouterr().err
    generator = Generator.load(tiny_lyrics_model_dir)  # plain HF: exactly the tokenizer's ids
    assert generator.encode_prompt("Le béton") == generator.tokenizer("Le béton")["input_ids"]


# --- a pretrained model: tokens added, embedding grown ------------------------------------------------


def test_fine_tuning_grows_the_embedding_with_mean_rows(tiny_lyrics_model_dir, artist_corpus, tmp_path):
    config = load_config(None, [f"data.path={artist_corpus}", *DATA_AND_TRAIN, f"model.init={tiny_lyrics_model_dir}"])
    run = RunDir(tmp_path / "run")
    tokenizer = ensure_tokenizer(config, run, artist_corpus, lambda text: None, reuse=False)
    old_size = len(load_tokenizer(tiny_lyrics_model_dir))
    ids = tokenizer_artists(tokenizer)
    assert list(ids.values()) == [old_size, old_size + 1, old_size + 2] and len(tokenizer) == old_size + 3
    model_config, init_params = model_from_config(config, run, tokenizer, resuming=False)
    assert model_config.vocab_size == old_size + 3
    params = init_params()
    wte = params["wte"]["embedding"]
    old = load_model(tiny_lyrics_model_dir).params["wte"]["embedding"]
    assert wte.shape == (old_size + 3, old.shape[1])
    np.testing.assert_array_equal(wte[:old_size], old)  # pretrained rows untouched
    new = wte[old_size:]
    assert np.all(np.abs(new - old.mean(0)) <= 6 * NOISE_SCALE * old.std(0))  # mean + small noise
    assert len({row.tobytes() for row in new}) == 3  # each artist its own row

    # Tied head: each new token's logit is about the mean old logit, so (Jensen) it starts at
    # most about as likely as an average old token, and the old tokens' logits do not move.
    graphdef, _ = gpt2.abstract(model_config)
    text = np.array([tokenizer("Le béton la nuit", add_special_tokens=False)["input_ids"]], np.int32)
    logits = np.asarray(jax.jit(lambda p, x: gpt2.forward(graphdef, p, x)[0])(params, text))[0]  # (T, V)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    assert np.all(probs[:, old_size:] < 1.05 / old_size)
    small_graphdef, _ = gpt2.abstract(load_model(tiny_lyrics_model_dir).config)
    before = np.asarray(gpt2.forward(small_graphdef, load_model(tiny_lyrics_model_dir).params, text)[0])[0]
    np.testing.assert_allclose(logits[:, :old_size], before, atol=1e-5)


def test_growing_keeps_old_rows_and_refuses_to_shrink():
    params = {"wte": {"embedding": np.arange(12, dtype=np.float32).reshape(4, 3)}, "wpe": {"embedding": np.zeros((2, 3))}}
    grown = grow_token_embeddings(params, 6, [4, 5], seed=0)
    np.testing.assert_array_equal(grown["wte"]["embedding"][:4], params["wte"]["embedding"])
    np.testing.assert_allclose(grown["wte"]["embedding"][4:], [[4.5, 5.5, 6.5]] * 2, atol=NOISE_SCALE * 4 * 6)
    assert grown["wpe"] is params["wpe"]
    with pytest.raises(ValueError, match="shrink"):
        grow_token_embeddings(params, 3, [], seed=0)


def test_an_untied_head_grows_its_columns_like_the_embedding_rows():
    wte = np.arange(12, dtype=np.float32).reshape(4, 3)
    params = {"wte": {"embedding": wte}, "lm_head": {"kernel": -wte.T}}  # head (C, V)
    grown = grow_token_embeddings(params, 6, [4, 5], seed=0)
    head = grown["lm_head"]["kernel"]
    assert head.shape == (3, 6)
    np.testing.assert_array_equal(head[:, :4], -wte.T)
    np.testing.assert_allclose(head[:, 4:].T, [[-4.5, -5.5, -6.5]] * 2, atol=NOISE_SCALE * 4 * 6)
    assert np.abs(head[:, 4] - head[:, 5]).max() > 0  # distinct from the start, as the rows


# --- the real corpus ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_tiny_model_trains_with_artist_tokens_on_the_real_corpus_and_writes_per_artist(real_corpus_dir, tmp_path):
    config = load_config(None, [
        f"data.path={real_corpus_dir}", "data.vocab_size=1024", "data.block_size=64", "data.artist_tokens=true",
        "model.shape.n_layer=2", "model.shape.n_head=2", "model.shape.n_embd=64", "model.shape.n_positions=64",
        "model.shape.dropout=0.0", "train.per_device_batch_size=8", "train.steps=60", "train.eval_every=60",
        "train.save_every=60", "optim.lr=1e-2", "optim.warmup_steps=10",
    ])
    train(config, tmp_path / "run")
    generator = Generator.load(tmp_path / "run")
    corpus_artists = set(datasets.load_from_disk(str(real_corpus_dir))["train"]["artist"])
    named = generator.artists[:-1]
    assert len(named) >= 5 and set(named) <= corpus_artists and generator.artists[-1] == UNKNOWN_ARTIST
    for artist in named:
        (text,) = generator.generate("", SamplingParams(max_new_tokens=24, seed=0, artist=artist))
        assert text.strip() and artist_token(artist) not in text, artist


def test_the_readmes_guidance_command_runs_clean_on_a_run_of_the_shipped_config(artist_corpus, tmp_path):
    """Issue 17: the README recommends `--artist NAME --artist-guidance 12`, and every model
    trained with the shipped configs warned that it "never trained <|artist:unknown|>" (they
    trained with data.artist_dropout 0). configs/tiny_cpu.yaml as shipped, only shrunk, with
    every artist named, then the command as a user runs it: nothing on stderr."""
    import subprocess
    import sys

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "tiny_cpu.yaml", [
        f"data.path={artist_corpus}", "data.vocab_size=300", "data.block_size=32", "data.min_artist_songs=1",
        "model.shape.n_layer=1", "model.shape.n_head=2", "model.shape.n_embd=16", "model.shape.n_positions=64",
        "train.per_device_batch_size=2", "train.steps=2", "train.eval_every=2", "train.save_every=2",
    ])
    assert config.data.artist_dropout == 0.1
    train(config, tmp_path / "run")
    assert read_prompt_record(tmp_path / "run")["unknown_train_songs"] == 2  # of 16, for train.seed 0
    command = [sys.executable, "-m", "jaxrap", "generate", "--model", str(tmp_path / "run"), "--artist", "MC Alpha",
               "--prompt", "J'traîne au quartier\n", "--max-new-tokens", "16", "--seed", "1", "--artist-guidance", "12"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr[-2000:]
