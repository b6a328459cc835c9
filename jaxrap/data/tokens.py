"""The token cache: a corpus split tokenized once, as one flat memory-mapped token array.

Layout of ``CACHE/<split>-<key>/``::

    tokens.npy   (N,) uint16 (vocab <= 65,536) or uint32: every song's tokens, back to back
    offsets.npy  (num_songs + 1,) int64: song i is tokens[offsets[i]:offsets[i + 1]]
    meta.json    what was tokenized and how (split, sizes, special ids, options, seconds)

Each song's slice is ``song_prefix(row) + encode(text) + [eos]`` (eos when ``append_eos``).
``CACHE`` is ``<corpus>/token_cache`` unless a cache directory is given. ``key`` hashes the
split's texts, every song's prefix, the full tokenizer definition (vocabulary, merges,
pre-tokenizer, added tokens), the special ids and ``append_eos``, so a changed corpus,
tokenizer or option is re-tokenized into a new directory
while an unchanged one is read back without running the tokenizer. Old entries are kept (runs
with different tokenizers may share a corpus); delete ``token_cache`` to reclaim the space.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxrap.data.corpus import SPLITS, load_corpus
from jaxrap.data.tokenizer import encode_texts
from jaxrap.errors import JaxrapError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

CACHE_DIR_NAME = "token_cache"
CACHE_FORMAT = 1  # bump when the files' meaning changes, so old caches are not reused
UINT16_VOCAB_LIMIT = 2**16

# Token ids to put before a song's text, from its corpus row (text, artist, title, year).
# Issue 6 will prefix an artist control token: lambda row: [tokenizer.convert_tokens_to_ids(...)].
SongPrefix = Callable[[Mapping[str, Any]], Sequence[int]]


@dataclass(frozen=True)
class TokenizedSplit:
    """One split's songs as a flat token array; song i is ``tokens[offsets[i]:offsets[i + 1]]``."""

    tokens: np.ndarray  # (N,) uint16 or uint32, memory-mapped read-only
    offsets: np.ndarray  # (num_songs + 1,) int64, offsets[0] == 0, offsets[-1] == N
    eos_token_id: int
    pad_token_id: int
    vocab_size: int
    key: str  # the cache key; names this exact tokenization
    path: Path  # the cache entry directory

    @property
    def num_songs(self) -> int:
        return len(self.offsets) - 1

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)

    def song(self, index: int) -> np.ndarray:
        return self.tokens[self.offsets[index] : self.offsets[index + 1]]


def tokenize_split(
    corpus_dir: str | Path,
    split: str,
    tokenizer: PreTrainedTokenizerFast,
    *,
    cache_dir: str | Path | None = None,
    append_eos: bool = True,
    song_prefix: SongPrefix | None = None,
) -> TokenizedSplit:
    """The split's tokens from the cache, tokenizing (one batched call) on a miss.

    ``append_eos``: end every song with the tokenizer's eos (the end-of-song token).
    ``song_prefix``: token ids put before each song's text, from its row (see ``SongPrefix``).
    """
    if split not in SPLITS:
        raise JaxrapError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    dataset = load_corpus(corpus_dir)[split]
    vocab_size = len(tokenizer)
    texts = list(dataset["text"])
    prefixes = [[int(token) for token in song_prefix(row)] for row in dataset] if song_prefix else [[]] * len(texts)
    for row_index, prefix in enumerate(prefixes):
        if any(not 0 <= token < vocab_size for token in prefix):
            raise JaxrapError(
                f"{corpus_dir} {split} row {row_index}: song prefix {prefix} has ids outside the"
                f" tokenizer's vocabulary of {vocab_size}; add the tokens to the tokenizer first"
            )
    options = {"split": split, "append_eos": append_eos, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id, "vocab_size": vocab_size}
    key = _cache_key(texts, prefixes, tokenizer, options)
    entry = Path(cache_dir if cache_dir is not None else Path(corpus_dir) / CACHE_DIR_NAME) / f"{split}-{key}"
    if not (entry / "meta.json").is_file():
        _write_entry(entry, texts, prefixes, tokenizer, options, key)
    return TokenizedSplit(
        tokens=np.load(entry / "tokens.npy", mmap_mode="r"),
        offsets=np.load(entry / "offsets.npy"),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        vocab_size=vocab_size,
        key=key,
        path=entry,
    )


def _cache_key(texts: list[str], prefixes: list[list[int]], tokenizer: PreTrainedTokenizerFast, options: dict[str, Any]) -> str:
    digest = hashlib.sha256(f"jaxrap token cache v{CACHE_FORMAT}".encode())
    digest.update(json.dumps(options, sort_keys=True).encode())
    # Exactly what gets tokenized (cheap next to tokenizing it), whatever the corpus files hold besides.
    digest.update(json.dumps([texts, prefixes], ensure_ascii=False).encode())
    definition = json.loads(tokenizer.backend_tokenizer.to_str())
    # transformers sets padding/truncation on the backend per call; they do not change ids.
    definition.pop("padding", None)
    definition.pop("truncation", None)
    digest.update(json.dumps(definition, sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()[:16]


def _write_entry(
    entry: Path, texts: list[str], prefixes: list[list[int]], tokenizer: PreTrainedTokenizerFast, options: dict[str, Any], key: str
) -> None:
    started = time.perf_counter()
    ending = [tokenizer.eos_token_id] if options["append_eos"] else []
    songs = [prefix + ids + ending for prefix, ids in zip(prefixes, encode_texts(tokenizer, texts), strict=True)]
    dtype = np.uint16 if options["vocab_size"] <= UINT16_VOCAB_LIMIT else np.uint32
    offsets = np.concatenate([[0], np.cumsum([len(song) for song in songs])]).astype(np.int64)
    tokens = np.fromiter(itertools.chain.from_iterable(songs), dtype=dtype, count=int(offsets[-1]))
    meta = {**options, "key": key, "format": CACHE_FORMAT, "num_songs": len(songs),
            "num_tokens": int(offsets[-1]), "num_characters": sum(map(len, texts)),
            "dtype": np.dtype(dtype).name, "seconds": round(time.perf_counter() - started, 3)}
    # Write beside the entry, then rename: a crash never leaves a half-written entry behind.
    staging = entry.with_name(f"{entry.name}.tmp-{os.getpid()}")
    staging.mkdir(parents=True, exist_ok=True)
    np.save(staging / "tokens.npy", tokens)
    np.save(staging / "offsets.npy", offsets)
    (staging / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    try:
        staging.rename(entry)
    except OSError:  # another process wrote the same entry first; its files are identical
        shutil.rmtree(staging)
