"""Everything `jaxrap train` sets up around the loop: corpus, tokenizer, model, packed blocks.

``run_training(config, run_dir)`` is the whole job: it prepares the corpus when ``data.path``
holds none, trains a tokenizer when the model has none, builds or loads the model (any family,
through the one model interface ``jaxrap.model.lm``; with ``model.lora``, a frozen base and its
adapters, ``trainable``), packs the splits into blocks and hands the loop a ``forward``. The
loop itself (``loop.train``) knows nothing of the model; this module is the one place that ties
them together. Before any of it, the mesh is checked against the devices and the run directory
locked (``run_lock``: one writer).

With several processes, the files of the run directory (config, model shape, tokenizer) and a
prepared corpus are written by process 0 while the others wait: the run directory must be on a
filesystem every host sees.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaxrap.config import SCRATCH, RunConfig, flatten
from jaxrap.errors import JaxrapError
from jaxrap.rundir import RunDir
from jaxrap.shape_rules import block_size_problem

if TYPE_CHECKING:
    from jax.sharding import Mesh
    from transformers import PreTrainedTokenizerFast

    from jaxrap.data.batches import PackedBlocks
    from jaxrap.model.lm import Params
    from jaxrap.model.registry import LMConfig
    from jaxrap.train import loop
    from jaxrap.train.loop import TrainResult
    from jaxrap.train.trackers import Tracker

LYRICS_CSV_ENV = "JAXRAP_LYRICS_CSV"

# Keys that may change when a run is resumed: how long, how often, where the data come from,
# how many devices. Anything else (model, tokenizer, optimizer, batch shape, seed) would make
# the resumed run a different run.
RESUMABLE_KEYS = (
    "train.steps", "train.log_every", "train.eval_every", "train.save_every", "train.keep_checkpoints",
    "train.peak_flops", "train.eval_batch_size", "data.path", "data.source", "mesh.data", "mesh.fsdp",
)


def run_training(
    config: RunConfig,
    run_dir: str | Path,
    *,
    trackers: list[Tracker],
    source: str | None = None,
    say: Callable[[str], None] = print,
    mesh: Mesh | None = None,
    async_checkpoints: bool = True,
    check_memory: bool = False,
) -> TrainResult:
    """Train ``config`` in ``run_dir`` (resuming when it has checkpoints); the loop's TrainResult.

    Refused before any work (corpus, tokenizer, model) when the mesh does not fit the devices,
    when ``check_memory`` and the memory plan (``memory_plan``) does not fit them, or when
    another process trains in ``run_dir`` (``run_lock``, held until this returns).
    """
    import jax

    from jaxrap import sharding
    from jaxrap.train.run_lock import hold_run_lock

    run = RunDir(Path(run_dir))
    mesh = mesh or sharding.make_mesh(config.mesh)
    if check_memory:
        from jaxrap.train.memory_plan import refuse_what_cannot_fit

        refuse_what_cannot_fit(config, run, mesh, say)
    leader = jax.process_index() == 0
    agree = _agree_with_leader if jax.process_count() > 1 else None
    with hold_run_lock(run.lock_file, holder=leader, agree=agree):
        return _train_locked(config, run, trackers, source, say, mesh, async_checkpoints)


def _train_locked(
    config: RunConfig,
    run: RunDir,
    trackers: list[Tracker],
    source: str | None,
    say: Callable[[str], None],
    mesh: Mesh,
    async_checkpoints: bool,
) -> TrainResult:
    import jax

    from jaxrap.train import loop

    check_resumable(run, config)
    if config.model.lora is not None:  # targets and rank, refused before any data work
        from jaxrap.model import hf
        from jaxrap.train.trainable import lora_spec

        lora_spec(config, hf.load_config(hf.resolve_model_dir(config.model.init)))
    resuming = run.has_checkpoints()  # else files a failed earlier attempt left are rebuilt
    leader = jax.process_index() == 0
    corpus = _on_leader(lambda: ensure_corpus(config, source, say), "corpus")
    if leader:
        config.save(run.config_file)
    # Process 0 makes the tokenizer; the others read what it wrote.
    tokenizer = _on_leader(lambda: ensure_tokenizer(config, run, corpus, say, reuse=resuming or not leader), "tokenizer")
    model_config, init_params = model_from_config(config, run, tokenizer, resuming=resuming)
    if leader:
        run.model_config_file.write_text(_hf_json(model_config), encoding="utf-8")
    _barrier("model-config")

    model = _training_model(config, model_config, init_params, tokenizer)
    trained = sum(leaf.size for leaf in jax.tree.leaves(model.abstract_params))
    lora = config.model.lora
    say(
        f"model: {model_config.describe()}, vocab {model_config.vocab_size:,},"
        f" {model_config.num_params() / 1e6:.2f}M parameters, {config.model.dtype} compute"
        + (f"; LoRA rank {lora.rank} trains {trained:,} parameters ({trained / model_config.num_params():.2%})"
           f" over a frozen {config.model.base_dtype} base" if lora is not None else "")
    )
    train_blocks, eval_blocks = _blocks(corpus, tokenizer, config, run)
    return loop.train(
        config, model, train_blocks, eval_blocks, run.checkpoints_dir, trackers,
        mesh=mesh, async_checkpoints=async_checkpoints,
    )


def _training_model(
    config: RunConfig, model_config: LMConfig, load: Callable[..., Params], tokenizer: PreTrainedTokenizerFast
) -> loop.Model:
    """The loop's model (``trainable``): a LoRA run's records its base's fingerprint, and
    trains the rows of the artist tokens it added."""
    from jaxrap.train.trainable import training_model

    if config.model.lora is None:
        return training_model(config, model_config, load)
    from jaxrap.model import hf, lora

    new_ids = _added_token_ids(config, tokenizer) if config.data.artist_tokens else []
    fingerprint = lora.checkpoint_fingerprint(hf.resolve_model_dir(config.model.init))
    return training_model(config, model_config, load, new_ids=new_ids, base_fingerprint=fingerprint)


def check_resumable(run: RunDir, config: RunConfig) -> None:
    """Refuse to resume a run with a config that differs beyond ``RESUMABLE_KEYS``."""
    if not (run.config_file.is_file() and run.has_checkpoints()):
        return
    from jaxrap.config import load_config

    saved = flatten(load_config(run.config_file).model_dump(mode="json"))
    new = flatten(config.model_dump(mode="json"))
    changed = [
        f"{key} ({saved.get(key)!r} -> {new.get(key)!r})"
        for key in sorted(set(saved) | set(new))
        if saved.get(key) != new.get(key) and key not in RESUMABLE_KEYS
    ]
    if changed:
        raise JaxrapError(
            f"{run.path} has checkpoints of a run with another config: {'; '.join(changed)}."
            f" Resume with the same settings (only {', '.join(RESUMABLE_KEYS)} may change), or pick a new --run-dir"
        )


def default_source(config: RunConfig, source: str | None) -> str | None:
    """--source, else data.source, else $JAXRAP_LYRICS_CSV; None means the public corpus URL."""
    return source or config.data.source or os.environ.get(LYRICS_CSV_ENV) or None


def ensure_corpus(config: RunConfig, source: str | None, say: Callable[[str], None]) -> Path:
    """``data.path``, prepared first from the source when it holds no corpus."""
    from jaxrap.data.corpus import is_corpus
    from jaxrap.data.prepare import prepare_corpus
    from jaxrap.data.sources import DEFAULT_SOURCE_URL

    path = Path(config.data.path)
    if is_corpus(path):
        return path
    source = default_source(config, source)
    say(f"{path} holds no prepared corpus; preparing it from {source or DEFAULT_SOURCE_URL} (`jaxrap prepare` defaults)")
    stats = prepare_corpus([source] if source else [], path)
    splits = ", ".join(f"{name} {row['songs']:,}" for name, row in stats["splits"].items())
    say(f"prepared {stats['songs']:,} songs by {len(stats['artists'])} artists ({splits}) in {path}")
    return path


def ensure_tokenizer(
    config: RunConfig, run: RunDir, corpus: Path, say: Callable[[str], None], *, reuse: bool
) -> PreTrainedTokenizerFast:
    """The run's tokenizer, kept in RUN/tokenizer: reused (``reuse``) when there, else loaded or trained.

    ``model.tokenizer`` names one, or null means the pretrained model's own; for a scratch model
    with none, a byte-level BPE of ``data.vocab_size`` is trained on the corpus' train split.
    With ``data.artist_tokens``, the artist control tokens (``jaxrap.data.artists``) are in the
    trained BPE's special tokens, or added to a loaded tokenizer (the model's embedding grows to
    match, see ``model_from_config``). Reusing RUN/tokenizer keeps their ids on resume.
    """
    from jaxrap.data.artists import add_artist_tokens, artist_tokens_for, conditioned_artists
    from jaxrap.data.corpus import load_corpus
    from jaxrap.data.tokenizer import describe_tokenizer, load_tokenizer, train_tokenizer

    if reuse and (run.tokenizer_dir / "tokenizer_config.json").is_file():
        return load_tokenizer(run.tokenizer_dir)
    names = []
    if config.data.artist_tokens:
        train_artists = load_corpus(corpus)["train"]["artist"]
        names = conditioned_artists(train_artists, config.data.min_artist_songs)
        say(
            f"artist tokens: {len(names)} artist(s) with >= {config.data.min_artist_songs} train songs"
            f" ({', '.join(names) or 'none'}), the others share <|artist:unknown|>"
        )
    name = _tokenizer_name(config)
    if name is None:
        say(f"training a {config.data.vocab_size:,}-entry byte-level BPE on {corpus} (train split) -> {run.tokenizer_dir}")
        special = artist_tokens_for(names) if config.data.artist_tokens else ()
        tokenizer = train_tokenizer(corpus, config.data.vocab_size, run.tokenizer_dir, extra_special_tokens=special)
    else:
        tokenizer = load_tokenizer(name)
        if config.data.artist_tokens:
            add_artist_tokens(tokenizer, names)
        tokenizer.save_pretrained(run.tokenizer_dir)
    say(f"tokenizer: {describe_tokenizer(tokenizer)}")
    return tokenizer


def _tokenizer_name(config: RunConfig) -> str | None:
    """The tokenizer a run starts from: model.tokenizer, else the pretrained model's; None: train one."""
    return config.model.tokenizer or (config.model.init if config.model.init != SCRATCH else None)


