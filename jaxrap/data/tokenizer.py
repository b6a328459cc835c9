"""Tokenizers: load any Hugging Face tokenizer, or train one on a prepared corpus: a byte-level
BPE (GPT-2's kind, ``train_tokenizer``) or a SentencePiece-style BPE (Llama's kind,
``train_sentencepiece_tokenizer``).

Every tokenizer jaxrap hands out is a transformers ``PreTrainedTokenizerFast`` with an
``eos_token`` (the end-of-song token, ``<|endoftext|>`` for GPT-2 and trained tokenizers) and a
``pad_token``. Decoding what it encoded gives back the exact text: byte-level BPE maps every
UTF-8 byte to a symbol, so accents, apostrophes (' and ’), « », œ, emojis, newlines and runs of
spaces all survive, provided that

- no normaliser runs (the corpus is already NFC; a normaliser would rewrite text that is not),
- ``add_prefix_space`` is off (it would invent a space before each song's first word),
- ``clean_up_tokenization_spaces`` is off (it deletes the space French typography puts before
  ``?`` and ``!``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jaxrap.data.corpus import load_corpus
from jaxrap.errors import JaxrapError
from jaxrap.hub import is_hub_id

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

END_OF_SONG = "<|endoftext|>"  # GPT-2's separator; also bos, as in GPT-2
PAD = "<|pad|>"
# Trained tokenizers put these first, so end-of-song is id 0 and pad id 1; extra special tokens
# (issue 6's `<|artist:NAME|>`) follow in the order given.
SPECIAL_TOKENS = (END_OF_SONG, PAD)
BYTE_ALPHABET_SIZE = 256


def load_tokenizer(name_or_dir: str | Path) -> PreTrainedTokenizerFast:
    """A ``PreTrainedTokenizerFast`` from a local directory or a Hugging Face hub id.

    Ensures an end-of-song (eos) token exists and sets ``pad_token`` to eos when the tokenizer
    has none (pretrained GPT-2 tokenizers); padded positions are always masked out of the loss,
    so sharing the id is harmless.
    """
    import transformers

    path = Path(name_or_dir).expanduser()
    name = str(name_or_dir)
    if path.is_file():
        raise JaxrapError(f"{path}: is a file; pass the directory that holds tokenizer.json")
    if not path.is_dir() and not is_hub_id(name):
        raise JaxrapError(f"{name}: no such tokenizer directory")
    try:
        # clean_up_tokenization_spaces=False: the clean-up deletes spaces before ? and !
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            str(path) if path.is_dir() else name, clean_up_tokenization_spaces=False
        )
    except Exception as error:  # noqa: BLE001 - missing files, network, auth and 404s all land here
        if path.is_dir():
            raise JaxrapError(
                f"{path}: not a tokenizer directory ({type(error).__name__}); make one with"
                f" `jaxrap tokenizer --data CORPUS --vocab-size 8000 --out {path}`"
            ) from None
        raise JaxrapError(
            f"{name}: not a local directory and could not be fetched from the Hugging Face hub"
            f" ({type(error).__name__}); pass a local tokenizer directory instead"
        ) from None
    if not isinstance(tokenizer, transformers.PreTrainedTokenizerFast):
        raise JaxrapError(f"{name}: {type(tokenizer).__name__} is not a fast (Rust) tokenizer; jaxrap needs one")
    if tokenizer.eos_token is None:
        raise JaxrapError(f"{name}: tokenizer has no eos token; jaxrap ends every song with it")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def require_unicode(text: str) -> str:
    """``text`` itself when it is valid Unicode (UTF-8 can encode it), else a JaxrapError naming
    the first lone surrogate: what Python makes of undecodable bytes in a command-line argument,
    which tokenizers refuse with a TypeError."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise JaxrapError(
            f"text is not valid Unicode: {text[error.start]!r} at position {error.start} (bytes that are"
            " not UTF-8?); pass UTF-8 text"
        ) from None
    return text


def encode_texts(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text, in one batched call; no bos/eos added.

    Text that happens to spell a special token (``<|endoftext|>``) is encoded as plain text:
    lyrics are data, never control tokens. Text that is not valid Unicode is refused
    (``require_unicode``).
    """
    texts = [require_unicode(text) for text in texts]
    encoded = tokenizer(
        list(texts), add_special_tokens=False, split_special_tokens=True,
        return_attention_mask=False, verbose=False,  # verbose=False: songs may exceed model_max_length
    )
    return encoded["input_ids"]


def chars_per_token(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]) -> float:
    """Compression: characters per token over ``texts`` (higher packs more lyrics per block)."""
    num_tokens = sum(len(ids) for ids in encode_texts(tokenizer, texts))
    return sum(len(text) for text in texts) / max(num_tokens, 1)


def train_tokenizer(
    corpus_dir: str | Path,
    vocab_size: int,
    out_dir: str | Path,
    *,
    min_frequency: int = 2,
    extra_special_tokens: Sequence[str] = (),
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on the corpus' train split and save it for ``AutoTokenizer``.

    Ids: ``<|endoftext|>`` (end-of-song, also bos) 0, ``<|pad|>`` 1, then
    ``extra_special_tokens`` (never split, e.g. ``("<|artist:Disiz|>",)``), then the 256 byte
    symbols, then merges up to ``vocab_size`` (fewer when the corpus has too few distinct pairs).
    Writes ``tokenizer.json`` and ``tokenizer_config.json`` (class GPT2Tokenizer) into
    ``out_dir`` and returns the tokenizer as :func:`load_tokenizer` reads it back.
    """
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    special_tokens = [*SPECIAL_TOKENS, *extra_special_tokens]
    if len(set(special_tokens)) != len(special_tokens):
        raise JaxrapError(f"special tokens must be distinct, got {special_tokens}")
    smallest = BYTE_ALPHABET_SIZE + len(special_tokens) + 1
    if not isinstance(vocab_size, int) or vocab_size < smallest:
        raise JaxrapError(
            f"vocab size {vocab_size} is too small: a byte-level BPE holds the {BYTE_ALPHABET_SIZE} bytes"
            f" and {len(special_tokens)} special tokens, so it needs at least {smallest}; try 8000"
        )
    if min_frequency < 1:
        raise JaxrapError(f"min frequency {min_frequency} must be at least 1")
    out, texts = _output_dir_and_train_texts(out_dir, corpus_dir)

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # GPT-2's split rules
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, seen or not
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer, length=len(texts))

    # GPT2TokenizerFast saves tokenizer_class "GPT2Tokenizer", which transformers 4 and 5 both load.
    wrapped = transformers.GPT2TokenizerFast(  # type: ignore[attr-defined]  # a lazy attribute of transformers 5
        tokenizer_object=bpe,
        eos_token=END_OF_SONG,
        bos_token=END_OF_SONG,
        pad_token=PAD,
        unk_token=None,  # byte-level BPE never needs one
        add_prefix_space=False,
        clean_up_tokenization_spaces=False,
        **({"additional_special_tokens": list(extra_special_tokens)} if extra_special_tokens else {}),
    )
    out.mkdir(parents=True, exist_ok=True)
    wrapped.save_pretrained(out)
    return load_tokenizer(out)


