"""The terminal studio, driven with Textual's Pilot: a real tiny model streams into the history,
Esc stops it, the panel's values are used and refused when out of range, the history survives
a restart and replays exactly, export writes Markdown, a model with artist tokens gets an artist
selector whose choice conditions generation; the rhyme and flow and guidance fields reach
SamplingParams or are refused on their own field, bars show their syllables and misses, a guided
bar-by-bar entry and one saved before those fields replay exactly, the lexicon loads off the UI
thread; snapshots of the three screens and of the open artist list.

Tests that only look at the screen use a stand-in engine (fixed model info, canned text), so
their snapshots do not depend on the machine; generation tests load the real tiny model (the
decoder compiles once per session, then every app reuses jax's compilation cache).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import jax
import pytest
from textual.widgets import OptionList, Select
from tui_pilot import (
    ARTISTS,
    QUATRAIN,
    SIZE,
    STAND_IN,
    StandInEngine,
    drive,
    notifications,
    set_params,
    settle,
    stand_in,
    temporary_data_dir,
)

from jaxrap.errors import JaxrapError
from jaxrap.sample.bar_check import Bar
from jaxrap.sample.generator import TextDelta
from jaxrap.sample.params import SamplingParams, params_from_record, params_to_record
from jaxrap.tui.app import StudioApp
from jaxrap.tui.engine import describe_device, load_engine
from jaxrap.tui.history import BarMark, History, HistoryEntry
from jaxrap.tui.screens.help import HelpScreen
from jaxrap.tui.screens.no_model import NoModelScreen
from jaxrap.tui.screens.studio import StudioScreen
from jaxrap.tui.widgets.history_view import FIRST_CARDS, RHYME_COLOURS, EntryCard, HistoryView
from jaxrap.tui.widgets.params_panel import NO_ARTIST, ParamsPanel
from jaxrap.tui.widgets.status_line import StatusLine


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch) -> Path:
    return temporary_data_dir(tmp_path, monkeypatch)


@pytest.fixture
def utc(monkeypatch):
    """Card headers show local time: pin it for snapshots."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def seeded_entry(output: str, prompt: str = "J'ai traîné dans le hall jusqu'à l'aube", **params) -> HistoryEntry:
    return HistoryEntry(
        prompt=prompt,
        output=output,
        params=params_to_record(SamplingParams(seed=7, **params)),
        model=STAND_IN,
        step=300,
        created="2026-01-02T03:04:05+00:00",
    )



# --- start-up, no model -------------------------------------------------------------------


def test_the_ui_modules_do_not_import_jax():
    code = "import sys, jaxrap.tui.app, jaxrap.cli.tui; assert 'jax' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_jaxrap_tui_and_tui_py_take_the_same_arguments():
    from jaxrap.cli import build_parser, tui as tui_command

    args = build_parser().parse_args(["tui", "--model", "runs/tiny_cpu"])
    assert (args.run, args.model) == (tui_command.run, "runs/tiny_cpu")
    script = Path(__file__).resolve().parents[1] / "tui.py"
    shown = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, check=True)
    assert "--model" in shown.stdout and "training run directory" in shown.stdout


@pytest.mark.parametrize(
    "model,reason",
    [
        (None, "No model given"),
        ("./nowhere/model", "no such directory"),
        ("pyproject.toml", "is a file"),
    ],
)
def test_without_a_usable_model_a_screen_says_what_is_missing(tmp_path, model, reason):
    (tmp_path / "pyproject.toml").write_text("")

    async def scenario(pilot):
        assert isinstance(pilot.app.screen, NoModelScreen)
        text = str(pilot.app.screen.query_one("#no-model-reason").content)
        assert reason in text
        assert "jaxrap train --config configs/tiny_cpu.yaml" in str(pilot.app.screen.query_one("#no-model-help").content)

    drive(StudioApp(model, load_engine=stand_in()), scenario)


def test_a_directory_that_is_no_model_is_named_and_a_typed_path_opens_the_studio(tmp_path):
    (tmp_path / "empty").mkdir()
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")

    async def scenario(pilot):
        reason = pilot.app.screen.query_one("#no-model-reason")
        assert "neither a training run" in str(reason.content)
        await pilot.press(*"./nope", "enter")  # not a directory, not a hub id: refused in place
        assert isinstance(pilot.app.screen, NoModelScreen)
        pilot.app.screen.query_one("#model-path").value = str(model)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, StudioScreen)
        status = pilot.app.screen.query_one(StatusLine)
        assert status.state == "ready" and "step 300" in str(status.render())  # a run's checkpoint step

    drive(StudioApp(str(tmp_path / "empty"), load_engine=stand_in()), scenario)


@pytest.mark.parametrize("failure", [JaxrapError("runs/x/checkpoints: no checkpoints yet"), RuntimeError("boom")])
def test_a_model_that_fails_to_load_gives_the_no_model_screen_not_a_traceback(failure):
    def failing_loader(model, progress):
        progress("loading the weights")
        raise failure

    async def scenario(pilot):
        assert isinstance(pilot.app.screen, NoModelScreen)
        text = str(pilot.app.screen.query_one("#no-model-reason").content)
        assert str(failure) in text

    drive(StudioApp("gpt2", load_engine=failing_loader), scenario)


