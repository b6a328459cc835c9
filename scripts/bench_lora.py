"""LoRA against full fine-tuning, and adapters merged against applied at run time, measured in one run.

    python scripts/bench_lora.py [--shapes tiny,gpt2] [--rounds 5] [--steps 3] [--json]

Training: for each shape (``bench_train``'s: the tiny shape of configs/tiny_cpu.yaml and GPT-2
small's), the real train step ``jaxrap train`` builds (``trainable.training_model`` and
``loop.CompiledSteps``: mesh, shardings, donation, AdamW with clipping) for full fine-tuning and
for LoRA (rank 16 on every linear layer of the blocks), each without and with ``train.remat:
block``. Rounds alternate the four (and their order), each figure is the median over rounds of
the seconds per step, so drift on the shared machine hits all alike. Also the bytes of
gradients and optimizer state (the memory plan's, ``jaxrap.train.memory_plan``), LoRA's over
full fine-tuning's.

Use of a trained LoRA run (generate, eval, the TUI): the model with its adapters merged into
the kernels (what ``jaxrap.rundir.load_run_model`` returns), against the adapted network
applying them at run time, both jitted, on GPT-2 small's shape: scoring (the forward over a
batch of blocks, what eval runs) and decoding (one token against a KV cache, what generate
runs), and the one-off cost of merging.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import datetime, timezone

from bench_train import SHAPES, Shape

METHODS = {  # name -> run config overrides
    "full": [],
    "lora": ["model.lora.rank=16"],
    "full+remat": ["train.remat=block"],
    "lora+remat": ["model.lora.rank=16", "train.remat=block"],
}


def _config(shape: Shape, overrides: list[str]):
    from jaxrap.config import load_config

    return load_config(None, [
        "model.init=bench/base", f"data.block_size={shape.block}", f"train.per_device_batch_size={shape.batch}",
        "optim.warmup_steps=0", "train.steps=1000", *overrides,
    ])


class Step:
    """One method's compiled train step with its state, frozen params and batch on the device."""

    def __init__(self, shape: Shape, overrides: list[str]):
        import jax
        import jax.numpy as jnp

        from jaxrap import sharding
        from jaxrap.model import lm
        from jaxrap.train.loop import CompiledSteps
        from jaxrap.train.trainable import training_model

        config = _config(shape, overrides)
        base = lm.build(shape.model, seed=0)[1]
        model = training_model(config, shape.model, lambda shardings: base)
        mesh = sharding.make_mesh(config.mesh)
        self.steps = CompiledSteps.build(config, model, mesh, shape.block)
        self.frozen = sharding.place(model.load_frozen(self.steps.frozen_shardings), self.steps.frozen_shardings)
        shardings = self.steps.state_shardings["params"]
        self.state = self.steps.init_state(sharding.place(model.init_params(shardings, self.frozen), shardings))
        tokens = jax.random.randint(jax.random.PRNGKey(1), (1, shape.batch, shape.block + 1), 0, shape.model.vocab_size)
        self.batch = {"input_ids": tokens[..., :-1], "targets": tokens[..., 1:], "loss_mask": jnp.ones_like(tokens[..., 1:])}
        self.run(1)  # compile

    def run(self, steps: int) -> float:
        started = time.perf_counter()
        for _ in range(steps):
            self.state, metrics = self.steps.train_fn(self.state, self.batch, self.frozen)
        assert float(metrics["loss"]) == float(metrics["loss"])  # synchronised, finite
        return (time.perf_counter() - started) / steps


def bench_training(shape: Shape, rounds: int, steps: int) -> dict:
    import jax

    from jaxrap.config import MeshConfig
    from jaxrap.sharding import make_mesh
    from jaxrap.train.memory_plan import plan_both

    runs = {name: Step(shape, overrides) for name, overrides in METHODS.items()}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for index in range(rounds):
        order = list(runs) if index % 2 == 0 else list(reversed(runs))
        for name in order:
            seconds[name].append(runs[name].run(steps))
    full, lora = plan_both(_config(shape, METHODS["lora"]), shape.model, make_mesh(MeshConfig(), jax.devices()[:1]),
                           activations=False)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    return {
        "shape": shape.name, "batch": shape.batch, "block": shape.block, "seconds_per_step": median,
        "lora_over_full": median["lora"] / median["full"],
        "remat_cost": {"full": median["full+remat"] / median["full"], "lora": median["lora+remat"] / median["lora"]},
        "state_bytes": {"full": full.gradients + full.optimizer, "lora": lora.gradients + lora.optimizer},
        "state_ratio": (lora.gradients + lora.optimizer) / (full.gradients + full.optimizer),
    }


