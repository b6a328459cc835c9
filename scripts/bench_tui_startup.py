"""Time the terminal studio takes to draw its first frame over a long history, against a reference tree.

    python scripts/bench_tui_startup.py --reference /tmp/integ-tree --entries 30 --repeats 7

Each measurement is a fresh Python process (imports included, as a user's start) running the app
headless (Textual's ``run_test``) on a history of ``--entries`` generations (16 invented bars each,
half of them with bar marks) and a stand-in model. First paint is when the studio asks for the
model, which it does after its first frame (``call_after_refresh``); settled is when every worker
is done (the lexicon read, rhymes coloured). Processes for this tree and the reference alternate,
so the machine's load is shared alike; the ratio of medians is the figure to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

MODEL = "runs/bench_model"  # a name, not a path: the stand-in engine serves it

# Run in the child with PYTHONPATH set to one tree: only interfaces both trees share.
CHILD = r"""
import time
start = time.perf_counter()
import asyncio, json, sys
from jaxrap.load import LoadedModel
from jaxrap.model.config import GPT2Config
from jaxrap.tui.app import StudioApp

marks = {}

class Engine:
    device = "cpu"
    model = LoadedModel(GPT2Config(n_positions=1024), None, None, step=300)

def load_engine(model, progress):
    marks["first_paint"] = time.perf_counter() - start
    return Engine()

async def main():
    async with StudioApp(sys.argv[1], load_engine=load_engine).run_test(size=(110, 34)) as pilot:
        while "first_paint" not in marks:
            await pilot.pause(0.001)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        marks["settled"] = time.perf_counter() - start

asyncio.run(main())
print(json.dumps(marks))
"""

WORDS = (
    "béton bitume quartier banlieue tour dalle hall parking métro nuit lune aube soleil pluie hiver été "
    "frère daron mama équipe potes stylo plume encre page rime couplet micro studio rêve espoir galère "
    "sueur larme rage fierté silence mémoire j'avance j'écris j'attends on roule on veille toujours jamais"
).split()


def history_lines(entries: int, seed: int = 0) -> list[str]:
    """``entries`` JSON lines of invented 16-bar generations; every other one with bar marks."""
    rng = random.Random(seed)
    lines = []
    for number in range(entries):
        bars = [" ".join(rng.choice(WORDS) for _ in range(7)) for _ in range(16)]
        record = {
            "prompt": bars[0], "output": "\n" + "\n".join(bars[1:]), "model": MODEL, "step": 300,
            "params": {"seed": number, "temperature": 1.0, "top_p": 0.9, "repetition_penalty": 1.1, "stop": []},
            "created": "2026-01-02T03:04:05+00:00", "stopped": False,
        }
        if number % 2:
            record["params"] |= {"rhyme_scheme": "AABB", "syllables": 12}
            record["bars"] = [
                {"line": k, "syllables": 12 + k % 3, "met": k % 5 != 0, "reason": None if k % 5 else "15 syllables, not 10-14"}
                for k in range(1, 16)
            ]
        lines.append(json.dumps(record, ensure_ascii=False))
    return lines


def measure(tree: Path, data_dir: Path, workdir: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "JAXRAP_DATA_DIR": str(data_dir)}
    done = subprocess.run([sys.executable, "-c", CHILD, MODEL], env=env, cwd=workdir, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="another jaxrap tree (e.g. an export of main)")
    parser.add_argument("--entries", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    trees = {"this tree": Path(__file__).resolve().parents[1], "reference": args.reference.resolve()}
    with tempfile.TemporaryDirectory() as scratch:
        workdir, data_dir = Path(scratch), Path(scratch) / "data"
        os.environ["JAXRAP_DATA_DIR"] = str(data_dir)
        os.chdir(workdir)  # as the children see the model name
        sys.path.insert(0, str(trees["this tree"]))
        from jaxrap.tui.history import History  # where both trees keep the model's history

        path = History.for_model(MODEL).path
        path.parent.mkdir(parents=True)
        path.write_text("\n".join(history_lines(args.entries)) + "\n", encoding="utf-8")
        times: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for _ in range(args.repeats):
            for name, tree in trees.items():
                times[name].append(measure(tree, data_dir, workdir))
    medians = {name: {key: statistics.median(run[key] for run in runs) for key in runs[0]} for name, runs in times.items()}
    for name, median in medians.items():
        print(f"{name:10s} first paint {median['first_paint']:.3f} s  settled {median['settled']:.3f} s")
    for key in ("first_paint", "settled"):
        print(f"ratio this tree / reference, {key.replace('_', ' ')}: {medians['this tree'][key] / medians['reference'][key]:.2f}")


if __name__ == "__main__":
    main()