def test_a_skipped_damaged_checkpoint_is_notified(tiny_corpus_dir, tiny_tokenizer_dir, tmp_path):
    """The studio on a run whose newest checkpoint reads back damaged: the loader falls back to the
    one before, and says so in a notification (before, the warning went to stderr, which Textual
    owns: the studio opened on the older step without a word)."""
    from checkpoint_damage import change_one_value

    from jaxrap.config import MeshConfig, load_config
    from jaxrap.load import load_run_directory
    from jaxrap.sharding import make_mesh
    from jaxrap.train.pipeline import run_training

    config = load_config(None, [
        f"data.path={tiny_corpus_dir}", f"model.tokenizer={tiny_tokenizer_dir}", "data.block_size=16",
        "model.shape.n_layer=1", "model.shape.n_head=2", "model.shape.n_embd=16", "model.shape.n_positions=16",
        "train.per_device_batch_size=2", "train.steps=4", "train.eval_every=4", "train.save_every=2",
    ])
    run_training(config, tmp_path / "run", trackers=[], say=lambda text: None, mesh=make_mesh(MeshConfig(), jax.devices()[:1]))
    change_one_value(tmp_path / "run" / "checkpoints" / "4" / "params")
    loaded_steps = []

    def real_run_loader(model, progress):  # jaxrap's loading of a run; the stand-in engine generates
        loaded_steps.append(load_run_directory(model).step)
        return StandInEngine()

    async def scenario(pilot):
        assert loaded_steps == [2]
        (warning,) = [message for message in notifications(pilot.app) if "checkpoint 4" in message]
        assert "unreadable" in warning and "values differ from the checksums" in warning and "trying the one before" in warning

    drive(StudioApp(str(tmp_path / "run"), load_engine=real_run_loader), scenario)


# --- the panel, keys, history display -------------------------------------------------------


def test_out_of_range_values_are_refused_with_a_message(data_dir):
    async def scenario(pilot):
        panel = pilot.app.screen.query_one(ParamsPanel)
        top_p = panel.input_for("top_p")
        top_p.value = "3"
        await pilot.pause()
        assert not top_p.is_valid
        assert "top_p must be in (0, 1]" in str(panel.query_one("#param-error").content)
        await pilot.click("#prompt")
        await pilot.press(*"Le soir tombe", "enter")
        await settle(pilot)
        assert len(pilot.app.screen.query(EntryCard)) == 0
        assert any("top_p must be in (0, 1]" in message for message in notifications(pilot.app))
        assert pilot.app.screen.focused is top_p  # the bad field is focused for fixing

        top_p.value = "0.9"
        min_tokens = panel.input_for("min_new_tokens")
        min_tokens.value = "300"  # above max tokens: a problem of the combination
        await pilot.pause()
        assert not min_tokens.is_valid and panel.input_for("max_new_tokens").is_valid
        assert "min_new_tokens (300) must not exceed max_new_tokens (256 by default)" in str(panel.query_one("#param-error").content)
        panel.input_for("max_new_tokens").value = "400"  # fixing the other field clears it
        await pilot.pause()
        assert min_tokens.is_valid and str(panel.query_one("#param-error").content) == ""
        assert panel.sampling_params() == SamplingParams(min_new_tokens=300, max_new_tokens=400, top_p=0.9)
        assert not History.for_model(STAND_IN).path.exists()

    drive(StudioApp(STAND_IN, load_engine=stand_in()), scenario)


def test_f1_lists_every_binding_and_the_palette_lists_the_actions():
    async def scenario(pilot):
        studio = pilot.app.screen
        commands = {command.title for command in pilot.app.get_system_commands(studio)}
        assert {"Stop", "Regenerate", "Export", "Replay", "Copy", "Edit", "Keys"} <= commands
        await pilot.press("f1")
        assert isinstance(pilot.app.screen, HelpScreen)
        rows = pilot.app.screen.rows
        keys = {row[0] for row in rows}
        assert {"esc", "^r", "^s", "f1", "^p", "⏎", "r", "c", "e ⏎"} <= keys
        assert {binding.description for binding in [*StudioScreen.BINDINGS, *HistoryView.BINDINGS]} <= {row[1] for row in rows}
        await pilot.press("escape")
        assert pilot.app.screen is studio

    drive(StudioApp(STAND_IN, load_engine=stand_in()), scenario)


def test_cards_colour_rhymes_and_warn_when_the_output_loops(data_dir):
    history = History.for_model(STAND_IN)
    history.append(seeded_entry(QUATRAIN))
    history.append(seeded_entry("\nJ'm'arrache" + ", j'm'arrache" * 6, prompt="Sur le mic"))

    async def scenario(pilot):
        quatrain, looping = pilot.app.screen.query(EntryCard)
        assert quatrain.loop is None and not quatrain.query_one(".entry-warning").display
        rhyme_styles = {quatrain.get_component_rich_style(f"entry-card--rhyme-{k}") for k in range(RHYME_COLOURS)}
        rhymed = [span for span in quatrain._lyrics().spans if span.style in rhyme_styles]
        assert len(rhymed) == 4  # aube/globe, patience/enfance
        assert looping.loop is not None and looping.loop.unit == "j m arrache"
        assert looping.query_one(".entry-warning").display
        assert "Loop from bar 2" in str(looping.query_one(".entry-warning").content)

    drive(StudioApp(STAND_IN, load_engine=stand_in()), scenario)