def bench_use(shape: Shape, rounds: int) -> dict:
    """Seconds of scoring a batch and of decoding a token, merged against applied at run time."""
    import jax
    import jax.numpy as jnp

    from jaxrap.model import lm, lora
    from jaxrap.model.kv_cache import KVCache
    from jaxrap.model.partition import join

    config = shape.model
    spec = lora.make_spec(config, rank=16, alpha=32.0, dropout=0.0, targets=None)
    base = lm.build(config, seed=0)[1]
    trainable = lora.init_trainable(config, spec, base, seed=0)
    trainable = jax.tree.map(lambda leaf: leaf + 0.01, trainable)  # B no longer zero
    adapted_params = join(trainable, base)
    started = time.perf_counter()
    merged_params = jax.block_until_ready(jax.jit(lambda p: lora.merge(config, spec, p))(adapted_params))
    merge_seconds = time.perf_counter() - started
    graphs = {"merged": (lm.abstract(config)[0], merged_params), "applied": (lora.abstract(config, spec)[0], adapted_params)}

    tokens = jax.random.randint(jax.random.PRNGKey(2), (shape.batch, shape.block), 0, config.vocab_size)

    def scorer(graphdef):
        return jax.jit(lambda params, ids: lm.forward(graphdef, params, ids)[0])

    def decoder(graphdef):
        def step(params, cache, token):
            logits, cache = lm.forward(graphdef, params, token, cache=cache)
            return jnp.argmax(logits[:, -1], axis=-1)[:, None], cache

        return jax.jit(step, donate_argnums=1)

    results: dict[str, dict[str, list[float]]] = {name: {"score": [], "decode": []} for name in graphs}
    score = {name: scorer(graphdef) for name, (graphdef, _) in graphs.items()}
    decode = {name: decoder(graphdef) for name, (graphdef, _) in graphs.items()}
    new_tokens = 32

    def time_score(name: str) -> float:
        params = graphs[name][1]
        started = time.perf_counter()
        jax.block_until_ready(score[name](params, tokens))
        return time.perf_counter() - started

    def time_decode(name: str) -> float:
        params = graphs[name][1]
        cache = KVCache.empty(config, 1, new_tokens + 1)
        token = tokens[:1, :1]
        started = time.perf_counter()
        for _ in range(new_tokens):
            token, cache = decode[name](params, cache, token)
        jax.block_until_ready(token)
        return (time.perf_counter() - started) / new_tokens

    for name in graphs:  # compile
        time_score(name)
        time_decode(name)
    for index in range(rounds):
        for name in (graphs if index % 2 == 0 else reversed(list(graphs))):
            results[name]["score"].append(time_score(name))
            results[name]["decode"].append(time_decode(name))
    median = {name: {kind: statistics.median(values) for kind, values in kinds.items()} for name, kinds in results.items()}
    return {
        "shape": shape.name, "merge_seconds": merge_seconds, "seconds": median,
        "applied_over_merged": {kind: median["applied"][kind] / median["merged"][kind] for kind in ("score", "decode")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="tiny,gpt2", help="comma-separated: tiny, gpt2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="train steps per round and method")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    shapes = [SHAPES[name] for name in args.shapes.split(",")]
    report = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "training": [bench_training(shape, args.rounds, args.steps) for shape in shapes],
        "use": bench_use(SHAPES["gpt2"] if "gpt2" in args.shapes else shapes[0], args.rounds),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for row in report["training"]:
        times = ", ".join(f"{name} {value:.3f} s" for name, value in row["seconds_per_step"].items())
        print(f"{row['shape']} (batch {row['batch']} x {row['block']}): {times}")
        print(f"  LoRA / full step time {row['lora_over_full']:.2f}; remat cost: full x{row['remat_cost']['full']:.2f},"
              f" LoRA x{row['remat_cost']['lora']:.2f}; gradients + optimizer state: LoRA {row['state_bytes']['lora'] / 2**20:.1f} MiB"
              f" vs full {row['state_bytes']['full'] / 2**20:.1f} MiB ({row['state_ratio']:.2%})")
    use = report["use"]
    print(f"use ({use['shape']}): merging {use['merge_seconds']:.2f} s once; scoring merged {use['seconds']['merged']['score']:.3f} s,"
          f" applied {use['seconds']['applied']['score']:.3f} s (x{use['applied_over_merged']['score']:.2f}); decoding merged"
          f" {use['seconds']['merged']['decode'] * 1e3:.1f} ms/token, applied {use['seconds']['applied']['decode'] * 1e3:.1f} ms/token"
          f" (x{use['applied_over_merged']['decode']:.2f})")


if __name__ == "__main__":
    main()