SENTENCEPIECE_SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")  # ids 0, 1, 2, as Llama's; </s> ends a song
SENTENCEPIECE_ALPHABET = 120  # characters kept whole (French letters, accents, digits, punctuation)


def train_sentencepiece_tokenizer(corpus_dir: str | Path, vocab_size: int, out_dir: str | Path) -> PreTrainedTokenizerFast:
    """Train a SentencePiece-style BPE, laid out as Llama's tokenizer.json is, on the corpus'
    train split, and save it for ``AutoTokenizer`` (class LlamaTokenizer).

    Words carry a ``▁`` mark for the space before them (Metaspace, a ``▁`` prepended to the
    text), merges never cross a word boundary, and anything outside the ``SENTENCEPIECE_ALPHABET``
    commonest characters, the newline included, is spelled in UTF-8 byte tokens ``<0x00>`` ..
    ``<0xFF>`` (byte fallback). Ids: ``<unk>`` 0, ``<s>`` 1 (bos: the post-processor adds it to
    each encoded text), ``</s>`` 2 (eos, end-of-song), the 256 byte tokens, then characters and
    merges up to ``vocab_size``.
    """
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    smallest = len(SENTENCEPIECE_SPECIAL_TOKENS) + BYTE_ALPHABET_SIZE + SENTENCEPIECE_ALPHABET
    if not isinstance(vocab_size, int) or vocab_size < smallest:
        raise JaxrapError(f"vocab size {vocab_size} is too small for a SentencePiece-style BPE: it needs at least {smallest}")
    out, texts = _output_dir_and_train_texts(out_dir, corpus_dir)
    trainer_model = Tokenizer(models.BPE())
    trainer_model.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SENTENCEPIECE_SPECIAL_TOKENS) - BYTE_ALPHABET_SIZE,
        limit_alphabet=SENTENCEPIECE_ALPHABET, show_progress=False,
    )
    # Newlines spelled as bytes, as in Llama's vocabulary: trained on the text without them.
    trainer_model.train_from_iterator((text.replace("\n", " ") for text in texts), trainer, length=len(texts))
    trained = trainer_model.get_vocab()
    vocab = {token: i for i, token in enumerate(SENTENCEPIECE_SPECIAL_TOKENS)}
    vocab.update({f"<0x{byte:02X}>": len(vocab) + byte for byte in range(BYTE_ALPHABET_SIZE)})
    for token in sorted(trained, key=trained.__getitem__):
        vocab.setdefault(token, len(vocab))
    merges = json.loads(trainer_model.to_str())["model"]["merges"]
    unk, bos, eos = SENTENCEPIECE_SPECIAL_TOKENS
    wrapped = transformers.LlamaTokenizer(
        vocab=vocab, merges=[tuple(merge) if isinstance(merge, list) else tuple(merge.split(" ")) for merge in merges],
        unk_token=unk, bos_token=bos, eos_token=eos, add_bos_token=True, add_eos_token=False,
        clean_up_tokenization_spaces=False,
    )
    out.mkdir(parents=True, exist_ok=True)
    wrapped.save_pretrained(out)
    return load_tokenizer(out)


def describe_tokenizer(tokenizer: PreTrainedTokenizerFast) -> str:
    """One line: vocabulary size and the special token ids jaxrap relies on."""
    return (
        f"vocab size {len(tokenizer):,}; end-of-song {tokenizer.eos_token} = {tokenizer.eos_token_id};"
        f" pad {tokenizer.pad_token} = {tokenizer.pad_token_id}"
    )


def _output_dir_and_train_texts(out_dir: str | Path, corpus_dir: str | Path) -> tuple[Path, list[str]]:
    """The checked output directory and the train split's songs a tokenizer is trained on."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise JaxrapError(f"{out}: is a file; --out must be a directory")
    texts = list(load_corpus(corpus_dir)["train"]["text"])
    if not texts:
        raise JaxrapError(f"{corpus_dir}: the train split has no songs; prepare the corpus again")
    return out, texts