def test_a_long_history_shows_every_card_in_order_with_the_newest_in_view(data_dir):
    history = History.for_model(STAND_IN)
    for number in range(FIRST_CARDS + 5):  # the newest FIRST_CARDS before the first frame, the rest after it
        history.append(seeded_entry(QUATRAIN, prompt=f"Entrée {number + 1}"))

    async def scenario(pilot):
        view = pilot.app.screen.query_one(HistoryView)
        for _ in range(250):  # the older cards follow the first frame, and the scroll their layout: wait up to 5 s
            cards = list(pilot.app.screen.query(EntryCard))
            if len(cards) == FIRST_CARDS + 5 and view.scroll_y == view.max_scroll_y > 0:
                break
            await pilot.pause(0.02)
        assert [card.number for card in cards] == list(range(1, FIRST_CARDS + 6))
        assert [card.entry.prompt for card in cards] == [f"Entrée {number}" for number in range(1, FIRST_CARDS + 6)]
        assert view.highlighted_child is cards[-1] and view.scroll_y == view.max_scroll_y > 0

    drive(StudioApp(STAND_IN, load_engine=stand_in()), scenario)


def test_escape_stops_at_once_even_while_the_engine_is_busy(data_dir):
    async def scenario(pilot):
        await pilot.press(*"Le soir tombe", "enter")
        await pilot.pause(0.1)
        card = pilot.app.screen.query_one(EntryCard)
        assert card.live and card.entry.output == QUATRAIN  # all streamed, the engine still busy
        await pilot.press("escape")
        assert not card.live and card.entry.stopped
        await settle(pilot)  # the worker returns: cancel reached the engine
        (saved,) = History.for_model(STAND_IN).load()
        assert saved.stopped and saved.output == QUATRAIN
        assert "stopped" in pilot.app.screen.query_one(StatusLine).state

    drive(StudioApp(STAND_IN, load_engine=stand_in(StandInEngine(hold=True))), scenario)


def test_quitting_mid_generation_keeps_the_text_so_far(data_dir):
    async def scenario(pilot):
        await pilot.press(*"Le soir tombe", "enter")
        await pilot.pause(0.1)
        assert pilot.app.screen.query_one(EntryCard).live

    drive(StudioApp(STAND_IN, load_engine=stand_in(StandInEngine(hold=True))), scenario)
    (saved,) = History.for_model(STAND_IN).load()
    assert saved.stopped and saved.output == QUATRAIN


def test_copy_edit_and_replay_use_the_highlighted_entry(data_dir):
    history = History.for_model(STAND_IN)
    history.append(seeded_entry(QUATRAIN))
    history.append(seeded_entry("\nsuite", prompt="Sur le mic\nle soir", temperature=1.2, max_bars=4))
    edited_by_hand = seeded_entry("\nx")
    history.append(dataclasses.replace(edited_by_hand, params={**edited_by_hand.params, "top_p": 3}))
    lyrics = "J'ai traîné dans le hall jusqu'à l'aube" + QUATRAIN

    async def scenario(pilot):
        view = pilot.app.screen.query_one(HistoryView)
        view.focus()
        await pilot.press("r")  # the newest is highlighted, and its parameters are refused
        assert any("top_p must be in (0, 1]" in message for message in notifications(pilot.app))
        assert len(pilot.app.screen.query(EntryCard)) == 3
        await pilot.press("up", "up", "c")
        assert pilot.app.clipboard == lyrics
        pilot.app.copy_to_clipboard("")
        (copy,) = [command for command in pilot.app.get_system_commands(pilot.app.screen) if command.title == "Copy"]
        await copy.callback()  # the same action from the command palette
        assert pilot.app.clipboard == lyrics

        await pilot.press("down", "enter")  # or e
        prompt = pilot.app.screen.query_one("#prompt")
        assert prompt.value == "Sur le mic / le soir" and pilot.app.screen.focused is prompt
        panel = pilot.app.screen.query_one(ParamsPanel)
        assert panel.sampling_params() == SamplingParams(seed=7, temperature=1.2, max_bars=4)

    drive(StudioApp(STAND_IN, load_engine=stand_in()), scenario)


BAR_FIELDS = dict(rhyme_scheme="AABB", rhyme_with="la nuit", rhyme_vowels=2, syllables=12, syllable_tolerance=1, candidates=8,
                  steering=3.5, redraws=1, artist_guidance=2.5)


def test_the_bar_and_guidance_fields_reach_the_sampling_params(data_dir):
    async def scenario(pilot):
        panel = pilot.app.screen.query_one(ParamsPanel)
        assert panel.sampling_params() == SamplingParams()  # blank or default: SamplingParams' defaults
        for name in ("rhyme_scheme", "rhyme_with", "syllables"):
            assert panel.input_for(name).value == ""
        panel.artist = "Médine"
        set_params(pilot, seed=4, **BAR_FIELDS)
        await pilot.pause()
        assert str(panel.query_one("#param-error").content) == ""
        assert panel.sampling_params() == SamplingParams(seed=4, artist="Médine", **BAR_FIELDS)
        panel.show_params(SamplingParams(seed=9))  # editing an entry of the history blanks them again
        assert panel.sampling_params() == SamplingParams(seed=9, artist=None)

    drive(StudioApp(STAND_IN, load_engine=stand_in(StandInEngine(artists=ARTISTS))), scenario)


