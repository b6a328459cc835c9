"""The writing room's verse without the UI: its file (read, refused, replaced atomically), each
bar's marks as the sampler's own check gives them, where a picked candidate goes, the exports."""

from __future__ import annotations

import os

import pytest

from jaxrap.errors import JaxrapError
from jaxrap.sample.bar_check import SongTargets, check_bar
from jaxrap.sample.params import SamplingParams
from jaxrap.tui.history import DATA_DIR_ENV
from jaxrap.tui.screens.writing import Request, lines_with_pick, request_for
from jaxrap.tui.verse import (
    check_verse_path,
    default_verse_path,
    export_verse,
    read_verse,
    rhyme_partner,
    verse_markdown,
    verse_marks,
    write_verse,
)

VERSE = [
    "Le béton m'a appris la patience",
    "On rêvait de partir au bout du globe",
    "",
    "[Refrain]",
    "Le bitume m'a volé mon enfance",
    "J'ai traîné dans le hall jusqu'à la nuit",
]


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    return tmp_path / "data"


def test_a_verse_file_is_its_lines_and_is_written_back_the_same(tmp_path):
    path = tmp_path / "verse.txt"
    assert read_verse(path) == []  # a new verse
    write_verse(path, VERSE)
    assert path.read_text(encoding="utf-8") == "\n".join(VERSE) + "\n"
    assert read_verse(path) == VERSE
    path.write_bytes(b"un\r\ndeux")  # written elsewhere: CRLF, no final newline
    assert read_verse(path) == ["un", "deux"]
    path.write_bytes(b"")
    assert read_verse(path) == []
    assert default_verse_path().parent.parent == tmp_path / "data"


@pytest.mark.parametrize(
    "make,rule",
    [
        (lambda path: path.write_bytes(b"caf\xe9\n"), "not UTF-8 text (byte 0xe9 at offset 3)"),
        (lambda path: path.mkdir(), "is a directory"),
    ],
)
def test_a_file_that_is_not_a_verse_is_refused_in_one_line(tmp_path, make, rule):
    path = tmp_path / "verse.txt"
    make(path)
    with pytest.raises(JaxrapError, match="^" + str(path).replace(".", r"\.") + ": .*" + rule.replace("(", r"\(").replace(")", r"\)")):
        check_verse_path(path)
    with pytest.raises(JaxrapError, match="the folder .* does not exist"):
        check_verse_path(tmp_path / "nowhere" / "verse.txt")


