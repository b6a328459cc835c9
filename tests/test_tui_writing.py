"""The writing room, driven with Textual's Pilot: `--write` opens it on top of the studio and F2
goes back and forth; bars are typed, split, joined, moved, deleted and undone, each keystroke
saved to the verse file at once (also when the process is killed); marks follow the typing and
the panel's bar controls; the model's candidates are drawn with the panel's values, picked,
redrawn or dismissed, for the next bar or in place; errors leave the verse as it was; export;
a snapshot of the screen with candidates.

The stand-in engine (``tui_pilot.SuggestingEngine``) answers with canned candidates, so these
tests are about the screen; ``Generator.suggest_bars`` has its own tests.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tui_pilot import (
    SIZE,
    STAND_IN,
    SUGGESTED,
    SuggestingEngine,
    drive,
    notifications,
    set_params,
    settle,
    stand_in,
    temporary_data_dir,
)

from jaxrap.errors import FieldError, JaxrapError
from jaxrap.tui.app import StudioApp
from jaxrap.tui.screens.help import HelpScreen
from jaxrap.tui.screens.no_model import NoModelScreen
from jaxrap.tui.screens.studio import StudioScreen
from jaxrap.tui.screens.writing import WritingScreen
from jaxrap.tui.verse import default_verse_path
from jaxrap.tui.widgets.candidate_list import CandidateList
from jaxrap.tui.widgets.params_panel import ParamsPanel
from jaxrap.tui.widgets.rhyme_list import WORDS_PER_COUNT, RhymeList
from jaxrap.tui.widgets.verse_view import VerseView

TWO_BARS = ["Le béton m'a appris la patience", "On rêvait de partir au bout du globe"]


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch) -> Path:
    return temporary_data_dir(tmp_path, monkeypatch)


@pytest.fixture
def verse(tmp_path) -> Path:
    path = tmp_path / "couplet.txt"
    path.write_text("\n".join(TWO_BARS) + "\n", encoding="utf-8")
    return path


def writing_app(verse: Path | None, engine=None) -> StudioApp:
    return StudioApp(STAND_IN, write=True, verse=verse, load_engine=stand_in(engine or SuggestingEngine()))


def view(pilot) -> VerseView:
    return pilot.app.screen.query_one(VerseView)


async def type_bars(pilot, *bars: str) -> None:
    """Type ``bars`` at the cursor, Enter between them."""
    for number, bar in enumerate(bars):
        if number:
            await pilot.press("enter")
        await pilot.press(*bar)
    await pilot.pause()


# --- the verse -------------------------------------------------------------------------------


def test_write_opens_the_writing_room_on_the_studio_and_f2_goes_back_and_forth(verse):
    async def scenario(pilot):
        writing = pilot.app.screen
        assert isinstance(writing, WritingScreen) and isinstance(pilot.app.screen_stack[-2], StudioScreen)
        assert view(pilot).lines == TWO_BARS
        assert pilot.app.focused is view(pilot).row_input(1)  # the cursor at the end of the verse
        set_params(pilot, rhyme_scheme="AABB", syllables=10)
        await pilot.press("f2")
        studio = pilot.app.screen
        assert isinstance(studio, StudioScreen)
        assert studio.query_one(ParamsPanel).sampling_params().rhyme_scheme == "AABB"  # the values come along
        await pilot.press("f2")
        await settle(pilot)
        assert isinstance(pilot.app.screen, WritingScreen) and view(pilot).lines == TWO_BARS
        assert pilot.app.screen.query_one(ParamsPanel).sampling_params().syllables == 10

    drive(writing_app(verse), scenario)


def test_a_model_typed_on_the_no_model_screen_opens_the_writing_room_and_a_failed_load_closes_both(verse, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    loading = threading.Event()

    def load_then_fail(name, progress):
        loading.wait(10)
        raise JaxrapError(f"{name}: the weights are damaged")

    async def scenario(pilot):
        assert isinstance(pilot.app.screen, NoModelScreen)
        pilot.app.screen.query_one("#model-path").value = str(model)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(pilot.app.screen, WritingScreen) and isinstance(pilot.app.screen_stack[-2], StudioScreen)
        await pilot.press("end", *" encore")
        loading.set()  # the load fails while the writing room is open: the no-model screen replaces both
        for _ in range(200):  # (its worker waiting for the model is cancelled: no settle)
            if isinstance(pilot.app.screen, NoModelScreen):
                break
            await pilot.pause(0.02)
        assert [type(screen) for screen in pilot.app.screen_stack[1:]] == [NoModelScreen]
        assert "the weights are damaged" in str(pilot.app.screen.query_one("#no-model-reason").content)
        assert verse.read_text(encoding="utf-8").endswith("globe encore\n")  # typed, saved

    drive(StudioApp(str(tmp_path / "nowhere"), write=True, verse=verse, load_engine=load_then_fail), scenario)


def test_leaving_the_room_saves_a_change_whose_message_has_not_arrived(verse):
    async def scenario(pilot):
        view(pilot).row_input(1).value += " encore"  # its Changed message is queued, not handled
        pilot.app.screen_stack[-2].post_message(StudioScreen.ModelFailed("the model failed"))  # and the room goes
        for _ in range(100):  # until the room is gone and has saved (2 s at most)
            if isinstance(pilot.app.screen, NoModelScreen) and verse.read_text(encoding="utf-8").endswith("encore\n"):
                break
            await pilot.pause(0.02)
        assert verse.read_text(encoding="utf-8").endswith("globe encore\n")

    drive(writing_app(verse), scenario)


def test_every_keystroke_is_in_the_file_before_anything_else_happens(verse):
    saved: list[str] = []

    async def scenario(pilot):
        await pilot.press("end", "enter")
        for key in "Le bitume":
            await pilot.press(key if key != " " else "space")
            saved.append(verse.read_text(encoding="utf-8"))
        assert saved[-1] == "\n".join([*TWO_BARS, "Le bitume"]) + "\n"
        assert [text.rsplit("\n", 2)[-2] for text in saved] == ["L", "Le", "Le ", "Le b", "Le bi", "Le bit", "Le bitu", "Le bitum",
                                                                "Le bitume"]

    drive(writing_app(verse), scenario)


KILLED_MID_VERSE = """
import asyncio, os, signal, sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from tui_pilot import STAND_IN, SuggestingEngine, stand_in
from jaxrap.tui.app import StudioApp