@pytest.mark.parametrize(
    "field,value,artists,rule",
    [
        ("rhyme_scheme", "AaBB", ARTISTS, "'a' (position 2) is not a scheme letter"),
        ("rhyme_with", "psst", ARTISTS, "has no vowel"),
        ("rhyme_vowels", "5", ARTISTS, "rhyme_vowels must be in [1, 4]"),
        ("syllables", "0", ARTISTS, "syllables must be in [1, 32]"),
        ("syllable_tolerance", "-1", ARTISTS, "syllable_tolerance must be in [0, 32]"),
        ("candidates", "65", ARTISTS, "candidates must be in [1, 64]"),
        ("candidates", "0", ARTISTS, "candidates must be in [1, 64]"),
        ("artist_guidance", "0", ARTISTS, "artist_guidance must be > 0"),
        ("artist_guidance", "inf", ARTISTS, "artist_guidance must be a finite number"),
        ("artist_guidance", "2", ARTISTS, "artist_guidance 2 needs an artist"),  # none chosen
        ("artist_guidance", "2", (), "this model has no artist tokens"),
    ],
)
def test_a_bad_bar_or_guidance_value_is_refused_on_its_field(data_dir, field, value, artists, rule):
    async def scenario(pilot):
        panel = pilot.app.screen.query_one(ParamsPanel)
        set_params(pilot, **{"rhyme_scheme": "AABB", field: value})  # a rhyme word needs a scheme
        await pilot.pause()
        assert not panel.input_for(field).is_valid
        assert [name for name in BAR_FIELDS if not panel.input_for(name).is_valid] == [field]  # only its field
        assert rule in str(panel.query_one("#param-error").content)
        await pilot.click("#prompt")
        await pilot.press(*"Le soir tombe", "enter")
        assert not pilot.app.screen.query(EntryCard)  # nothing ran
        assert pilot.app.screen.focused is panel.input_for(field)

    drive(StudioApp(STAND_IN, load_engine=stand_in(StandInEngine(artists=artists))), scenario)


def test_guidance_is_accepted_once_an_artist_is_chosen(data_dir):
    async def scenario(pilot):
        panel = pilot.app.screen.query_one(ParamsPanel)
        set_params(pilot, artist_guidance=2)
        await pilot.pause()
        assert not panel.input_for("artist_guidance").is_valid
        panel.artist = "Shurik'n"  # the selector's change checks the fields again
        await pilot.pause()
        assert panel.input_for("artist_guidance").is_valid and str(panel.query_one("#param-error").content) == ""
        assert panel.sampling_params() == SamplingParams(artist="Shurik'n", artist_guidance=2)

    drive(StudioApp(STAND_IN, load_engine=stand_in(StandInEngine(artists=ARTISTS))), scenario)


BARS = ("\nLe béton m'a appris la patience", "\nOn rêvait de partir au bout du globe", "\nLe bitume m'a volé mon enfance\n")


def kept_bar(index: int, text: str, syllables: int, reason: str | None = None) -> Bar:
    return Bar(index, text, syllables, None, None, "A", None, (8, 10), reason is None, reason, 4, 0)


class BarEngine(StandInEngine):
    """Streams ``BARS`` as bar-by-bar decoding does: one delta per kept bar, with its record; the
    second bar misses."""

    def stream(self, prompt, params, cancel):
        yield TextDelta(0, "\n", bar=kept_bar(0, prompt, 9))  # completes the prompt's line
        yield TextDelta(0, BARS[0][1:] + "\n", bar=kept_bar(1, BARS[0][1:], 9))
        yield TextDelta(0, BARS[1][1:] + "\n", bar=kept_bar(2, BARS[1][1:], 11, "11 syllables, not 8-10"))
        yield TextDelta(0, BARS[2][1:], bar=kept_bar(3, BARS[2][1:].strip(), 10))


def test_bars_show_their_syllables_and_misses_are_marked_with_the_reason(data_dir):
    History.for_model(STAND_IN).append(seeded_entry(QUATRAIN))  # plain generation: no marks

    async def scenario(pilot):
        await pilot.click("#prompt")
        await pilot.press(*"Sur le mic", "enter")
        await settle(pilot)
        plain, marked = pilot.app.screen.query(EntryCard)
        assert " · " not in plain._lyrics().plain and not plain.query_one(".entry-warning").display
        lines = marked._lyrics().plain.split("\n")
        assert lines == [
            "Sur le mic · 9",
            "Le béton m'a appris la patience · 9",
            "On rêvait de partir au bout du globe · 11 ✗",
            "Le bitume m'a volé mon enfance · 10",
            "",
        ]
        assert marked.entry.output == "\n" + "".join(bar[1:] + "\n" for bar in BARS[:2]) + BARS[2][1:]  # the text is untouched
        miss_style = marked.get_component_rich_style("entry-card--miss")
        (missed,) = [span for span in marked._lyrics().spans if span.style == miss_style]
        assert marked._lyrics().plain[missed.start : missed.end] == " · 11 ✗"
        assert str(marked.query_one(".entry-warning").content) == "✗ bar 3: 11 syllables, not 8-10"
        assert marked.entry.bars == (BarMark(0, 9, True), BarMark(1, 9, True), BarMark(2, 11, False, "11 syllables, not 8-10"),
                                     BarMark(3, 10, True))

    drive(StudioApp(STAND_IN, load_engine=stand_in(BarEngine())), scenario)
    saved = History.for_model(STAND_IN).load()[-1]

    async def after_a_restart(pilot):
        card = pilot.app.screen.query(EntryCard)[-1]
        assert card.entry == saved and "On rêvait de partir au bout du globe · 11 ✗" in card._lyrics().plain

    drive(StudioApp(STAND_IN, load_engine=stand_in()), after_a_restart)


