"""Check the memory plan (``jaxrap.train.memory_plan``) against the memory a training step really
takes on this CPU, for a model of at least 300M parameters, full fine-tuning and LoRA.

    python scripts/bench_plan.py                      # GPT-2 medium's shape (355M), block 256, batch 1
    python scripts/bench_plan.py --layers 24 --width 1024 --block 256 --batch 1 --remat block

Each method runs in a fresh process (``--measure METHOD``): it compiles the real train step
(``loop.CompiledSteps``) ahead of time, notes the resident memory, makes the params and the
train state on the device one leaf at a time (XLA:CPU's device memory is the process's), resets
the process's peak resident memory (``/proc/self/clear_refs``), runs ``--steps`` steps and
reads the peak (``VmHWM``). Measured: that peak minus the resident memory before the state
existed. Planned: ``plan_memory``'s total for the same config and shape (its activations
extrapolated from 1 and 2 blocks, as ``jaxrap plan`` does). The target: planned within 15% of
measured. Not a timed
test: the machine's other jobs change nothing here but the wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

METHODS = ("full", "lora")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--block", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1, help="sequences per step (one device)")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--remat", default="none", choices=("none", "block"))
    parser.add_argument("--base-dtype", default="float32", choices=("float32", "bfloat16"), help="LoRA's frozen base")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--measure", choices=METHODS, help="(internal) measure one method in this process")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args)))
        return
    rows = []
    for method in METHODS:
        command = [sys.executable, __file__, "--measure", method, *sys.argv[1:]]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    print(f"GPT-2 shape {args.layers} layers x {args.width}, vocab {args.vocab}, block {args.block}, batch {args.batch},"
          f" remat {args.remat}, LoRA base {args.base_dtype}, 1 CPU device")
    print(f"{'method':<18}{'params':>8}{'planned':>12}{'measured':>12}{'planned/measured':>18}  terms (planned, GiB)")
    for row in rows:
        terms = ", ".join(f"{name} {value / 2**30:.2f}" for name, value in row["terms"].items())
        print(f"{row['method']:<18}{row['params'] / 1e6:>7.0f}M{row['planned'] / 2**30:>10.2f}Gi{row['measured'] / 2**30:>10.2f}Gi"
              f"{row['planned'] / row['measured']:>18.3f}  {terms}")


def _config(args: argparse.Namespace, method: str):
    from jaxrap.config import load_config

    lora = [f"model.lora.rank={args.rank}", f"model.base_dtype={args.base_dtype}"] if method == "lora" else []
    return load_config(None, [
        "model.init=bench/base", f"data.block_size={args.block}", f"train.per_device_batch_size={args.batch}",
        f"train.remat={args.remat}", "train.steps=1000", *lora,
    ])


def measure(args: argparse.Namespace) -> dict:
    import jax
    import jax.numpy as jnp

    from jaxrap.checkpoint import abstract_like
    from jaxrap.config import MeshConfig
    from jaxrap.model import lm, lora
    from jaxrap.model.config import GPT2Config
    from jaxrap.sharding import make_mesh
    from jaxrap.train.loop import CompiledSteps
    from jaxrap.train.memory_plan import plan_memory
    from jaxrap.train.trainable import training_model

    model_config = GPT2Config(vocab_size=args.vocab, n_positions=max(args.block, 1024), n_embd=args.width,
                              n_layer=args.layers, n_head=args.heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    config = _config(args, args.measure)
    mesh = make_mesh(MeshConfig(), jax.devices()[:1])
    plan = plan_memory(config, model_config, mesh)

    model = training_model(config, model_config, lambda shardings: None)
    steps = CompiledSteps.build(config, model, mesh, args.block)
    state_target = abstract_like(steps.abstract_state, steps.state_shardings)
    frozen_target = abstract_like(model.abstract_frozen, steps.frozen_shardings)
    batch_shape = steps.train_shape
    batch_target = {name: jax.ShapeDtypeStruct(batch_shape, jnp.int32, sharding=steps.train_sharding)
                    for name in ("input_ids", "targets", "loss_mask")}
    compiled = steps.train_fn.lower(state_target, batch_target, frozen_target).compile()  # type: ignore[attr-defined]
    before = _resident()["VmRSS"]

    # The state, one leaf at a time (a whole random init at once would hold its temporaries too).
    base = jax.tree.map(lambda leaf: _leaf(leaf, jnp.dtype(config.model.base_dtype) if args.measure == "lora" else jnp.float32),
                        lm.abstract(model_config)[1])
    if config.model.lora is None:
        state, frozen = steps.init_state(base), {}
    else:
        frozen = base
        spec = lora.make_spec(model_config, rank=args.rank, alpha=32.0, dropout=0.0, targets=None)
        state = steps.init_state(lora.init_trainable(model_config, spec, frozen, seed=0))
    del base
    rng = jax.random.PRNGKey(0)
    batch = {name: jax.random.randint(rng, batch_shape, 0, args.vocab, jnp.int32) for name in ("input_ids", "targets")}
    batch["loss_mask"] = jnp.ones(batch_shape, jnp.int32)
    jax.block_until_ready((state, frozen, batch))
    Path("/proc/self/clear_refs").write_text("5")  # the peak from here on is the steps'
    started = time.perf_counter()
    for _ in range(args.steps):
        state, metrics = compiled(state, batch, frozen)
        jax.block_until_ready(metrics)
    seconds = (time.perf_counter() - started) / args.steps
    peak = _resident()["VmHWM"]
    return {
        "method": plan.method, "params": model_config.num_params(), "planned": plan.total, "measured": peak - before,
        "terms": plan.terms, "step_seconds": seconds, "loss": float(metrics["loss"]),
    }


def _leaf(abstract, dtype):
    """A random device array of ``abstract``'s shape (small, like trained weights)."""
    import jax

    return jax.block_until_ready(jax.jit(lambda: 0.02 * jax.random.normal(jax.random.PRNGKey(0), abstract.shape, dtype))())


def _resident() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in bytes."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {name: int(fields[name].split()[0]) * 1024 for name in ("VmRSS", "VmHWM")}


if __name__ == "__main__":
    main()
