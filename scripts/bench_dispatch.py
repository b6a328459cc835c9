"""Issue 17's multi-device deadlock, and what bounding the host's run-ahead costs, in one run.

    python scripts/bench_dispatch.py [--tries 3] [--programs 100] [--loop-steps 60] [--rounds 3] [--json]

Runs on 4 virtual CPU devices (it sets ``--xla_force_host_platform_device_count=4`` itself).

1. The mechanism, without jaxrap's loop or any thread of its own: a child process dispatches
   ``--programs`` steps of a small data-parallel eval (4 matmul layers over rows split across
   the devices, the loss summed over them: one all-reduce each, like ``jit_eval_step``) and
   adds them up on the devices, as ``evaluate_loss`` did, reading the sum only at the end.
   Each child either finishes or XLA aborts it (exit 134, "Expected 4 threads to join the
   rendezvous"); the collective timeout is lowered to 15 s so that a deadlock costs 15 s,
   not 40. Children alternate between no window and ``DispatchWindow`` (jaxrap.dispatch).
2. The cost: ``loop.train`` at ``bench_train.py``'s tiny shape on the 4 devices (prefetch
   thread, a log every 10 steps, a checkpoint every 20), in rounds alternating the shipped
   window (``MAX_IN_FLIGHT`` steps) with an unbounded one (the loop before the fix; safe
   here because it syncs every 10 steps and evaluates only after the timed window); wall
   seconds per step between two logs, median over rounds.
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (
    f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4"
    " --xla_cpu_collective_call_terminate_timeout_seconds=15 --xla_cpu_collective_call_warn_stuck_timeout_seconds=5"
).strip()

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

UNBOUNDED = 1_000_000


def child(programs: int, window: int) -> None:
    """One try of part 1: dispatch ``programs`` eval steps, summing on the devices."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    from jaxrap.dispatch import DispatchWindow

    mesh = Mesh(np.array(jax.devices()), ("data",))
    rows, replicated = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    kernel = jax.device_put(np.random.default_rng(0).standard_normal((256, 256), np.float32) / 16, replicated)

    def loss(kernel, x):  # x (B, 256) split over the devices; the sum over B is an all-reduce
        for _ in range(4):
            x = jnp.tanh(x @ kernel)
        return jnp.stack([jnp.sum(x), jnp.float32(x.shape[0])])

    step = jax.jit(loss, in_shardings=(replicated, rows), out_shardings=replicated)
    batch = np.random.default_rng(1).standard_normal((2048, 256), np.float32)
    total, pending = None, DispatchWindow(window)
    for _ in range(programs):
        result = step(kernel, jax.device_put(batch, rows))
        total = result if total is None else total + result
        pending.admit(total)
    print(float(jax.device_get(total)[1]))


def mechanism(tries: int, programs: int, say) -> dict:
    from jaxrap.dispatch import MAX_IN_FLIGHT

    outcomes: dict[str, list[int]] = {"unbounded": [], f"window {MAX_IN_FLIGHT}": []}
    for attempt in range(tries):
        for name, window in (("unbounded", UNBOUNDED), (f"window {MAX_IN_FLIGHT}", MAX_IN_FLIGHT)):
            command = [sys.executable, __file__, "--child", str(programs), str(window)]
            code = subprocess.run(command, capture_output=True, text=True, timeout=300).returncode
            outcomes[name].append(code)
            aborted = " (XLA aborted a stuck all-reduce)" if code in (-6, 134) else ""
            say(f"mechanism: try {attempt + 1}/{tries}, {name}: exit {code}{aborted}")
    return {name: {"exits": codes, "finished": sum(code == 0 for code in codes)} for name, codes in outcomes.items()}


def loop_cost(loop_steps: int, rounds: int, say) -> dict:
    import bench_train

    from jaxrap.dispatch import MAX_IN_FLIGHT, DispatchWindow
    from jaxrap.train import loop

    windows = {"shipped": MAX_IN_FLIGHT, "unbounded": UNBOUNDED}
    seconds: dict[str, list[float]] = {name: [] for name in windows}
    for round_index in range(rounds):
        for name in list(windows) if round_index % 2 == 0 else list(windows)[::-1]:
            loop.DispatchWindow = lambda limit=windows[name]: DispatchWindow(limit)  # type: ignore[misc]
            measured = bench_train.measure_loop(bench_train.SHAPES["tiny"], loop_steps, 20, 10, lambda text: None)
            seconds[name].append(measured["seconds_per_step"])
            say(f"loop: round {round_index + 1}/{rounds}, window {name}: {seconds[name][-1]:.3f} s/step")
    loop.DispatchWindow = DispatchWindow  # type: ignore[misc]
    medians = {name: statistics.median(times) for name, times in seconds.items()}
    return {"seconds_per_step": seconds, "median": medians, "shipped_over_unbounded": medians["shipped"] / medians["unbounded"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=3, help="children per variant in part 1")
    parser.add_argument("--programs", type=int, default=100, help="eval steps each child dispatches")
    parser.add_argument("--loop-steps", type=int, default=60, help="steps of loop.train per round in part 2 (0: skip)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per variant in part 2")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args(argv)
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if args.json else print
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "devices": 4, "mechanism": mechanism(args.tries, args.programs, say)}
    if args.loop_steps:
        report["loop"] = loop_cost(args.loop_steps, args.rounds, say)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for name, outcome in report["mechanism"].items():
        print(f"{args.programs} eval steps dispatched, {name}: {outcome['finished']} of {len(outcome['exits'])} children finished")
    if "loop" in report:
        medians = report["loop"]["median"]
        print(f"loop.train, tiny shape, 4 devices: {medians['shipped']:.3f} s/step with the window, {medians['unbounded']:.3f}"
              f" unbounded ({report['loop']['shipped_over_unbounded']:.3f}x)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), int(sys.argv[3]))
    else:
        started = time.perf_counter()
        main()
        print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