def test_the_lexicon_loads_in_a_worker_and_rhymes_are_coloured_once_it_is_there(data_dir, monkeypatch):
    from jaxrap.phonetics import lexicon

    History.for_model(STAND_IN).append(seeded_entry(QUATRAIN))
    readers: list[threading.Thread] = []
    read = lexicon.read_lexicon

    def spy(path):
        readers.append(threading.current_thread())
        return read(path)

    monkeypatch.setattr(lexicon, "read_lexicon", spy)
    lexicon.load_lexicon.cache_clear()
    colours_on_mount: list[bool] = []
    app = StudioApp(STAND_IN, load_engine=stand_in())

    def on_ready(message):  # called before the screen handles the message
        if isinstance(message, StudioScreen.PhoneticsReady):
            colours_on_mount.append(app.screen.query_one(HistoryView).rhymes)

    async def scenario(pilot):
        assert len(readers) == 1 and readers[0] is not threading.main_thread()
        (card,) = pilot.app.screen.query(EntryCard)
        rhyme_styles = {card.get_component_rich_style(f"entry-card--rhyme-{k}") for k in range(RHYME_COLOURS)}
        assert len([span for span in card._lyrics().spans if span.style in rhyme_styles]) == 4

    drive(app, scenario, message_hook=on_ready)
    assert colours_on_mount == [False]  # the cards were drawn before the lexicon was read


# --- the artist selector -------------------------------------------------------------------------


def select_labels(select: Select) -> list[str]:
    return [str(option.prompt) for option in select.query_one(OptionList).options]


@pytest.mark.parametrize(
    "artists,artist,refusal",
    [
        (ARTISTS, "Booba", f"{STAND_IN} does not know the artist 'Booba'"),  # another model's artist
        ((), "Médine", f"{STAND_IN} knows no artists"),  # a model trained without artist tokens
    ],
)
def test_an_entry_whose_artist_the_model_does_not_know_is_refused_on_replay(data_dir, artists, artist, refusal):
    History.for_model(STAND_IN).append(seeded_entry(QUATRAIN, artist=artist, temperature=1.2))

    async def scenario(pilot):
        pilot.app.screen.query_one(HistoryView).focus()
        for key in ("r", "ctrl+r"):
            await pilot.press(key)
            await settle(pilot)
            assert sum(refusal in message for message in notifications(pilot.app)) == 1
            pilot.app.clear_notifications()
        assert len(pilot.app.screen.query(EntryCard)) == 1  # nothing ran
        await pilot.press("e")  # editing still restores the rest of the entry
        assert pilot.app.screen.query_one(ParamsPanel).sampling_params() == SamplingParams(seed=7, temperature=1.2)
        assert any(refusal in message and "no specific artist" in message for message in notifications(pilot.app))

    drive(StudioApp(STAND_IN, load_engine=stand_in(StandInEngine(artists=artists))), scenario)


@pytest.mark.parametrize("edited,chosen", [("Shurik'n", "Shurik'n"), ("Booba", None)])
def test_an_entry_edited_while_the_model_loads_sets_the_selector_once_it_appears(data_dir, edited, chosen):
    History.for_model(STAND_IN).append(seeded_entry(QUATRAIN, artist=edited))
    loading = threading.Event()

    def gated_loader(model, progress):
        loading.wait(10)
        return StandInEngine(artists=ARTISTS)

    async def main():
        async with StudioApp(STAND_IN, load_engine=gated_loader).run_test(size=SIZE) as pilot:
            panel = pilot.app.screen.query_one(ParamsPanel)
            pilot.app.screen.query_one(HistoryView).focus()
            await pilot.press("e")
            assert panel.artist_select is None and panel.artist == edited  # kept until the model says
            loading.set()
            await settle(pilot)
            assert panel.artist_select.value == chosen and panel.sampling_params().artist == chosen
            warned = any("'Booba'" in message for message in notifications(pilot.app))
            assert warned == (chosen is None)

    asyncio.run(main())


# --- snapshots --------------------------------------------------------------------------------


async def _steady(pilot) -> None:
    await settle(pilot)
    for widget in pilot.app.screen.query("Input"):
        widget.cursor_blink = False
    await pilot.pause()


