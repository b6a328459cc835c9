"""Generation history: per-model files in the data dir, crash-safe appends, Markdown export."""

from __future__ import annotations

import json

import pytest

from jaxrap.tui.history import DATA_DIR_ENV, BarMark, History, HistoryEntry, entries_to_markdown, model_key

PARAMS = {"max_new_tokens": 64, "temperature": 0.9, "top_p": 0.95, "seed": 7, "stop": []}


def entry(prompt: str = "J'traîne au quartier", output: str = "\nl'été brûle le béton", **changes) -> HistoryEntry:
    fields = dict(prompt=prompt, output=output, params=PARAMS, model="runs/tiny", step=300, created="2025-01-02T03:04:05+00:00")
    return HistoryEntry(**{**fields, **changes})


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    return tmp_path / "data"


def test_history_lives_per_model_under_the_data_dir(data_dir, tmp_path):
    run = tmp_path / "runs" / "tiny_cpu"
    run.mkdir(parents=True)
    history = History.for_model(str(run))
    assert history.path.parent == data_dir / "history"
    assert history.path.name.startswith("tiny_cpu-") and history.path.suffix == ".jsonl"
    assert History.for_model("antoinelouis/belgpt2").path != history.path
    # The same directory named two ways is one model.
    assert model_key(str(run)) == model_key(str(run / ".." / "tiny_cpu"))


def test_entries_round_trip_in_order(data_dir):
    history = History.for_model("runs/tiny")
    first, second = entry(), entry("Deuxième", "\nbar", stopped=True, step=None)
    history.append(first)
    history.append(second)
    assert History.for_model("runs/tiny").load() == [first, second]


def test_a_truncated_last_line_is_skipped_and_not_glued_to_the_next_entry(data_dir):
    history = History.for_model("runs/tiny")
    history.append(entry())
    with history.path.open("a", encoding="utf-8") as file:
        file.write(entry("coupé").to_json()[:25])  # a crash in the middle of a write
    assert history.load() == [entry()]
    assert history.skipped_lines == 1
    history.append(entry("après"))
    assert [e.prompt for e in history.load()] == ["J'traîne au quartier", "après"]
    assert history.skipped_lines == 1


def test_unknown_fields_are_ignored_and_bad_records_skipped(data_dir):
    history = History.for_model("runs/tiny")
    history.path.parent.mkdir(parents=True)
    record = json.loads(entry().to_json())
    lines = [json.dumps({**record, "from_a_newer_version": 1}), json.dumps({"prompt": 3}), "[]", "", json.dumps(record)]
    history.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert history.load() == [entry(), entry()]
    assert history.skipped_lines == 2


def test_markdown_export_keeps_bars_parameters_and_step(data_dir):
    history = History.for_model("runs/tiny")
    path = history.export_markdown([entry(), entry("Sans pas", "\n```", step=None, stopped=True)])
    assert path.parent == data_dir / "exports" and path.suffix == ".md"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# jaxrap lyrics — runs/tiny")
    assert "```text\nJ'traîne au quartier\nl'été brûle le béton\n```" in text
    assert "Model: `runs/tiny`, step 300" in text
    assert "Parameters: seed 7 · max_new_tokens 64 · temperature 0.9 · top_p 0.95\n" in text  # empty stop left out
    assert "## 2. 2025-01-02T03:04:05+00:00 (stopped)" in text
    assert "````text\nSans pas\n```\n````" in text  # a fence inside the lyrics gets a longer fence


def test_markdown_export_names_the_chosen_artist_on_its_own_line():
    chosen, none = entry(params={**PARAMS, "artist": "Oxmo_Puccino"}), entry(params={**PARAMS, "artist": None})
    text = entries_to_markdown([chosen, none])
    assert "Model: `runs/tiny`, step 300  \nArtist: `Oxmo_Puccino`  \nPrompt: " in text
    assert text.count("Artist:") == 1  # no specific artist: no line
    assert text.count("Parameters: seed 7 · max_new_tokens 64 · temperature 0.9 · top_p 0.95\n") == 2


def test_markdown_of_no_entries_says_so():
    assert "no generations yet" in entries_to_markdown([])


def test_bar_marks_round_trip_and_entries_from_before_them_read_none(data_dir):
    history = History.for_model("runs/tiny")
    marked = entry(bars=(BarMark(1, 12, True), BarMark(2, 15, False, "15 syllables, not 10-14")))
    history.append(marked)
    old = json.loads(entry().to_json())
    del old["bars"]  # written by a jaxrap without bar marks
    with history.path.open("a", encoding="utf-8") as file:
        file.write(json.dumps(old) + "\n")
        file.write(json.dumps({**old, "bars": [{"line": "one"}]}) + "\n")  # damaged: skipped, not a crash
    assert history.load() == [marked, entry()]
    assert history.skipped_lines == 1