def test_a_write_that_fails_leaves_the_old_verse_whole(tmp_path, monkeypatch):
    path = tmp_path / "verse.txt"
    write_verse(path, VERSE[:2])

    def interrupted(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(OSError, match="No space left"):
        write_verse(path, ["tout autre chose"])
    assert read_verse(path) == VERSE[:2]
    assert [child.name for child in tmp_path.iterdir()] == ["verse.txt"]  # no temporary file left behind


def test_marks_number_the_bars_as_the_sampler_does_and_give_its_reasons():
    params = SamplingParams(rhyme_scheme="ABAB", syllables=10, syllable_tolerance=1)
    marks = verse_marks(VERSE, params)
    assert [mark.bar for mark in marks] == [0, 1, 2, None, 2, 3]  # a blank line is the next bar being written
    assert [mark.letter for mark in marks] == ["A", "B", "A", None, "A", "B"]
    assert [mark.syllables for mark in marks] == [9, 10, 0, 0, 9, 10]
    assert [mark.rhyme_key for mark in marks][:2] == ["ɑ̃s", "ob"]
    assert marks[0].group == marks[4].group is not None  # patience / enfance: one colour
    # The sampler's own check of each bar, its targets following the verse as it goes.
    targets = SongTargets("", rhyme_scheme="ABAB", rhyme_with=None, syllables=10, tolerance=1)
    expected = []
    for bar, line in enumerate(line for line in VERSE if line.strip() and not line.startswith("[")):
        check = check_bar(line, targets.target(bar), complete=True)
        targets.record(check, bar)
        expected.append(check.failures)
    assert [mark.misses for mark in marks if mark.word is not None] == expected
    assert marks[5].misses == ("ends on 'i' (nuit), not 'ob'",)
    assert all(not mark.misses for mark in verse_marks(VERSE, SamplingParams()))  # no bar controls: nothing to miss


def test_a_next_bar_goes_after_the_last_bar_and_a_redrawn_one_in_its_place():
    params = SamplingParams(seed=1)
    lines = ["un bar", "[Couplet]", "deux bars", "", ""]
    after = request_for(lines, None, params, 1)
    assert (after.bars, after.index, after.row) == (("un bar", "deux bars"), None, 2)
    assert lines_with_pick(lines, after, "trois") == (["un bar", "[Couplet]", "deux bars", "trois", ""], 3)  # fills the blank line
    assert lines_with_pick(lines[:3], after, "trois") == (["un bar", "[Couplet]", "deux bars", "trois"], 3)
    again = request_for(lines, 2, params, 2)
    assert (again.bars, again.index, again.row) == (("un bar", "deux bars"), 1, 2)
    assert lines_with_pick(lines, again, "autre") == (["un bar", "[Couplet]", "autre", "", ""], 2)
    blank = request_for(lines, 3, params, 3)  # a blank line drawn "again": the model writes it
    assert (blank.bars, blank.index) == (("un bar", "deux bars", ""), 2)
    first = request_for([""], None, params, 4)
    assert lines_with_pick([""], first, "premier") == (["premier"], 0)
    assert Request((), None, -1, params, 5).what == "bar 1"


def test_export_writes_the_verse_as_text_and_markdown_with_its_marks(tmp_path):
    params = SamplingParams(rhyme_scheme="ABAB", syllables=10, syllable_tolerance=1, artist="Médine")
    text_path, markdown_path = export_verse(VERSE, params, name="couplet", model="runs/tiny", step=300, out_dir=tmp_path)
    assert text_path.read_text(encoding="utf-8") == "\n".join(VERSE) + "\n"
    markdown = markdown_path.read_text(encoding="utf-8")
    assert markdown == verse_markdown(VERSE, params, name="couplet", model="runs/tiny", step=300)
    head = "# couplet\n\nModel: `runs/tiny`, step 300  \nArtist: `Médine`  \nBar controls: scheme ABAB · 10±1 syllables"
    assert markdown.startswith(head)
    assert "```text\n" + "\n".join(VERSE) + "\n```" in markdown
    assert "| 1 | A | Le béton m'a appris la patience | 9 | ɑ̃s |  |" in markdown
    assert "| 4 | B | J'ai traîné dans le hall jusqu'à la nuit | 10 | i | ends on 'i' (nuit), not 'ob' |" in markdown
    assert text_path.stem == markdown_path.stem and text_path.stem.startswith("couplet-")
    piped = verse_markdown(["a | b"], SamplingParams(), name="x", model="m", step=None)
    assert "| 1 |  | a \\| b |" in piped


def test_the_rhyme_finder_looks_up_the_nearest_bar_of_the_group_or_the_bar_itself():
    lines = ["Le béton m'a appris la patience", "On rêvait de partir au bout du globe", "", "[Refrain]",
             "Le bitume m'a volé mon enfance"]
    abab = SamplingParams(rhyme_scheme="ABAB")
    assert rhyme_partner(lines, 4, abab) == lines[0]  # A: the group's bar above
    assert rhyme_partner(lines, 0, abab) == lines[4]  # the first of its group: the next one
    assert rhyme_partner(lines, 2, abab) == lines[0]  # a blank bar being written: what it should rhyme with
    assert rhyme_partner(lines, 1, abab) == lines[1]  # alone in its group: itself
    assert rhyme_partner(lines, 4, SamplingParams()) == lines[4]  # no scheme: itself
    assert rhyme_partner(lines, 3, abab) is None and rhyme_partner(lines, 9, abab) is None


def test_marks_of_rhymes_of_several_vowels_and_of_a_function_word():
    lines = ["J'ai mis ma vie", "Je donne mon avis", "J'ai tout fini", "Je pense à toi et"]
    marks = verse_marks(lines, SamplingParams(rhyme_scheme="AAAA", rhyme_vowels=2))
    assert [mark.rhyme_key for mark in marks] == ["a-i", "a-i", "i-i", "a-e"]  # across the word boundary: ma vie / avis
    assert [mark.misses for mark in marks] == [(), (), ("ends on 'i-i' (fini), not 'a-i'",),
                                               ("ends on 'et', a function word, which carries no rhyme",)]
    assert not verse_marks(lines, SamplingParams(rhyme_scheme="AAAA"))[2].misses  # on one vowel, fini rhymes with vie
