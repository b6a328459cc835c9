"""Artist control tokens, and how a song starts for a model trained by jaxrap.

With ``data.artist_tokens``, every training song is prefixed with ``<|artist:NAME|>``, NAME as
in the corpus' ``artist`` column ("Oxmo_Puccino"). Artists with fewer than
``data.min_artist_songs`` train songs share ``<|artist:unknown|>``, which every conditioned
model has: rare artists, artists the model never saw, and prompts that name no artist use it.
The tokens are special tokens of the tokenizer (never split, dropped when decoding), in the
order ``unknown``, then the names sorted; the tokenizer saved in the run directory is the
record of which artists a model knows and of their ids, so a resumed run keeps them.

With ``data.artist_dropout`` p > 0, a share p of the train songs (a fixed choice per song, see
``drops_artist``) starts with ``<|artist:unknown|>`` instead of their artist's token, so the
unknown token learns what a song by anyone looks like: the unconditioned branch of classifier-free
guidance (``generate --artist-guidance``). Whether a model's unknown token was trained at all is
recorded at training time (``unknown_train_songs``, in ``PROMPT_FORMAT_FILE`` of the run and of
its export): with no dropout and every train artist named, it is its random init.

A song in the training stream (``jaxrap.data.batches``) follows an end-of-song token, then
its artist token: ``... <|endoftext|> <|artist:Disiz|> first bar\\n...``. ``SongPrompt``
encodes a prompt the same way, so generation, perplexity and attribution all see what
training saw. Plain Hugging Face models have no ``SongPrompt``: their prompts are encoded
exactly as their tokenizer does.

Pure Python (no jax): ``jaxrap artists`` answers without loading a model.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaxrap.errors import JaxrapError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

UNKNOWN_ARTIST = "unknown"
_TOKEN = re.compile(r"<\|artist:(.+)\|>")
# Beside an exported model (``jaxrap export``): says the model was trained by jaxrap, so its
# prompts start like its training songs. Absent from plain Hugging Face models.
PROMPT_FORMAT_FILE = "jaxrap_prompt.json"


def artist_token(name: str) -> str:
    return f"<|artist:{name}|>"


def conditioned_artists(train_artists: Iterable[str], min_songs: int) -> list[str]:
    """The artist names that get their own token: ``min_songs`` or more train songs, sorted."""
    counts = Counter(train_artists)
    names = sorted(name for name, count in counts.items() if count >= min_songs and name != UNKNOWN_ARTIST)
    bad = [name for name in names if "|>" in name or "\n" in name]
    if bad:
        raise JaxrapError(f"artist name(s) {bad} cannot be control tokens ('|>' or a newline inside); rename them in the CSV")
    return names


def artist_tokens_for(names: Sequence[str]) -> list[str]:
    """The control tokens of a conditioned model, in id order: unknown first, then ``names``."""
    return [artist_token(UNKNOWN_ARTIST), *(artist_token(name) for name in names)]


def tokenizer_artists(tokenizer: PreTrainedTokenizerFast) -> dict[str, int]:
    """Artist name -> token id for every ``<|artist:NAME|>`` special token of ``tokenizer``."""
    found = {}
    for token_id, added in sorted(tokenizer.added_tokens_decoder.items()):
        match = _TOKEN.fullmatch(added.content)
        if match:
            found[match.group(1)] = token_id
    return found


def add_artist_tokens(tokenizer: PreTrainedTokenizerFast, names: Sequence[str]) -> list[int]:
    """Add the artist tokens ``tokenizer`` lacks (a pretrained tokenizer); the new ids, in order."""
    before = len(tokenizer)
    tokenizer.add_tokens(artist_tokens_for(names), special_tokens=True)
    return list(range(before, len(tokenizer)))


def _canonical(name: str) -> str:
    return name.casefold().replace(" ", "_")


@dataclass(frozen=True)
class SongPrompt:
    """How a song starts for a jaxrap-trained model: end-of-song, then (when conditioned) its
    artist's token. ``artist_ids`` is empty for a model trained without artist tokens."""

    start_id: int  # the end-of-song token that precedes every song in the training stream
    artist_ids: Mapping[str, int] = field(default_factory=dict)  # name -> id, unknown included
    # Train songs that started with <|artist:unknown|> (0: its embedding is the random init);
    # None where training did not record it (runs and exports made before it was recorded).
    unknown_train_songs: int | None = None

    @classmethod
    def for_tokenizer(
        cls, tokenizer: PreTrainedTokenizerFast, *, artist_tokens: bool, unknown_train_songs: int | None = None
    ) -> SongPrompt:
        artists = tokenizer_artists(tokenizer) if artist_tokens else {}
        if artist_tokens and UNKNOWN_ARTIST not in artists:
            raise JaxrapError(
                f"the tokenizer has no {artist_token(UNKNOWN_ARTIST)} token although the model was trained with"
                " artist tokens; the run's tokenizer directory was replaced"
            )
        return cls(tokenizer.eos_token_id, artists, unknown_train_songs if artist_tokens else None)

    @property
    def conditioned(self) -> bool:
        return bool(self.artist_ids)

    @property
    def artists(self) -> tuple[str, ...]:
        """Named artists, sorted, then ``unknown`` (any value of ``--artist``)."""
        return (*sorted(name for name in self.artist_ids if name != UNKNOWN_ARTIST), UNKNOWN_ARTIST) if self.conditioned else ()

    def resolve(self, artist: str) -> str:
        """The known name ``artist`` means (case and ' '/'_' ignored), or a JaxrapError listing them."""
        if not self.conditioned:
            raise JaxrapError(
                f"--artist {artist}: this model was trained without artist tokens;"
                " train one with data.artist_tokens: true to condition on an artist"
            )
        if artist in self.artist_ids:
            return artist
        matches = [name for name in self.artist_ids if _canonical(name) == _canonical(artist)]
        if len(matches) == 1:
            return matches[0]
        raise JaxrapError(f"unknown artist {artist!r}; this model knows: {', '.join(self.artists)}")

    def artist_id(self, artist: str | None) -> int:
        """The token of a known artist; ``unknown``'s for None."""
        return self.artist_ids[UNKNOWN_ARTIST if artist is None else self.resolve(artist)]

    def prefix(self, artist: str | None = None) -> list[int]:
        """Token ids before a new song's text: ``[eos]``, plus the artist's token when conditioned."""
        if not self.conditioned:
            if artist is not None:
                self.resolve(artist)  # raises: no artist tokens
            return [self.start_id]
        return [self.start_id, self.artist_id(artist)]

    def row_prefix(self, row: Mapping[str, Any], *, artist_dropout: float = 0.0, seed: int = 0) -> list[int]:
        """A corpus row's prefix in the token cache (``tokenize_split(song_prefix=...)``): its
        artist's token, or unknown's for an artist without one or for a song ``drops_artist``
        picks (train songs only: ``artist_dropout`` > 0). The stream supplies the eos."""
        if not self.conditioned:
            return []
        if artist_dropout and drops_artist(row["text"], artist_dropout, seed):
            return [self.artist_ids[UNKNOWN_ARTIST]]
        return [self.artist_ids.get(row["artist"], self.artist_ids[UNKNOWN_ARTIST])]

    def unknown_songs(self, rows: Iterable[Mapping[str, Any]], *, artist_dropout: float = 0.0, seed: int = 0) -> int:
        """How many of ``rows`` (the train split) ``row_prefix`` starts with unknown's token: 0
        means training never saw it, so its embedding is the random init."""
        unknown = [self.artist_ids[UNKNOWN_ARTIST]] if self.conditioned else None
        return sum(self.row_prefix(row, artist_dropout=artist_dropout, seed=seed) == unknown for row in rows)

    def artist_of(self, corpus_artist: str) -> str:
        """The name a corpus artist is conditioned as: itself when known, else unknown."""
        return corpus_artist if corpus_artist in self.artist_ids else UNKNOWN_ARTIST