def model_from_config(
    config: RunConfig, run: RunDir, tokenizer: PreTrainedTokenizerFast, *, resuming: bool
) -> tuple[LMConfig, Callable[..., Params]]:
    """(model config, init_params) for the run; init_params runs only when nothing is resumed.

    ``init_params(shardings=None)``: a scratch model's random init on the host, or a pretrained
    model's weights, read tensor by tensor onto ``shardings`` when given (on the host without),
    its embedding (and untied head) grown on the host for the artist tokens as they arrive.
    Everything the model's config alone can refuse (family, RoPE, heads, sliding window, block
    size, tokenizer size) is refused here, before any weight is read.
    """
    from jaxrap.model import hf, lm
    from jaxrap.model.embeddings import grow_as_loaded
    from jaxrap.model.registry import read_config, scratch_config

    init = config.model.init
    if resuming:
        model_config = read_config(run.model_config_file)  # the shape trained so far
    elif init == SCRATCH:
        shape = config.model.shape
        assert shape is not None  # the config gives a scratch model the default shape
        model_config = scratch_config(
            shape.model_type, n_layer=shape.n_layer, n_head=shape.n_head, n_embd=shape.n_embd,
            n_positions=shape.n_positions, dropout=shape.dropout, n_kv_head=shape.n_kv_head, n_inner=shape.n_inner,
            head_dim=shape.head_dim, rope_theta=shape.rope_theta, tie_word_embeddings=shape.tie_word_embeddings,
        ).for_tokenizer(tokenizer)
    else:
        model_config = hf.load_config(hf.resolve_model_dir(init))
        if config.data.artist_tokens:  # the artist tokens added to its tokenizer need rows
            model_config = model_config.replace(vocab_size=max(model_config.vocab_size, len(tokenizer)))
    if len(tokenizer) > model_config.vocab_size:
        raise JaxrapError(
            f"model.tokenizer has {len(tokenizer):,} tokens but {init} embeds only {model_config.vocab_size:,};"
            " use the model's own tokenizer (model.tokenizer: null)"
        )
    problem = block_size_problem(
        config.data.block_size, model_config.n_positions, f"the model's {model_config.context_name}"
    )
    if problem:
        raise JaxrapError(f"data.block_size: {problem}")

    def init_params(shardings: Any = None) -> Params:
        if init == SCRATCH:
            return lm.build(model_config, seed=config.train.seed)[1]
        adapt = None
        if config.data.artist_tokens:  # (V0, C) embedding, (C, V0) untied head -> grown as read
            adapt = grow_as_loaded(model_config, _added_token_ids(config, tokenizer), seed=config.train.seed)
        return hf.load_pretrained(init, shardings=shardings, adapt=adapt, dtype=config.model.base_dtype)[1]

    return model_config, init_params