def test_snapshot_main_screen(snap_compare, data_dir, utc):
    history = History.for_model(STAND_IN)
    history.append(seeded_entry(QUATRAIN))
    history.append(seeded_entry("\nJ'm'arrache" + ", j'm'arrache" * 6, prompt="Sur le mic", temperature=1.2))
    assert snap_compare(StudioApp(STAND_IN, load_engine=stand_in()), terminal_size=SIZE, run_before=_steady)


def test_snapshot_main_screen_with_the_artist_list_open(snap_compare, data_dir, utc):
    History.for_model(STAND_IN).append(seeded_entry(QUATRAIN, artist="Shurik'n"))

    async def open_artists(pilot):
        await _steady(pilot)
        pilot.app.screen.query_one(ParamsPanel).artist_select.focus()
        await pilot.press("enter")

    app = StudioApp(STAND_IN, load_engine=stand_in(StandInEngine(artists=ARTISTS)))
    assert snap_compare(app, terminal_size=SIZE, run_before=open_artists)


def test_snapshot_help_screen(snap_compare):
    assert snap_compare(StudioApp(STAND_IN, load_engine=stand_in()), terminal_size=SIZE, run_before=_steady, press=["f1"])


def test_snapshot_no_model_screen(snap_compare):
    assert snap_compare(StudioApp(None, load_engine=stand_in()), terminal_size=SIZE, run_before=_steady)


# --- generation with the real tiny model --------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tiny_lyrics_model_dir) -> str:
    """The tiny random-init model, its decoder compiled once for this module."""
    load_engine(str(tiny_lyrics_model_dir), progress=lambda stage: None)
    return str(tiny_lyrics_model_dir)


def test_a_prompt_streams_into_the_history_and_is_saved(tiny_model, data_dir):
    streamed: list[str] = []
    stages: list[str] = []

    def spy(message):
        if isinstance(message, StudioScreen.Streamed):
            streamed.append(message.delta.text)
        elif isinstance(message, StudioScreen.ModelProgress):
            stages.append(message.stage)

    async def scenario(pilot):
        status = pilot.app.screen.query_one(StatusLine)
        assert stages == ["starting jax", "loading the model", "compiling the decoder"]  # shown while loading
        assert status.state == "ready" and status.step is None
        assert not pilot.app.screen.query(Select)  # the model knows no artists: no selector
        # blank: as many as fit the context after the prompt (SamplingParams' None)
        max_tokens = pilot.app.screen.query_one(ParamsPanel).input_for("max_new_tokens")
        assert (max_tokens.value, max_tokens.placeholder) == ("", "auto")
        assert status.device == describe_device(jax.devices()[0])
        set_params(pilot, max_new_tokens=60, seed=3)
        await pilot.click("#prompt")
        await pilot.press(*"Le soir / tombe", "enter")
        await settle(pilot)
        card = pilot.app.screen.query_one(EntryCard)
        assert len(streamed) > 1 and "".join(streamed) == card.entry.output  # chunk by chunk
        assert card.entry.prompt == "Le soir\ntombe"  # " / " separates bars
        (saved,) = History.for_model(tiny_model).load()
        assert saved == card.entry and not saved.stopped
        assert saved.params == params_to_record(SamplingParams(max_new_tokens=60, seed=3))
        assert status.state.startswith("ready")

    drive(StudioApp(tiny_model), scenario, message_hook=spy)


def test_the_panel_values_are_the_ones_used(tiny_model, data_dir):
    async def scenario(pilot):
        set_params(pilot, max_new_tokens=5, seed=1234, temperature=0.5, top_k=20)
        await pilot.click("#prompt")
        await pilot.press(*"Frère", "enter")
        await settle(pilot)
        card = pilot.app.screen.query_one(EntryCard)
        params = SamplingParams(max_new_tokens=5, seed=1234, temperature=0.5, top_k=20)
        assert card.entry.params == params_to_record(params)
        assert "seed 1234" in str(card.query_one(".entry-header").content)
        engine = pilot.app.screen.engine
        assert card.entry.output == "".join(delta.text for delta in engine.stream("Frère", params, threading.Event()))

    drive(StudioApp(tiny_model), scenario)


def test_every_request_beyond_the_context_is_cut_with_a_notification(tiny_model, data_dir):
    """Each generation's warnings are its own: the same cut twice gets two notices (Python's
    default filter shows a warning once per place), and the default max tokens fits silently."""

    def cut_notices(app) -> int:
        return sum("max_new_tokens 500 does not fit the model's context" in message for message in notifications(app))

    async def scenario(pilot):
        set_params(pilot, max_new_tokens=500, seed=1)  # the tiny model has 128 positions
        for expected in (1, 2):
            await pilot.click("#prompt")
            await pilot.press(*"Encore", "enter")
            await settle(pilot)
            assert cut_notices(pilot.app) == expected
        assert pilot.app.screen.query_one(StatusLine).state.startswith("ready")
        before = len(notifications(pilot.app))
        set_params(pilot, max_new_tokens="")  # blank: as many as fit
        await pilot.click("#prompt")
        await pilot.press(*"Encore", "enter")
        await settle(pilot)
        assert len(notifications(pilot.app)) == before
        assert pilot.app.screen.query(EntryCard)[-1].entry.params["max_new_tokens"] is None

    drive(StudioApp(tiny_model), scenario)