async def main():
    app = StudioApp(STAND_IN, write=True, verse=Path(sys.argv[1]), load_engine=stand_in(SuggestingEngine()))
    async with app.run_test(size=(110, 34)) as pilot:
        await pilot.app.workers.wait_for_complete()
        await pilot.press("end", "enter", *"Le bitume m'a volé")
        os.kill(os.getpid(), signal.SIGKILL)  # no quit, no unmount, no flush: a crash

asyncio.run(main())
"""


def test_a_killed_process_loses_nothing_typed(verse, tmp_path):
    script = tmp_path / "killed.py"
    script.write_text(KILLED_MID_VERSE, encoding="utf-8")
    tests = Path(__file__).resolve().parent
    result = subprocess.run([sys.executable, str(script), str(verse), str(tests)], capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert verse.read_text(encoding="utf-8") == "\n".join([*TWO_BARS, "Le bitume m'a volé"]) + "\n"


def test_bars_are_split_joined_moved_deleted_and_undone(verse):
    async def scenario(pilot):
        lines = lambda: view(pilot).lines  # noqa: E731
        await pilot.press("home", *["right"] * 6, "enter")  # split "On rêvait de..." after "On rêv"
        assert lines() == [TWO_BARS[0], "On rêv", "ait de partir au bout du globe"]
        await pilot.press("backspace")  # at the start of a bar: joined back
        await pilot.pause()
        assert lines() == [TWO_BARS[0], "On rêv ait de partir au bout du globe"]
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert lines() == [TWO_BARS[0], "On rêv", "ait de partir au bout du globe"]
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert lines() == TWO_BARS
        await pilot.press("alt+up")  # the second bar moves above the first, the cursor with it
        await pilot.pause()
        assert lines() == TWO_BARS[::-1] and view(pilot).cursor_row == 0
        await pilot.press("alt+down")
        await pilot.pause()
        assert lines() == TWO_BARS and view(pilot).cursor_row == 1
        await pilot.press("ctrl+delete")
        await pilot.pause()
        assert lines() == TWO_BARS[:1] and verse.read_text(encoding="utf-8") == TWO_BARS[0] + "\n"
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert lines() == TWO_BARS and verse.read_text(encoding="utf-8") == "\n".join(TWO_BARS) + "\n"
        await pilot.press("up", "ctrl+delete", "ctrl+delete")  # every bar: one blank bar is left
        await pilot.pause()
        assert lines() == [""]

    drive(writing_app(verse), scenario)


def test_marks_follow_the_typing_and_the_panel(verse):
    async def scenario(pilot):
        marks = lambda: view(pilot).marks  # noqa: E731
        assert [mark.syllables for mark in marks()] == [9, 10]
        assert [mark.letter for mark in marks()] == [None, None] and not any(mark.misses for mark in marks())
        set_params(pilot, rhyme_scheme="AABB", syllables=9, syllable_tolerance=0)
        await pilot.pause()
        assert [mark.letter for mark in marks()] == ["A", "A"]
        assert marks()[1].misses == ("10 syllables, not 9-9", "ends on 'ob' (globe), not 'ɑ̃s'")
        assert str(pilot.app.screen.query_one("#bar-hint").content).startswith("✗ bar 2: 10 syllables, not 9-9; ends on 'ob'")
        await pilot.press("ctrl+u", *"Le bitume m'a volé mon enfance")  # retyped: the marks follow each key
        await pilot.pause()
        assert (marks()[1].syllables, marks()[1].rhyme_key, marks()[1].misses) == (9, "ɑ̃s", ())
        assert marks()[0].group == marks()[1].group is not None
        row = view(pilot).rows[1]
        assert str(row.marks.content) == " 9 ɑ̃s" and str(row.letter.content) == "A"
        set_params(pilot, rhyme_scheme="AA!B")  # refused on its field; the marks keep the last valid scheme
        await pilot.pause()
        assert [mark.letter for mark in marks()] == ["A", "A"]

    drive(writing_app(verse), scenario)


# --- the model's candidates ----------------------------------------------------------------------


def test_the_next_bar_is_drawn_with_the_panel_values_and_picked_with_a_digit(verse):
    engine = SuggestingEngine()

    async def scenario(pilot):
        set_params(pilot, rhyme_scheme="ABAB", syllables=9, candidates=3, seed=11)
        await pilot.press("ctrl+g")
        await settle(pilot)
        (bars, params, k, index) = engine.requests[-1]
        assert (bars, k, index) == (TWO_BARS, 3, None)
        assert (params.rhyme_scheme, params.syllables, params.candidates, params.seed) == ("ABAB", 9, 3, 11)
        candidates = pilot.app.screen.query_one(CandidateList)
        assert candidates.display and pilot.app.focused is candidates and candidates.option_count == 3
        first = str(candidates.get_option_at_index(0).prompt)
        assert first.startswith(" 1  Le bitume m'a volé mon enfance") and "· 9 · ɑ̃s (enfance) ✓" in first
        assert "✗ ends on 'je' (quartier), not 'ɑ̃s'" in str(candidates.get_option_at_index(2).prompt)
        await pilot.press("2")
        await pilot.pause()
        assert view(pilot).lines == [*TWO_BARS, SUGGESTED[1].text] and not candidates.display
        assert verse.read_text(encoding="utf-8").endswith(SUGGESTED[1].text + "\n")  # a pick is saved like typing
        assert pilot.app.focused is view(pilot).row_input(2)
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert view(pilot).lines == TWO_BARS

    drive(writing_app(verse, engine), scenario)


def test_a_bar_is_drawn_again_in_place_redrawn_and_dismissed(verse):
    engine = SuggestingEngine()

    async def scenario(pilot):
        await pilot.press("up", "ctrl+r")  # the first bar, drawn again
        await settle(pilot)
        (bars, first, k, index) = engine.requests[-1]
        assert (bars, index, k) == (TWO_BARS, 0, 4)
        await pilot.press("r")  # redraw: the same request, a new seed
        await settle(pilot)
        (bars, second, _, index) = engine.requests[-1]
        assert (bars, index) == (TWO_BARS, 0) and second.seed != first.seed
        await pilot.press("escape")  # dismissed: the verse as it was, the cursor back on the bar
        await pilot.pause()
        assert view(pilot).lines == TWO_BARS and pilot.app.focused is view(pilot).row_input(0)
        await pilot.press("ctrl+r")
        await settle(pilot)
        await pilot.press("down", "enter")  # Enter takes the highlighted one
        await pilot.pause()
        assert view(pilot).lines == [SUGGESTED[1].text, TWO_BARS[1]]

    drive(writing_app(verse, engine), scenario)


def test_escape_stops_a_draw_and_its_answer_is_dropped(verse):
    gate = threading.Event()
    engine = SuggestingEngine(gate=gate)

    async def scenario(pilot):
        await pilot.press("ctrl+g")
        await pilot.pause(0.1)
        assert pilot.app.screen.query_one("#status").tone == "busy"
        await pilot.press("escape")
        gate.set()
        await settle(pilot)
        assert not pilot.app.screen.query_one(CandidateList).display and view(pilot).lines == TWO_BARS
        assert pilot.app.screen.query_one("#status").state == "stopped"

    drive(writing_app(verse, engine), scenario)


class FailingEngine(SuggestingEngine):
    def __init__(self, failure: Exception):
        super().__init__()
        self.failure = failure

    def suggest_bars(self, bars, params, k, *, index=None, cancel=None):
        raise self.failure


@pytest.mark.parametrize(
    "failure,shown",
    [
        (FieldError("syllables", "no room for one bar: 4 new tokens after the verse"), "no room for one bar"),
        (RuntimeError("device lost"), "RuntimeError: device lost"),
    ],
)
def test_a_failed_draw_says_why_and_leaves_the_verse(verse, failure, shown):
    async def scenario(pilot):
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert any(shown in message for message in notifications(pilot.app))
        assert view(pilot).lines == TWO_BARS and not pilot.app.screen.query_one(CandidateList).display
        panel = pilot.app.screen.query_one(ParamsPanel)
        if isinstance(failure, FieldError):  # on its field, as the studio does
            assert panel.input_for("syllables").has_class("-invalid") and pilot.app.focused is panel.input_for("syllables")

    drive(writing_app(verse, FailingEngine(failure)), scenario)


def test_a_bad_panel_value_is_refused_on_its_field_and_nothing_is_drawn(verse):
    engine = SuggestingEngine()

    async def scenario(pilot):
        set_params(pilot, candidates=65)
        await pilot.pause()
        await pilot.press("ctrl+g")
        await settle(pilot)
        panel = pilot.app.screen.query_one(ParamsPanel)
        assert engine.requests == [] and pilot.app.focused is panel.input_for("candidates")
        assert any("candidates must be in [1, 64]" in message for message in notifications(pilot.app))

    drive(writing_app(verse, engine), scenario)


# --- the rhyme finder ----------------------------------------------------------------------------


def test_the_rhyme_finder_lists_words_for_the_bar_and_inserts_one_at_the_cursor(verse):
    from jaxrap.phonetics.rhyme_finder import find_rhymes

    async def scenario(pilot):
        rhymes = pilot.app.screen.query_one(RhymeList)
        expected = find_rhymes(TWO_BARS[1], 1, limit=WORDS_PER_COUNT)  # the cursor is on the second bar: globe
        assert list(rhymes.words.values()) == [word.word for group in expected.groups for word in group.words]
        assert str(pilot.app.screen.query_one("#rhymes-title").content) == f"Rhymes of «globe» · {expected.key}"
        set_params(pilot, rhyme_vowels=2)  # rhymes of two vowels: "du globe" ends on y-ob
        await pilot.pause()
        await settle(pilot)
        expected = find_rhymes(TWO_BARS[1], 2, limit=WORDS_PER_COUNT)
        assert expected.key == "y-ob" and list(rhymes.words.values()) == [w.word for g in expected.groups for w in g.words]
        set_params(pilot, rhyme_vowels=1)
        set_params(pilot, rhyme_scheme="AAAA")  # the second bar now rhymes with the first: patience
        await pilot.pause()  # the panel checks its values, then the marks and the lookup follow
        await settle(pilot)
        assert "«patience»" in str(pilot.app.screen.query_one("#rhymes-title").content)
        first = rhymes.words[min(rhymes.words)]
        await pilot.press("end", "enter", *"Dans le hall")  # a new bar, the cursor at its end
        await pilot.pause()
        await settle(pilot)
        assert "«patience»" in str(pilot.app.screen.query_one("#rhymes-title").content)  # the same group
        await pilot.press("ctrl+f")
        assert pilot.app.focused is rhymes
        await pilot.press("enter")
        await pilot.pause()
        assert view(pilot).lines[2] == f"Dans le hall {first}" and pilot.app.focused is view(pilot).row_input(2)
        assert verse.read_text(encoding="utf-8").endswith(f"Dans le hall {first}\n")  # saved like typing
        await pilot.press("ctrl+f", "escape")  # back without a word
        assert pilot.app.focused is view(pilot).row_input(2) and view(pilot).lines[2] == f"Dans le hall {first}"

    drive(writing_app(verse), scenario)


def test_the_finder_adds_the_words_of_the_corpus_the_model_was_trained_on(tmp_path):
    import datasets

    from jaxrap.config import load_config
    from jaxrap.data.corpus import corpus_word_counts
    from jaxrap.phonetics.rhyme_finder import CorpusWords, find_rhymes

    corpus = tmp_path / "corpus"
    songs = [{"text": "On fume au bendo\nLe bédo tourne au bendo", "artist": "x", "title": f"t{n}", "year": -1} for n in range(3)]
    datasets.DatasetDict({split: datasets.Dataset.from_list(songs) for split in ("train", "validation", "test")}).save_to_disk(corpus)
    engine = SuggestingEngine()
    engine.model = dataclasses.replace(engine.model, run_config=load_config(None, [f"data.path={corpus}"]))
    verse = tmp_path / "v.txt"
    verse.write_text("Je traîne dans le ghetto\n", encoding="utf-8")

    async def scenario(pilot):
        expected = find_rhymes("Je traîne dans le ghetto", 1, limit=WORDS_PER_COUNT, corpus=CorpusWords(corpus_word_counts(corpus)))
        words = [word for group in expected.groups for word in group.words]
        assert {"bendo", "bédo"} <= {word.word for word in words if word.source == "corpus"}  # Lexique lacks them
        rhymes = pilot.app.screen.query_one(RhymeList)
        for _ in range(250):  # the model is ready, then the corpus is read, then the list is looked up again: 5 s at most
            if "bendo" in rhymes.words.values():
                break
            await pilot.pause(0.02)
        assert list(rhymes.words.values()) == [word.word for word in words]

    drive(writing_app(verse, engine), scenario)


# --- saving and export -------------------------------------------------------------------------


def test_a_failed_save_keeps_the_verse_on_screen_and_the_next_change_saves_it_all(verse, monkeypatch):
    from jaxrap.tui.screens import writing

    write = writing.write_verse

    def full_disk(path, lines):
        raise OSError(28, "No space left on device")

    async def scenario(pilot):
        monkeypatch.setattr(writing, "write_verse", full_disk)
        await pilot.press("end", "enter", *"Le bitume")
        errors = [message for message in notifications(pilot.app) if "could not save the verse" in message]
        assert len(errors) == 1 and "No space left on device" in errors[0]  # said once, not per keystroke
        assert view(pilot).lines == [*TWO_BARS, "Le bitume"]
        assert verse.read_text(encoding="utf-8") == "\n".join(TWO_BARS) + "\n"  # the old verse, whole
        monkeypatch.setattr(writing, "write_verse", write)
        await pilot.press("space")
        assert verse.read_text(encoding="utf-8") == "\n".join([*TWO_BARS, "Le bitume "]) + "\n"
        assert any("saved again" in message for message in notifications(pilot.app))

    drive(writing_app(verse), scenario)


def test_a_verse_file_that_is_not_text_is_never_written_over(data_dir):
    default = default_verse_path()
    default.parent.mkdir(parents=True)
    default.write_bytes(b"\xff\xfe binary")

    async def scenario(pilot):
        assert isinstance(pilot.app.screen, StudioScreen)  # the room did not open
        assert any("the writing room cannot open" in message and "not UTF-8" in message for message in notifications(pilot.app))
        await pilot.press("f2")
        assert isinstance(pilot.app.screen, StudioScreen)

    drive(StudioApp(STAND_IN, write=True, load_engine=stand_in(SuggestingEngine())), scenario)
    assert default.read_bytes() == b"\xff\xfe binary"


def test_export_writes_text_and_markdown(verse, data_dir):
    async def scenario(pilot):
        await pilot.press("ctrl+s")
        await pilot.pause()
        (text,) = (data_dir / "exports").glob("couplet-*.txt")
        (markdown,) = (data_dir / "exports").glob("couplet-*.md")
        assert text.read_text(encoding="utf-8") == "\n".join(TWO_BARS) + "\n"
        assert "| 1 |  | Le béton m'a appris la patience | 9 | ɑ̃s |  |" in markdown.read_text(encoding="utf-8")
        assert any(str(markdown) in message for message in notifications(pilot.app))

    drive(writing_app(verse), scenario)


def test_f1_and_the_palette_list_the_writing_room_keys(verse):
    async def scenario(pilot):
        commands = {command.title for command in pilot.app.get_system_commands(pilot.app.screen)}
        assert {"Next bar", "Redo bar", "Rhymes", "Undo", "Export", "Studio"} <= commands
        studio_commands = {command.title for command in pilot.app.get_system_commands(pilot.app.screen_stack[-2])}
        assert "Writing room" in studio_commands
        await pilot.press("f1")
        assert isinstance(pilot.app.screen, HelpScreen)
        rows = {(row[0], row[1], row[2]) for row in pilot.app.screen.rows}
        assert {("^g", "Next bar", "writing room"), ("^r", "Redo bar", "writing room"), ("f2", "Writing room", "studio"),
                ("⏎", "New bar", "a bar of the verse"), ("r ^r", "Redraw", "candidates"), ("⏎", "Insert", "rhymes")} <= rows

    drive(writing_app(verse), scenario)


# --- snapshot ------------------------------------------------------------------------------------


def test_snapshot_writing_room_with_candidates(snap_compare, verse):
    async def draw(pilot):
        await settle(pilot)
        set_params(pilot, rhyme_scheme="ABAB", syllables=9, seed=1)
        await pilot.press("ctrl+g")
        await settle(pilot)
        for widget in pilot.app.screen.query("Input"):
            widget.cursor_blink = False
        await pilot.pause()

    app = writing_app(Path("couplet.txt"))  # a relative path: the title does not depend on the machine
    verse.rename(Path.cwd() / "couplet.txt")
    assert snap_compare(app, terminal_size=SIZE, run_before=draw)


def test_the_cli_refuses_a_verse_that_is_not_one(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xe9t\xe9\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    nowhere = tmp_path / "no" / "v.txt"
    for argv, rule in (
        (["--write", str(bad)], f"jaxrap: error: {bad}: not UTF-8 text (byte 0xe9 at offset 0)\n"),
        (["--write", str(tmp_path)], f"jaxrap: error: {tmp_path}: is a directory; give a verse file such as {tmp_path}/verse.txt\n"),
        (["--write", str(nowhere)], f"jaxrap: error: {nowhere}: the folder {nowhere.parent} does not exist\n"),
    ):
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "jaxrap", "tui", *argv], capture_output=True, text=True, env=env, timeout=60)
        assert (result.returncode, result.stderr, result.stdout) == (2, rule, "")
        assert time.monotonic() - started < 30
    assert bad.read_bytes() == b"\xe9t\xe9\n"


# --- with the real tiny model ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def conditioned_model(conditioned_model_dir) -> str:
    """The tiny model with artist tokens (Médine, Shurik'n), its decoder compiled once for this module."""
    from jaxrap.tui.engine import load_engine

    load_engine(str(conditioned_model_dir), progress=lambda stage: None)
    return str(conditioned_model_dir)


def test_the_candidates_are_the_generators_with_the_panels_artist_guidance_and_bar_controls(conditioned_model, verse):
    from jaxrap.sample.params import SamplingParams

    params = SamplingParams(seed=5, artist="Shurik'n", artist_guidance=2.0, rhyme_scheme="AABB", syllables=6,
                            syllable_tolerance=3, candidates=3, redraws=0)

    async def scenario(pilot):
        pilot.app.screen.query_one(ParamsPanel).artist = "Shurik'n"
        set_params(pilot, seed=5, artist_guidance=2, rhyme_scheme="AABB", syllables=6, syllable_tolerance=3, candidates=3,
                   redraws=0)
        await pilot.pause()
        await pilot.press("ctrl+g")
        await settle(pilot)
        screen = pilot.app.screen
        generator = screen.studio.engine.generator
        expected = generator.suggest_bars(TWO_BARS, params, 3)
        assert screen.query_one(CandidateList).bars == expected and expected  # the same draw: same verse, values and seed
        assert [bar.met for bar in expected] == sorted((bar.met for bar in expected), reverse=True)  # met ones first
        await pilot.press("1")
        await pilot.pause()
        assert view(pilot).lines == [*TWO_BARS, expected[0].text]
        await pilot.press("up", "ctrl+r")  # the second bar drawn again in place: it rhymes with the first (AABB)
        await settle(pilot)
        assert screen.query_one(CandidateList).bars == generator.suggest_bars([*TWO_BARS, expected[0].text], params, 3, index=1)

    drive(StudioApp(conditioned_model, write=True, verse=verse), scenario)