def drops_artist(text: str, rate: float, seed: int) -> bool:
    """Whether a train song is conditioned on unknown instead of its artist (``data.artist_dropout``).

    A fixed choice per song, made when the split is tokenized: a hash of the seed and the song's
    text, read as a uniform number in [0, 1), under ``rate``. It depends on nothing but the song,
    so it survives a reordered corpus, needs no row index, and the token cache (whose key hashes
    every song's prefix) tells two rates or seeds apart by itself. Redrawing per epoch would give
    the conditioned branch as many songs in expectation (a share 1 - rate of each epoch) at the
    cost of rewriting the cached token stream every epoch.
    """
    digest = hashlib.blake2b(f"{seed}\0{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def write_prompt_format(directory: str | Path, *, artist_tokens: bool, unknown_train_songs: int | None = None) -> Path:
    """Mark a run or an exported model directory as trained by jaxrap (see PROMPT_FORMAT_FILE),
    with how many train songs started with the unknown artist token when it is known."""
    record: dict[str, Any] = {"song_start": "eos", "artist_tokens": artist_tokens}
    if unknown_train_songs is not None:
        record["unknown_train_songs"] = unknown_train_songs
    path = Path(directory) / PROMPT_FORMAT_FILE
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


def read_prompt_format(directory: str | Path, tokenizer: PreTrainedTokenizerFast) -> SongPrompt | None:
    """The SongPrompt of an exported jaxrap model directory; None for a plain HF model."""
    record = read_prompt_record(directory)
    if record is None:
        return None
    return SongPrompt.for_tokenizer(
        tokenizer, artist_tokens=record["artist_tokens"], unknown_train_songs=record.get("unknown_train_songs")
    )


def read_prompt_record(directory: str | Path) -> dict[str, Any] | None:
    """PROMPT_FORMAT_FILE of a run or exported model directory, checked; None when absent."""
    path = Path(directory) / PROMPT_FORMAT_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        artist_tokens = record["artist_tokens"]
        unknown_songs = record.get("unknown_train_songs")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise JaxrapError(f"{path}: unreadable ({type(error).__name__}); export the model again with `jaxrap export`") from None
    if not isinstance(artist_tokens, bool):
        raise JaxrapError(f"{path}: artist_tokens must be true or false, got {artist_tokens!r}")
    if unknown_songs is not None and (type(unknown_songs) is not int or unknown_songs < 0):
        raise JaxrapError(f"{path}: unknown_train_songs must be a song count >= 0, got {unknown_songs!r}")
    return record
