"""Tokenizers: trained byte-level BPE and loaded HF tokenizers round-trip French lyrics exactly."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import transformers
from hypothesis import given, settings, strategies as st
from tokenizers import Tokenizer

from jaxrap.cli import main
from jaxrap.data.tokenizer import encode_texts, load_tokenizer, train_tokenizer
from jaxrap.errors import JaxrapError

TRICKY_TEXTS = [
    "J'suis là, l’été, « ouais » : œuvre, cœur, Œdipe 🔥🎤\nC'est la vie ?!  Ça déchire…",
    "Qu’est-ce que tu veux ? Aujourd'hui, j’m’en vais !\n\n\tDeux espaces  puis fin ",
    " espace devant, ÉÈÀÇ majuscules, naïve, Noël, 1 000 € — et un emoji composé 👩🏽‍🎤",
    "une ligne\r\nfin Windows et un <|endoftext|> écrit dans le texte",
    "ﬁ ligature, e\u0301 décomposé (NFD) et l'apostrophe ʼ modifiante",
]


@pytest.fixture(scope="module")
def trained(tiny_tokenizer_dir):
    return load_tokenizer(tiny_tokenizer_dir)


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_round_trip_is_exact(trained, text):
    (ids,) = encode_texts(trained, [text])
    assert trained.decode(ids) == text
    assert trained.eos_token_id not in ids  # a spelled-out special token stays text


def test_autotokenizer_loads_trained_dir_with_specials(tiny_tokenizer_dir):
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    assert isinstance(tokenizer, transformers.PreTrainedTokenizerFast)
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == ("<|endoftext|>", 0)
    assert (tokenizer.bos_token, tokenizer.bos_token_id) == ("<|endoftext|>", 0)
    assert (tokenizer.pad_token, tokenizer.pad_token_id) == ("<|pad|>", 1)
    assert len(tokenizer) == 300
    # Plain transformers decoding (no jaxrap wrapper) round-trips too: the settings are saved.
    ids = tokenizer(TRICKY_TEXTS[1])["input_ids"]
    assert tokenizer.decode(ids) == TRICKY_TEXTS[1]
    assert tokenizer.convert_ids_to_tokens([0, 1]) == ["<|endoftext|>", "<|pad|>"]


def test_training_is_deterministic(tiny_corpus_dir, tiny_tokenizer_dir, tmp_path):
    train_tokenizer(tiny_corpus_dir, 300, tmp_path)
    assert (tmp_path / "tokenizer.json").read_text() == (tiny_tokenizer_dir / "tokenizer.json").read_text()


def test_extra_special_tokens_follow_pad_and_are_never_split(tiny_corpus_dir, tmp_path):
    tokenizer = train_tokenizer(tiny_corpus_dir, 300, tmp_path, extra_special_tokens=["<|artist:Médine|>"])
    assert tokenizer.convert_tokens_to_ids("<|artist:Médine|>") == 2
    assert tokenizer("<|artist:Médine|>J'traîne", add_special_tokens=False)["input_ids"][0] == 2
    assert "<|artist:Médine|>" in tokenizer.all_special_tokens


def test_pretrained_tokenizer_without_pad_gets_eos_as_pad(tiny_tokenizer_dir, tmp_path):
    gpt2_like = transformers.GPT2TokenizerFast(
        tokenizer_object=Tokenizer.from_file(str(tiny_tokenizer_dir / "tokenizer.json")),
        eos_token="<|endoftext|>", bos_token="<|endoftext|>",
    )
    gpt2_like.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text()).get("pad_token") is None
    tokenizer = load_tokenizer(tmp_path)
    assert tokenizer.pad_token_id == tokenizer.eos_token_id == 0


@pytest.mark.parametrize("vocab_size", [0, 258, 8000.5])
def test_bad_vocab_size_is_refused(tiny_corpus_dir, tmp_path, vocab_size):
    with pytest.raises(JaxrapError, match="too small|vocab size"):
        train_tokenizer(tiny_corpus_dir, vocab_size, tmp_path)


def test_missing_corpus_is_refused(tmp_path):
    with pytest.raises(JaxrapError, match="not a prepared corpus.*jaxrap prepare"):
        train_tokenizer(tmp_path / "nope", 300, tmp_path / "out")


def test_load_errors_name_the_fix(tmp_path):
    with pytest.raises(JaxrapError, match="not a tokenizer directory.*jaxrap tokenizer"):
        load_tokenizer(tmp_path)  # exists, holds nothing
    with pytest.raises(JaxrapError, match="no such tokenizer directory"):
        load_tokenizer(tmp_path / "missing")
    with pytest.raises(JaxrapError, match="pass a local tokenizer directory"):
        load_tokenizer("nobody-xyz/no-such-tokenizer")  # tests run offline


def test_cli_trains_and_reports(tiny_corpus_dir, tmp_path, capsys):
    assert main(["tokenizer", "--data", str(tiny_corpus_dir), "--vocab-size", "300", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "vocab size 300" in out
    assert "end-of-song <|endoftext|> = 0" in out and "pad <|pad|> = 1" in out
    assert "characters per token on the validation split" in out
    assert (tmp_path / "tokenizer.json").is_file()


def test_cli_bad_vocab_size_is_a_one_line_error(tiny_corpus_dir, tmp_path, capsys):
    assert main(["tokenizer", "--data", str(tiny_corpus_dir), "--vocab-size", "100", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxrap: error: vocab size 100 is too small") and err.count("\n") == 1


@pytest.mark.slow
def test_real_corpus_round_trips_and_tokenizes_in_seconds(real_corpus_dir, tmp_path):
    from jaxrap.data.batches import EvalBatches, pack_blocks
    from jaxrap.data.corpus import SPLITS, load_corpus
    from jaxrap.data.tokenizer import chars_per_token
    from jaxrap.data.tokens import tokenize_split

    tokenizer = train_tokenizer(real_corpus_dir, 8000, tmp_path / "tok")
    assert len(tokenizer) == 8000
    corpus = load_corpus(real_corpus_dir)
    for split in SPLITS:
        texts = list(corpus[split]["text"])
        # Count, never show: a failing assert must not print lyrics into the logs.
        mismatches = sum(tokenizer.decode(ids) != text for ids, text in zip(encode_texts(tokenizer, texts), texts))
        assert mismatches == 0, f"{mismatches} {split} songs do not round-trip"
    assert chars_per_token(tokenizer, list(corpus["validation"]["text"])) > 3.0

    started = time.perf_counter()
    train = tokenize_split(real_corpus_dir, "train", tokenizer, cache_dir=tmp_path / "cache")
    assert time.perf_counter() - started < 20  # about 3 s on 2 busy cores
    assert train.num_songs == len(corpus["train"]) and train.tokens.dtype == np.uint16
    blocks = pack_blocks(train, 1024)
    assert sum(int(batch["loss_mask"].sum()) for batch in EvalBatches(blocks, 16)) == train.num_tokens


# --- properties (Hypothesis) ---------------------------------------------------------------

# Any Unicode text: emojis, accents (composed and combining), control characters, spelled-out
# special tokens and lone surrogates (what Python makes of undecodable bytes in argv).
_PIECES = ["\r\n", "\x00", "é", "e\u0301", "’", "🔥", "👩🏽‍🎤", " ?", "<|endoftext|>", "<|pad|>", "\udcff"]
any_text = st.lists(st.one_of(st.text(st.characters(exclude_categories=()), max_size=20), st.sampled_from(_PIECES)),
                    max_size=6).map("".join)


@settings(max_examples=300)
@given(any_text)
def test_any_text_round_trips_or_is_refused(trained, text):
    """decode(encode(x)) == x for every text UTF-8 can hold; a JaxrapError for the others."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(JaxrapError, match="not valid Unicode"):
            encode_texts(trained, [text])
        return
    (ids,) = encode_texts(trained, [text])
    assert trained.decode(ids) == text
    assert trained.eos_token_id not in ids and trained.pad_token_id not in ids


def test_a_sentencepiece_style_tokenizer_round_trips_lyrics_and_adds_its_bos(tiny_corpus_dir, sentencepiece_tokenizer_dir, tmp_path):
    """Llama's layout: ▁ word marks, newlines and unseen characters as UTF-8 byte tokens, <s>
    added by the post-processor, </s> the end of song; decoding gives back the exact text."""
    from jaxrap.data.tokenizer import train_sentencepiece_tokenizer

    tokenizer = load_tokenizer(sentencepiece_tokenizer_dir)
    assert (tokenizer.unk_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1, 2) and len(tokenizer) == 500
    text = "« Ça va ? » qu'il m'demande\nmañana 😀  l’été"
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == 1 and tokenizer.convert_tokens_to_ids("<0x0A>") in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    with pytest.raises(JaxrapError, match="too small for a SentencePiece-style BPE"):
        train_sentencepiece_tokenizer(tiny_corpus_dir, 300, tmp_path / "small")