def slowed_down(model, progress):
    """The real engine, 50 ms per streamed piece: a generation long enough to stop by hand."""
    engine = load_engine(model, progress)
    stream = engine.stream

    def slow_stream(prompt, params, cancel):
        for delta in stream(prompt, params, cancel):
            time.sleep(0.05)
            yield delta

    engine.stream = slow_stream
    return engine


def test_escape_stops_a_long_generation(tiny_model, data_dir):
    async def scenario(pilot):
        set_params(pilot, max_new_tokens=120, seed=3)
        await pilot.click("#prompt")
        await pilot.press(*"Encore", "enter")
        card = pilot.app.screen.query_one(EntryCard)
        while not card.entry.output:
            await pilot.pause(0.02)
        await pilot.press("escape")
        assert not card.live and card.entry.stopped  # at once, not after the worker returns
        stopped_at = time.monotonic()
        await settle(pilot)
        assert time.monotonic() - stopped_at < 1.0  # the worker saw the cancel within a chunk
        (saved,) = History.for_model(tiny_model).load()
        assert saved.stopped and saved.output == card.entry.output
        deltas = pilot.app.screen.engine.stream("Encore", SamplingParams(max_new_tokens=120, seed=3), threading.Event())
        full = "".join(delta.text for delta in deltas)
        assert full.startswith(saved.output) and len(saved.output) < len(full)

    drive(StudioApp(tiny_model, load_engine=slowed_down), scenario)


