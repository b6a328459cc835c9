"""What the terminal UI's tests share: a stand-in engine (a fixed model without weights that
streams canned text and suggests canned bars), the fixtures that keep the history, verses and
exports in a temporary data dir, and helpers to drive an app headless with Textual's Pilot."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from jaxrap.data.artists import SongPrompt
from jaxrap.load import LoadedModel
from jaxrap.model.config import GPT2Config
from jaxrap.sample.bar_check import Bar
from jaxrap.sample.generator import TextDelta
from jaxrap.tui.app import StudioApp
from jaxrap.tui.history import DATA_DIR_ENV
from jaxrap.tui.widgets.params_panel import ParamsPanel

SIZE = (110, 34)
STAND_IN = "runs/tiny_cpu"  # the model name the stand-in engine reports (not a real path)
ARTISTS = ("Médine", "Shurik'n", "unknown")  # as LoadedModel.artists lists a conditioned model's
QUATRAIN = "\nLe béton m'a appris la patience\nOn rêvait de partir au bout du globe\nLe bitume m'a volé mon enfance"


class StandInEngine:
    """A fixed model without weights; streams ``text`` in pieces, or waits (``hold``) until cancelled."""

    device = "cpu"

    def __init__(self, text: str = QUATRAIN, hold: bool = False, artists: tuple[str, ...] = ()):
        self.text, self.hold = text, hold
        song_prompt = SongPrompt(0, {name: token for token, name in enumerate(artists, 2)}) if artists else None
        self.model = LoadedModel(GPT2Config(n_positions=1024), None, None, step=300, song_prompt=song_prompt)

    def stream(self, prompt, params, cancel):
        for start in range(0, len(self.text), 9):
            yield TextDelta(0, self.text[start : start + 9])
        while self.hold and not cancel.wait(0.01):
            pass


def stand_in(engine: StandInEngine | None = None):
    return lambda model, progress: engine or StandInEngine()


def temporary_data_dir(tmp_path: Path, monkeypatch) -> Path:
    """History, verses and exports in a temporary data dir; a working directory without runs/.
    Each test module's autouse ``data_dir`` fixture calls it."""
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data"


def drive(app: StudioApp, scenario, message_hook=None) -> None:
    """Run ``scenario(pilot)`` in the app, headless, at SIZE."""

    async def main():
        async with app.run_test(size=SIZE, message_hook=message_hook) as pilot:
            await settle(pilot)
            await scenario(pilot)

    asyncio.run(main())


async def settle(pilot) -> None:
    """Wait until every worker (model loading, generation) is done and the screen is drawn."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()



def notifications(app: StudioApp) -> list[str]:
    return [notification.message for notification in app._notifications]


def set_params(pilot, **values) -> None:
    panel = pilot.app.screen.query_one(ParamsPanel)
    for name, value in values.items():
        panel.input_for(name).value = str(value)


def candidate(text: str, syllables: int, rhyme_key: str | None, word: str | None, reason: str | None = None) -> Bar:
    """A candidate bar as ``Generator.suggest_bars`` returns it (index and counts unused by the screen)."""
    return Bar(0, text, syllables, rhyme_key, word, "A", None, None, reason is None, reason, 4, 0)


SUGGESTED = (
    candidate("Le bitume m'a volé mon enfance", 9, "ɑ̃s", "enfance"),
    candidate("J'avance dans la nuit sans méfiance", 9, "ɑ̃s", "méfiance"),
    candidate("On tourne en rond dans le quartier", 9, "je", "quartier", "ends on 'je' (quartier), not 'ɑ̃s'"),
)


class SuggestingEngine(StandInEngine):
    """Suggests ``SUGGESTED`` (or ``bars``) for any request, and records each request; waits on
    ``gate`` first when given (a draw in flight)."""

    def __init__(self, bars=SUGGESTED, gate: threading.Event | None = None, **kwargs):
        super().__init__(**kwargs)
        self.bars, self.gate = list(bars), gate
        self.requests: list[tuple[list[str], object, int, int | None]] = []

    def suggest_bars(self, bars, params, k, *, index=None, cancel=None):
        self.requests.append((list(bars), params, k, index))
        if self.gate is not None:
            self.gate.wait(10)
        return [] if cancel is not None and cancel.is_set() else self.bars[:k]
