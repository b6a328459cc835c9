"""The training step with freed host memory kept (``jaxrap.host_allocator``) against glibc's defaults.

    python scripts/bench_malloc.py [--shapes tiny,llama-tiny] [--rounds 8] [--steps 3]

For each shape and each framework (jaxrap's step and transformers' PyTorch step, as
``scripts/bench_train.py`` builds them), two worker processes hold the same step, one started
with ``JAXRAP_MALLOC=keep`` (what ``jaxrap`` does on a CPU-only host) and one with
``JAXRAP_MALLOC=system`` (glibc's defaults); both call ``keep_freed_memory`` first thing, as
``jaxrap`` does. Rounds of ``--steps`` steps alternate between the two (and which goes first);
each figure is the median over rounds, with the minor page faults and system CPU time per step
and the resident memory at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

WORKER = """
import json, resource, sys, time
from jaxrap.host_allocator import keep_freed_memory
keep_freed_memory()
sys.path.insert(0, sys.argv[3])
import bench_train
shape, framework, steps = bench_train.SHAPES[sys.argv[1]], sys.argv[2], int(sys.argv[4])
step = (bench_train.JaxrapStep if framework == "jaxrap" else bench_train.TorchStep)(shape, 100)
step.run(2)  # compiled, warmed up
print("ready", flush=True)
for _ in sys.stdin:
    before = resource.getrusage(resource.RUSAGE_SELF)
    seconds = step.run(steps) / steps
    after = resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/self/statm") as statm:
        resident = int(statm.read().split()[1]) * 4096
    print(json.dumps({"seconds": seconds, "faults": (after.ru_minflt - before.ru_minflt) / steps,
                      "system": (after.ru_stime - before.ru_stime) / steps, "resident": resident}), flush=True)
"""
MODES = ("keep", "system")


def measure(shape: str, framework: str, rounds: int, steps: int) -> dict[str, list[dict]]:
    workers = {}
    for mode in MODES:
        workers[mode] = subprocess.Popen(
            [sys.executable, "-c", WORKER, shape, framework, str(Path(__file__).resolve().parent), str(steps)],
            env={**os.environ, "JAXRAP_MALLOC": mode}, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert workers[mode].stdout is not None and workers[mode].stdout.readline().strip() == "ready"
    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    try:
        for index in range(rounds):
            for mode in MODES if index % 2 == 0 else MODES[::-1]:
                worker = workers[mode]
                assert worker.stdin is not None and worker.stdout is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
                results[mode].append(json.loads(worker.stdout.readline()))
    finally:
        for worker in workers.values():
            worker.kill()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="tiny,llama-tiny", help="comma-separated shapes of scripts/bench_train.py")
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds per mode (median taken)")
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    args = parser.parse_args()
    print(f"median of {args.rounds} alternating rounds of {args.steps} steps; per step: seconds, minor page faults,"
          " system CPU seconds; resident memory after the last round")
    for shape in [name.strip() for name in args.shapes.split(",") if name.strip()]:
        for framework in ("jaxrap", "pytorch"):
            results = measure(shape, framework, args.rounds, args.steps)
            line = []
            for mode in MODES:
                rows = results[mode]
                line.append(f"{mode} {statistics.median(r['seconds'] for r in rows):.3f} s,"
                            f" {statistics.median(r['faults'] for r in rows):,.0f} faults,"
                            f" {statistics.median(r['system'] for r in rows):.3f} s sys, {rows[-1]['resident'] / 2**20:,.0f} MiB")
            speedup = statistics.median(r["seconds"] for r in results["system"]) / statistics.median(r["seconds"] for r in results["keep"])
            print(f"{shape:11s} {framework:7s} " + " | ".join(line) + f" | kept {speedup:.2f}x faster", flush=True)


if __name__ == "__main__":
    main()