def test_history_survives_a_restart_replays_exactly_regenerates_and_exports(tiny_model, data_dir):
    async def first_session(pilot):
        set_params(pilot, max_new_tokens=40, seed=11)
        await pilot.click("#prompt")
        await pilot.press(*"On roule", "enter")
        await settle(pilot)

    drive(StudioApp(tiny_model), first_session)
    (original,) = History.for_model(tiny_model).load()

    async def second_session(pilot):
        view = pilot.app.screen.query_one(HistoryView)
        (card,) = pilot.app.screen.query(EntryCard)
        assert card.entry == original
        view.focus()
        await pilot.press("r")  # replay: same parameters, same seed
        await settle(pilot)
        await pilot.press("ctrl+r")  # regenerate: a new seed
        await settle(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        (exported,) = (data_dir / "exports").glob("*.md")
        assert any(str(exported) in message for message in notifications(pilot.app))  # the path is shown
        markdown = exported.read_bytes().decode()  # as written: a \r in random text stays a \r
        for card in pilot.app.screen.query(EntryCard):
            assert f"```text\n{card.entry.prompt}{card.entry.output}\n```" in markdown

    drive(StudioApp(tiny_model), second_session)
    _, replayed, regenerated = History.for_model(tiny_model).load()
    assert (replayed.prompt, replayed.params, replayed.output) == (original.prompt, original.params, original.output)
    assert regenerated.params["seed"] != original.params["seed"]
    assert {**regenerated.params, "seed": 11} == original.params


@pytest.fixture(scope="module")
def conditioned_model(conditioned_model_dir) -> str:
    """The tiny model trained-as-if with artist tokens (Médine, Shurik'n), decoder compiled."""
    load_engine(str(conditioned_model_dir), progress=lambda stage: None)
    return str(conditioned_model_dir)


def test_the_chosen_artist_conditions_the_generation_replays_edits_and_exports(conditioned_model, data_dir):
    # A random model's artist token barely moves its logits: at these settings (the defaults
    # this test was written with) the two artists' draws differ, at plain sampling they do not.
    params = SamplingParams(max_new_tokens=8, temperature=0.9, top_p=0.95, repetition_penalty=1.15, seed=5,
                            artist="Shurik'n")

    async def scenario(pilot):
        panel = pilot.app.screen.query_one(ParamsPanel)
        select = panel.artist_select
        assert select_labels(select) == [NO_ARTIST, "Médine", "Shurik'n"]
        assert panel.artist is None  # no specific artist until one is chosen
        select.focus()
        await pilot.press("enter", "down", "down", "enter")  # open the list, pick the third
        assert panel.artist == "Shurik'n"
        set_params(pilot, max_new_tokens=8, temperature=0.9, top_p=0.95, repetition_penalty=1.15, seed=5)
        await pilot.click("#prompt")
        await pilot.press(*"Frère", "enter")
        await settle(pilot)
        card = pilot.app.screen.query_one(EntryCard)
        assert card.entry.params == params_to_record(params)
        assert "artist Shurik'n" in str(card.query_one(".entry-header").content)
        generator = pilot.app.screen.engine.generator
        assert card.entry.output == generator.generate("Frère", params)[0]
        assert card.entry.output != generator.generate("Frère", params.replace(artist=None))[0]

        panel.artist = None
        pilot.app.screen.query_one(HistoryView).focus()
        await pilot.press("r")  # replay: the entry's artist, whatever the panel says
        await settle(pilot)
        original, replayed = (card.entry for card in pilot.app.screen.query(EntryCard))
        assert (replayed.params, replayed.output) == (original.params, original.output)
        await pilot.press("e")
        assert select.value == "Shurik'n"
        await pilot.press("ctrl+s")
        await pilot.pause()
        (exported,) = (data_dir / "exports").glob("*.md")
        assert exported.read_text(encoding="utf-8").count("Artist: `Shurik'n`") == 2

    drive(StudioApp(conditioned_model), scenario)


def test_a_guided_bar_by_bar_generation_replays_exactly_after_a_restart(conditioned_model, data_dir):
    params = SamplingParams(max_new_tokens=40, seed=21, artist="Médine", rhyme_scheme="AABB", syllables=4,
                            syllable_tolerance=2, candidates=3, redraws=1, artist_guidance=2.0, max_bars=3)

    async def first_session(pilot):
        pilot.app.screen.query_one(ParamsPanel).artist = "Médine"
        set_params(pilot, max_new_tokens=40, seed=21, rhyme_scheme="AABB", syllables=4, candidates=3, redraws=1,
                   artist_guidance=2, max_bars=3)
        await pilot.click("#prompt")
        await pilot.press(*"Frère", "enter")
        await settle(pilot)
        card = pilot.app.screen.query_one(EntryCard)
        assert card.error is None and card.entry.params == params_to_record(params)
        generator = pilot.app.screen.engine.generator
        bars = [delta.bar for delta in generator.stream("Frère", params) if delta.bar is not None]
        facts = [(bar.syllables, bar.met, bar.reason) for bar in bars]
        assert [(mark.syllables, mark.met, mark.reason) for mark in card.entry.bars] == facts
        assert card.entry.output == generator.generate("Frère", params)[0]

    drive(StudioApp(conditioned_model), first_session)
    (original,) = History.for_model(conditioned_model).load()
    assert original.bars and params_from_record(original.params) == params

    async def second_session(pilot):
        pilot.app.screen.query_one(HistoryView).focus()
        await pilot.press("r")
        await settle(pilot)

    drive(StudioApp(conditioned_model), second_session)
    _, replayed = History.for_model(conditioned_model).load()
    assert (replayed.params, replayed.output, replayed.bars) == (original.params, original.output, original.bars)


def test_an_entry_saved_before_the_bar_fields_existed_loads_and_replays(tiny_model, data_dir):
    params = SamplingParams(max_new_tokens=20, seed=5, temperature=0.8)
    engine = load_engine(tiny_model, progress=lambda stage: None)
    output = "".join(delta.text for delta in engine.stream("On roule", params, threading.Event()))
    new_fields = {"rhyme_scheme", "rhyme_with", "rhyme_vowels", "syllables", "syllable_tolerance", "candidates", "steering", "redraws",
                  "artist_guidance"}
    old_params = {name: value for name, value in params_to_record(params).items() if name not in new_fields}
    record = {"prompt": "On roule", "output": output, "params": old_params, "model": tiny_model, "step": None,
              "created": "2026-01-02T03:04:05+00:00", "stopped": False}  # no "bars" either
    history = History.for_model(tiny_model)
    history.path.parent.mkdir(parents=True)
    history.path.write_text(json.dumps(record) + "\n", encoding="utf-8")

    async def scenario(pilot):
        (card,) = pilot.app.screen.query(EntryCard)
        assert card.entry.bars == () and " · " not in card._lyrics().plain
        pilot.app.screen.query_one(HistoryView).focus()
        await pilot.press("r")
        await settle(pilot)

    drive(StudioApp(tiny_model), scenario)
    _, replayed = history.load()
    assert replayed.output == output and replayed.params == params_to_record(params)  # the new fields at their defaults


def test_no_room_for_one_bar_is_shown_on_the_syllables_field(tiny_model, data_dir):
    async def scenario(pilot):
        set_params(pilot, max_new_tokens=4, syllables=12, seed=1)
        await pilot.click("#prompt")
        await pilot.press(*"Encore", "enter")
        await settle(pilot)
        panel = pilot.app.screen.query_one(ParamsPanel)
        assert "no room for one bar: 4 new tokens" in str(panel.query_one("#param-error").content)
        assert panel.input_for("syllables").has_class("-invalid") and pilot.app.screen.focused is panel.input_for("syllables")
        assert pilot.app.screen.query_one(StatusLine).state == "generation failed"
        set_params(pilot, syllables=2)  # any change checks again and clears it
        await pilot.pause()
        assert str(panel.query_one("#param-error").content) == "" and not panel.input_for("syllables").has_class("-invalid")

    drive(StudioApp(tiny_model), scenario)


def test_a_damaged_lexicon_leaves_rhymes_uncoloured_with_a_notice(data_dir, monkeypatch):
    from jaxrap.phonetics import lexicon

    def damaged(path):
        raise JaxrapError(f"{path}: rows are not sorted by spelling; rebuild it with scripts/build_lexicon.py")

    monkeypatch.setattr(lexicon, "read_lexicon", damaged)
    lexicon.load_lexicon.cache_clear()
    History.for_model(STAND_IN).append(seeded_entry(QUATRAIN))

    async def scenario(pilot):
        assert any("rhymes are not coloured" in message for message in notifications(pilot.app))
        assert not pilot.app.screen.query_one(HistoryView).rhymes and pilot.app.screen.query_one(EntryCard).entry.output == QUATRAIN

    drive(StudioApp(STAND_IN, load_engine=stand_in()), scenario)
    monkeypatch.undo()
    lexicon.load_lexicon.cache_clear()  # the real table for the tests that follow
