"""The rhyme finder: words ending on the text's last N vowels, from Lexique and a corpus's words
that Lexique lacks, grouped by syllables and most frequent first, never the word itself nor a
function word; `jaxrap rhymes` prints them, and refuses bad input with one line (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys

import datasets
import pytest

from jaxrap.cli import main
from jaxrap.data.corpus import corpus_word_counts
from jaxrap.errors import JaxrapError
from jaxrap.phonetics.function_words import FUNCTION_WORDS
from jaxrap.phonetics.lexicon import load_lexicon
from jaxrap.phonetics.rhyme import rhyme_key
from jaxrap.phonetics.rhyme_finder import MIN_CORPUS_COUNT, CorpusWords, find_rhymes


def words_of(rhymes) -> list[str]:
    return [word.word for group in rhymes.groups for word in group.words]


def test_every_word_found_rhymes_on_the_vowels_asked_and_groups_are_ordered():
    for text, vowels in (("la nuit", 1), ("ma vie", 2), ("t'as vu la nuit", 3), ("le quartier", 2)):
        rhymes = find_rhymes(text, vowels)
        assert rhymes.key == rhyme_key(text, vowels) and rhymes.groups, text
        assert [group.syllables for group in rhymes.groups] == sorted({group.syllables for group in rhymes.groups})
        for group in rhymes.groups:
            assert all(word.syllables == group.syllables for word in group.words)
            frequencies = [word.frequency for word in group.words]
            assert frequencies == sorted(frequencies, reverse=True)
            for word in group.words:
                assert rhyme_key(word.word, vowels) == rhymes.key, (text, word)
        assert not set(words_of(rhymes)) & FUNCTION_WORDS


def test_the_commonest_rhymes_come_first_and_the_word_itself_never():
    one = find_rhymes("nuit", syllables=1)
    assert [group.syllables for group in one.groups] == [1]
    assert {"vie", "pluie", "lit"} <= set(words_of(one)) and "nuit" not in words_of(find_rhymes("nuit"))
    two = find_rhymes("toute ma vie", 2, limit=5)
    assert words_of(two)[:2] == ["ami", "amis"] and len(two.groups[0].words) == 5  # limit per syllable count
    assert "paradis" in words_of(find_rhymes("ma vie", 2, syllables=3))
    assert "vie" not in words_of(find_rhymes("la vie", 2))  # one vowel: it cannot end on a-i alone
    # Lexique's frequencies order the words: "ami" is far commoner than "avis".
    lexicon = load_lexicon()
    assert lexicon.get("ami").frequency > lexicon.get("avis").frequency


def test_a_corpus_adds_the_words_lexique_lacks(tmp_path, capsys, monkeypatch):
    bars = ["Wesh la tieks c'est le bendo"] * MIN_CORPUS_COUNT + ["Le bendo, la zermi", "un skrrt zarbi"]
    corpus = datasets.DatasetDict({split: datasets.Dataset.from_list([{"text": "\n".join(bars), "artist": "X", "title": "t",
                                                                      "year": -1}]) for split in ("train", "validation", "test")})
    corpus.save_to_disk(str(tmp_path / "data" / "rap"))
    counts = corpus_word_counts(tmp_path / "data" / "rap")
    assert (counts["bendo"], counts["c"], counts["est"], counts["zermi"]) == (MIN_CORPUS_COUNT + 1, MIN_CORPUS_COUNT, MIN_CORPUS_COUNT, 1)
    words = CorpusWords(counts)
    assert set(words.words) == {"wesh", "tieks", "bendo"}  # not "la", "le" (Lexique), "zermi" (once), "c" (a letter)
    found = {word.word: word for word in find_rhymes("le bédo", corpus=words).groups[1].words}
    assert found["bendo"].source == "corpus" and found["bendo"].frequency == pytest.approx(1e6 * 4 / sum(counts.values()))
    assert "bendo" not in words_of(find_rhymes("le bédo"))  # no corpus: Lexique only
    with pytest.raises(JaxrapError, match="not a prepared corpus"):
        corpus_word_counts(tmp_path)
    monkeypatch.chdir(tmp_path)  # the command reads data/rap when it holds a corpus, as the quickstart's
    assert main(["rhymes", "le bédo", "--syllables", "2"]) == 0
    assert "bendo" in capsys.readouterr().out
    assert main(["rhymes", "le bédo", "--syllables", "2", "--lexicon-only"]) == 0
    assert "bendo" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(text="psst"), "rhyme word 'psst' has no vowel"),
        (dict(text="!!"), "rhyme word '!!' has no vowel"),
        (dict(text="nuit", vowels=2), "rhyme word 'nuit' says 1 vowel, fewer than the 2"),
        (dict(text="nuit", vowels=0), r"vowels must be a whole number in 1\.\.4, got 0"),
        (dict(text="nuit", vowels=5), r"vowels must be a whole number in 1\.\.4, got 5"),
        (dict(text="nuit", limit=0), "limit must be a whole number at least 1, got 0"),
        (dict(text="nuit", syllables=0), "syllables must be a whole number at least 1, got 0"),
        (dict(text="ma vie", vowels=2, syllables=1), "no word of 1 syllable says the 2 vowels"),
    ],
)
def test_bad_input_is_a_one_line_error(kwargs, message):
    with pytest.raises(JaxrapError, match=message) as error:
        find_rhymes(**kwargs)
    assert "\n" not in str(error.value)


def test_the_command_prints_the_key_then_a_line_per_syllable_count(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no data/rap here: Lexique only
    assert main(["rhymes", "ma vie", "--vowels", "2", "--limit", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "a-i (2 vowels)" and out[1] == "2 syllables: ami, amis, voici"
    counts = [int(line.split(" syllables: ")[0]) for line in out[1:]]
    assert counts == sorted(counts) and len(counts) > 3 and all(line.count(", ") <= 2 for line in out[1:])
    assert main(["rhymes", "nuit", "--syllables", "1", "--limit", "2", "--lexicon-only"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["1 syllable: qui, suis"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["psst"], "rhyme word 'psst' has no vowel: give a word that ends on a sound"),
        (["nuit", "--limit", "0"], "limit must be a whole number at least 1, got 0"),
        (["nuit", "--vowels", "5"], r"vowels must be a whole number in 1..4, got 5"),
        (["  "], "WORD is empty"),
        (["nuit", "--data", "nowhere"], "--data nowhere: not a prepared corpus"),
    ],
)
def test_the_command_refuses_bad_input_with_one_line_and_status_2(flags, message):
    result = subprocess.run([sys.executable, "-m", "jaxrap", "rhymes", *flags], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, timeout=120)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"jaxrap: error: {result.stderr.removeprefix('jaxrap: error: ')}"
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
