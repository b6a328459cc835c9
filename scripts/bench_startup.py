"""What the persistent compilation cache saves `jaxrap train` when a run is stopped and rerun.

    python scripts/bench_startup.py [--configs tiny_cpu,llama_tiny_cpu] [--rounds 2] [--csv PATH]

For each config, each round starts a fresh run directory twice, once with the cache off
(``JAXRAP_COMPILATION_CACHE=""``) and once with an empty cache directory of its own, in
alternating order: `jaxrap train --set train.steps=6` is
stopped with SIGTERM once its second step is logged (as Ctrl-C stops it), then rerun with the same
command, which resumes and trains to step 6 (memory plan, compiles, steps, final evaluation).
Printed: the medians of both legs' wall times, with the cache off and on; the rerun's ratio
is what the cache saves a rerun (every program compiled by the first leg), the first leg's
figures what filling an empty cache costs. The first run of a config also prepares the corpus
(in a temporary directory): that round's first leg is slower either way.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEPS, STOP_AFTER = 6, 2


def _train(config: Path, root: Path, run: str, source: str) -> list[str]:
    return [sys.executable, "-m", "jaxrap", "train", "--config", str(config), "--run-dir", str(root / run), "--samples", "0",
            "--source", source, "--set", f"data.path={root / 'corpus'}", "--set", f"train.steps={STEPS}",
            "--set", "train.log_every=1", "--set", "train.eval_every=1000", "--set", "train.save_every=1000"]


def _stopped_then_rerun(command: list[str], run_dir: Path, env: dict[str, str]) -> tuple[float, float]:
    """(seconds until the SIGTERMed first leg exited, seconds of the rerun that resumes it)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as error:  # a file, not a pipe nobody reads while it runs
        first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=error, text=True)
        metrics = run_dir / "metrics.jsonl"
        while first.poll() is None and (not metrics.is_file() or len(metrics.read_text().splitlines()) < STOP_AFTER):
            time.sleep(0.05)
        first.send_signal(signal.SIGTERM)
        first.wait()
        stopped = time.perf_counter() - start
        if first.returncode != 0:
            error.seek(0)
            raise SystemExit(f"the first leg failed:\n{error.read()[-3000:]}")
    start = time.perf_counter()
    rerun = subprocess.run(command, env=env, capture_output=True, text=True)
    if rerun.returncode != 0 or "resumed from checkpoint" not in rerun.stdout:
        raise SystemExit(f"the rerun did not resume:\n{rerun.stdout[-2000:]}{rerun.stderr[-2000:]}")
    return stopped, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="tiny_cpu,llama_tiny_cpu")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--csv", default=os.environ.get("JAXRAP_LYRICS_CSV", str(REPO.parent / "shared/data/lyrics_df_2.csv")))
    args = parser.parse_args()
    print(f"jaxrap train --set train.steps={STEPS}, SIGTERM once step {STOP_AFTER} is logged, then the same command again;"
          f" medians of {args.rounds} round(s), seconds")
    print(f"{'config':16s} {'first leg: off':>15s} {'cache':>7s} {'rerun: off':>11s} {'cache':>7s} {'rerun off / cache':>18s}")
    for name in args.configs.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            times: dict[str, list[tuple[float, float]]] = {"off": [], "cache": []}
            for round_ in range(args.rounds):
                for mode in ("off", "cache") if round_ % 2 == 0 else ("cache", "off"):
                    run = f"{mode}{round_}"
                    env = {**os.environ, "JAXRAP_COMPILATION_CACHE": "" if mode == "off" else str(root / f"xla{round_}")}
                    command = _train(REPO / "configs" / f"{name}.yaml", root, run, args.csv)
                    times[mode].append(_stopped_then_rerun(command, root / run, env))
            first = {mode: statistics.median(t[0] for t in legs) for mode, legs in times.items()}
            rerun = {mode: statistics.median(t[1] for t in legs) for mode, legs in times.items()}
            print(f"{name:16s} {first['off']:15.1f} {first['cache']:7.1f} {rerun['off']:11.1f} {rerun['cache']:7.1f}"
                  f" {rerun['off'] / rerun['cache']:17.2f}x", flush=True)


if __name__ == "__main__":
    main()
