"""Attention within a sequence on the CPU: blocks of queries against one block.

    python scripts/bench_attention.py [--rounds 9] [--block 64]

Times the forward and backward of ``jaxrap.model.attention.attention_within`` (what training
and scoring run without a cache), float32, grouped-query heads as llama_tiny_cpu's (4 query, 2
key/value, head width 64), at the training shapes of the tiny configs (8 x 256 tokens) and of
a 1,024-token block (2 x 1,024): blocks of ``--block`` queries (the CPU's default) against a
single block over the whole sequence (what an accelerator runs). Rounds alternate between the
two; each figure is the median over rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np

from jaxrap.model import attention

HEADS, KV_HEADS, HEAD_DIM = 4, 2, 64


def _probs(scores: jax.Array, allowed: jax.Array, key: jax.Array | None) -> jax.Array:
    scores = jnp.where(allowed, scores * HEAD_DIM**-0.5, jnp.finfo(jnp.float32).min)
    return jax.nn.softmax(scores, axis=-1)


def compiled_step(block: int, inputs: tuple[jax.Array, ...]):
    """The jitted gradient of a weighted sum of attention_within's output, traced with ``block``."""
    q, k, v, weights = inputs
    with mock.patch.object(attention, "CPU_QUERY_BLOCK", block):
        loss = lambda q, k, v: jnp.sum(attention.attention_within(q, k, v, None, None, _probs) * weights)  # noqa: E731
        return jax.jit(jax.grad(loss, argnums=(0, 1, 2))).lower(q, k, v).compile()


def measure(batch: int, length: int, block: int, rounds: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    shapes = [(batch, length, HEADS, HEAD_DIM), (batch, length, KV_HEADS, HEAD_DIM), (batch, length, KV_HEADS, HEAD_DIM),
              (batch, length, HEADS, HEAD_DIM)]
    inputs = tuple(jnp.asarray(rng.normal(size=shape), jnp.float32) for shape in shapes)
    steps = {"blocks": compiled_step(block, inputs), "one block": compiled_step(length, inputs)}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_index in range(rounds):
        for name in steps if round_index % 2 == 0 else list(steps)[::-1]:
            started = time.perf_counter()
            jax.block_until_ready(steps[name](*inputs[:3]))
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--block", type=int, default=attention.CPU_QUERY_BLOCK, help="queries per block")
    args = parser.parse_args()
    print(f"attention_within forward + backward, float32, {HEADS} query / {KV_HEADS} key-value heads of {HEAD_DIM}, "
          f"{jax.default_backend()}, medians of {args.rounds} alternating rounds")
    for batch, length in ((8, 256), (2, 1024)):
        result = measure(batch, length, args.block, args.rounds)
        print(f"{batch} x {length:>5} tokens: blocks of {args.block} {result['blocks'] * 1e3:7.2f} ms, "
              f"one block {result['one block'] * 1e3:7.2f} ms: {result['one block'] / result['blocks']:.2f}x faster")


if __name__ == "__main__":
    main()