def _added_token_ids(config: RunConfig, tokenizer: PreTrainedTokenizerFast) -> list[int]:
    """Ids of the artist tokens this run added to the pretrained tokenizer (those it already
    had, e.g. fine-tuning a conditioned export again, keep their trained rows)."""
    from jaxrap.data.artists import tokenizer_artists
    from jaxrap.data.tokenizer import load_tokenizer

    base = _tokenizer_name(config)
    assert base is not None  # a pretrained model's tokenizer: one was loaded, not trained
    base_size = len(load_tokenizer(base))
    return sorted(token_id for token_id in tokenizer_artists(tokenizer).values() if token_id >= base_size)


def _blocks(
    corpus: Path, tokenizer: PreTrainedTokenizerFast, config: RunConfig, run: RunDir
) -> tuple[PackedBlocks, PackedBlocks]:
    """The packed train and validation splits. Records in RUN/jaxrap_prompt.json how many train
    songs start with <|artist:unknown|> (none: guidance would mix with an untrained token)."""
    import functools

    import jax

    from jaxrap.data.artists import SongPrompt, write_prompt_format
    from jaxrap.data.batches import pack_blocks
    from jaxrap.data.corpus import load_corpus
    from jaxrap.data.tokens import tokenize_split

    # Each song after its eos: <|artist:NAME|> when conditioned (the same prefix eval and generate
    # use). Train songs picked by data.artist_dropout start with unknown's token instead; the
    # validation songs keep their own, so validation losses stay comparable across runs.
    song_prompt = SongPrompt.for_tokenizer(tokenizer, artist_tokens=config.data.artist_tokens)
    dropout, seed = config.data.artist_dropout, config.train.seed
    prefix = song_prompt.row_prefix if song_prompt.conditioned else None
    train_prefix = functools.partial(song_prompt.row_prefix, artist_dropout=dropout, seed=seed) if prefix else None
    train = _on_leader(lambda: tokenize_split(corpus, "train", tokenizer, song_prefix=train_prefix), "tokens-train")
    validation = _on_leader(lambda: tokenize_split(corpus, "validation", tokenizer, song_prefix=prefix), "tokens-validation")
    if jax.process_index() == 0:
        train_rows = load_corpus(corpus)["train"]
        unknown = song_prompt.unknown_songs(train_rows, artist_dropout=dropout, seed=seed) if prefix else None
        write_prompt_format(run.path, artist_tokens=song_prompt.conditioned, unknown_train_songs=unknown)
    block_size = config.data.block_size
    return pack_blocks(train, block_size), pack_blocks(validation, block_size)


def _hf_json(model_config: LMConfig) -> str:
    import json

    return json.dumps(model_config.to_hf_dict(), indent=2, sort_keys=True) + "\n"


def _barrier(name: str) -> None:
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"jaxrap-{name}")


def _agree_with_leader(ok: bool) -> bool:
    """Process 0's ``ok``, on every process."""
    import numpy as np
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.int32(ok)))


def _on_leader(make: Callable[[], Any], name: str) -> Any:
    """``make()`` on process 0 first (it writes files), then on the others (they read them)."""
    import jax

    if jax.process_index() == 0:
        result = make()
        _barrier(name)
        return result
    _barrier(name)
    return make()

