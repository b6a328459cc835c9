"""Training throughput: jaxrap's jitted train step against PyTorch's, measured in one run.

    python scripts/bench_train.py [--shapes tiny,gpt2,llama-tiny,llama-small] [--steps 3] [--repeats 5] [--json]

For each shape it times jaxrap's real training step (``jit_train_step`` with the mesh,
shardings, donation and AdamW + clipping that ``jaxrap train`` builds) and a PyTorch step of
the same network (transformers' class for its model_type, ``GPT2LMHeadModel`` or
``LlamaForCausalLM``, + ``torch.optim.AdamW``, same batch, block, clipping and decay mask,
float32). The Llama-style shapes: llama_tiny_cpu's (4 x 256, GQA 4/2, SwiGLU 704, vocab 4096,
tied) and one of GPT-2 small's size with GQA (12 x 768, 12 query / 4 key-value heads, SwiGLU
2048, vocab 50257, tied). Rounds alternate between the two frameworks (and which goes
first), and each figure is the median over rounds, so drift on a shared machine hits both.
MFU is model FLOPs/s (the config's ``flops_per_token``) over the machine's fp32 matmul peak,
measured in the same run with a large jitted matmul (PyTorch's own matmul peak is shown too).

It then runs the real training loop (``jaxrap.train.loop.train``: prefetch thread, metrics
sync every ``log_every`` steps, metrics.jsonl and TensorBoard, Orbax checkpoint saves) on a
synthetic token stream at the tiny shape, and reports its wall time per step against the bare
jitted step: the share of step time spent outside the step (data, logging, saves).
Dropout is 0 everywhere (as in configs/tiny_cpu.yaml).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from jaxrap.config import RunConfig, load_config
from jaxrap.host_allocator import keep_freed_memory
from jaxrap.model.config import GPT2Config
from jaxrap.model.llama_config import LlamaConfig
from jaxrap.model.registry import LMConfig

TINY_CPU = Path(__file__).resolve().parent.parent / "configs" / "tiny_cpu.yaml"


@dataclass(frozen=True)
class Shape:
    name: str
    model: LMConfig
    batch: int  # sequences per step
    block: int  # tokens per sequence


def _shape_config(n_layer: int, n_embd: int, n_head: int, vocab_size: int, n_positions: int) -> GPT2Config:
    last = vocab_size - 1  # special ids inside the vocabulary (transformers checks them)
    return GPT2Config(
        vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=last, eos_token_id=last, pad_token_id=last,
    )


def _llama_config(n_layer: int, n_embd: int, n_head: int, n_kv_head: int, inner: int, vocab_size: int, n_positions: int) -> LlamaConfig:
    last = vocab_size - 1
    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=n_embd, intermediate_size=inner, num_hidden_layers=n_layer,
        num_attention_heads=n_head, num_key_value_heads=n_kv_head, max_position_embeddings=n_positions,
        tie_word_embeddings=True, bos_token_id=last, eos_token_id=last, pad_token_id=last,
    )


SHAPES = {
    "tiny": Shape("tiny", _shape_config(4, 256, 4, 4096, 256), batch=8, block=256),
    "gpt2": Shape("gpt2-small", _shape_config(12, 768, 12, 50257, 1024), batch=4, block=256),
    "llama-tiny": Shape("llama-tiny", _llama_config(4, 256, 4, 2, 704, 4096, 256), batch=8, block=256),
    "llama-small": Shape("llama-small", _llama_config(12, 768, 12, 4, 2048, 50257, 1024), batch=4, block=256),
}


def run_config(shape: Shape, *overrides: str) -> RunConfig:
    """configs/tiny_cpu.yaml's optimizer and loop settings at ``shape``'s batch."""
    return load_config(TINY_CPU, [f"train.per_device_batch_size={shape.batch}", f"data.block_size={shape.block}", *overrides])


# --- peak matmul FLOP/s --------------------------------------------------------------------
def jax_matmul_peak(size: int) -> float:
    from jaxrap.train.flops import measure_matmul_peak

    return measure_matmul_peak("float32", size=size, repeats=10)


def torch_matmul_peak(size: int, repeats: int = 10) -> float:
    import torch

    a, b = torch.ones(size, size), torch.ones(size, size)
    torch.matmul(a, b)
    best = min(_seconds(lambda: torch.matmul(a, b)) for _ in range(repeats))
    return 2.0 * size**3 / best


def _seconds(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


# --- the two training steps ------------------------------------------------------------------
def random_batch(shape: Shape, seed: int) -> dict[str, np.ndarray]:
    """(B, T) int32 input_ids, targets (the next tokens) and an all-ones loss_mask."""
    tokens = np.random.default_rng(seed).integers(0, shape.model.vocab_size, (shape.batch, shape.block + 1), dtype=np.int32)
    return {"input_ids": tokens[:, :-1], "targets": tokens[:, 1:], "loss_mask": np.ones((shape.batch, shape.block), np.int32)}


class JaxrapStep:
    """The step `jaxrap train` runs: jitted with shardings over the default mesh, state donated."""

    def __init__(self, shape: Shape, total_steps: int):
        import jax

        from jaxrap import sharding
        from jaxrap.model import lm
        from jaxrap.train.optimizer import make_optimizer
        from jaxrap.train.step import init_state, jit_train_step

        config = run_config(shape)
        mesh = sharding.make_mesh(config.mesh)
        optimizer, schedule = make_optimizer(config.optim, total_steps)
        params = lm.build(shape.model, seed=0)[1]
        abstract_state = jax.eval_shape(lambda p: init_state(p, optimizer, 0), params)
        state_shardings = sharding.state_shardings(mesh, abstract_state)
        train_sharding = sharding.batch_sharding(mesh, leading_axes=1)  # (A, B, T)
        self.state = jax.jit(lambda p: init_state(p, optimizer, 0), out_shardings=state_shardings)(params)
        self.train_fn = jit_train_step(
            lm.make_forward(shape.model, "float32"), optimizer, schedule, state_shardings, train_sharding,
            sharding.replicated(mesh),
        )
        local = {name: array[None] for name, array in random_batch(shape, seed=1).items()}  # (1, B, T)
        self.batch = sharding.put_batch(local, train_sharding, (1, shape.batch, shape.block))

    def run(self, steps: int) -> float:
        """Seconds for ``steps`` dispatched steps, synchronised once at the end (as the loop does)."""
        started = time.perf_counter()
        for _ in range(steps):
            self.state, metrics = self.train_fn(self.state, self.batch)
        loss = float(metrics["loss"])
        assert np.isfinite(loss), loss
        return time.perf_counter() - started


def torch_model(config: LMConfig):
    """transformers' class for ``config``'s model_type, random-init, float32."""
    import torch
    import transformers

    torch.manual_seed(0)
    fields = config.to_hf_dict()
    return transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.for_model(fields.pop("model_type"), **fields))


EMBEDDINGS = (".wte.", ".wpe.", "embed_tokens.")  # lookups: no weight decay, as jaxrap's mask


class TorchStep:
    """transformers' model + AdamW with jaxrap's settings: clipping, decay on matmul weights only."""

    def __init__(self, shape: Shape, total_steps: int):
        import torch

        optim = run_config(shape).optim
        self.model = torch_model(shape.model).train()
        named = list(self.model.named_parameters())
        # Kernels are the 2-D matrices other than the (tied) embeddings, as jaxrap's mask.
        decayed = [p.ndim == 2 and not any(e in n for e in EMBEDDINGS) for n, p in named]
        decay = [p for (_, p), d in zip(named, decayed) if d]
        no_decay = [p for (_, p), d in zip(named, decayed) if not d]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=optim.lr, betas=(optim.b1, optim.b2), eps=optim.eps,
        )
        self.clip_norm = optim.clip_norm
        batch = random_batch(shape, seed=1)
        self.input_ids = torch.from_numpy(batch["input_ids"]).long()
        self.targets = torch.from_numpy(batch["targets"]).long()

    def step(self) -> float:
        import torch

        logits = self.model(self.input_ids).logits  # (B, T, V)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), self.targets.flatten())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_norm)
        self.optimizer.step()
        return loss.item()

    def run(self, steps: int) -> float:
        started = time.perf_counter()
        for _ in range(steps):
            loss = self.step()
        assert np.isfinite(loss), loss
        return time.perf_counter() - started


def measure_shape(shape: Shape, steps: int, repeats: int, say: Callable[[str], None]) -> dict:
    """Median seconds per step of each framework over ``repeats`` alternating rounds."""
    warmup = 2  # the first jaxrap call compiles; both get as many unmeasured steps
    runners = {"jaxrap": JaxrapStep(shape, warmup + steps * repeats), "pytorch": TorchStep(shape, warmup + steps * repeats)}
    for name, runner in runners.items():
        say(f"{shape.name}: warming up {name}")
        runner.run(warmup)
    rounds: dict[str, list[float]] = {name: [] for name in runners}
    order = list(runners)
    for round_index in range(repeats):
        for name in order if round_index % 2 == 0 else order[::-1]:
            rounds[name].append(runners[name].run(steps) / steps)
        say(f"{shape.name}: round {round_index + 1}/{repeats}: "
            + ", ".join(f"{name} {times[-1]:.3f} s/step" for name, times in rounds.items()))
    return {"rounds": rounds, "jaxrap_step": runners["jaxrap"]}


# --- the whole loop: time outside the jitted step -------------------------------------------
def measure_loop(shape: Shape, loop_steps: int, save_every: int, log_every: int, say: Callable[[str], None]) -> dict:
    """Wall seconds per step of ``loop.train`` between two logs, saves included, eval excluded."""
    from jaxrap import sharding
    from jaxrap.data.batches import PackedBlocks
    from jaxrap.model import lm
    from jaxrap.train import loop
    from jaxrap.train.trackers import CallbackTracker, JsonlTracker, TensorBoardTracker

    config = run_config(
        shape, f"train.steps={loop_steps}", f"train.save_every={save_every}", f"train.log_every={log_every}",
        f"train.eval_every={loop_steps}",  # only the final eval, after the measured window
    )
    rng = np.random.default_rng(2)
    eos = shape.model.eos_token_id
    train_tokens = rng.integers(0, shape.model.vocab_size, 200 * shape.block, dtype=np.int32)
    train = PackedBlocks(train_tokens, shape.block, eos, eos, "bench-train")
    validation = PackedBlocks(train_tokens[: 8 * shape.block], shape.block, eos, eos, "bench-validation")
    model = loop.Model(
        forward=lm.make_forward(shape.model, "float32"),
        abstract_params=lm.abstract(shape.model)[1],
        init_params=lambda shardings, frozen: sharding.place(lm.build(shape.model, seed=0)[1], shardings),
        flops_per_token=shape.model.flops_per_token(shape.block),
    )
    logged: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="jaxrap-bench-") as run_dir:
        trackers = [
            JsonlTracker(Path(run_dir) / "metrics.jsonl"),
            TensorBoardTracker(Path(run_dir) / "tensorboard"),
            CallbackTracker(lambda step, _: logged.setdefault(step, time.perf_counter()), say),
        ]
        say(f"loop: {loop_steps} steps of loop.train, a checkpoint every {save_every}, a log every {log_every}")
        loop.train(config, model, train, validation, Path(run_dir) / "checkpoints", trackers)
    first, last = log_every, loop_steps - log_every  # after compilation; before the final eval and save
    return {"steps": last - first, "seconds_per_step": (logged[last] - logged[first]) / (last - first),
            "saves_in_window": len(range(first + save_every - first % save_every, last + 1, save_every))}


# --- report ----------------------------------------------------------------------------------
def summarize(shape: Shape, measured: dict, peak: float) -> dict:
    tokens = shape.batch * shape.block
    flops_per_token = shape.model.flops_per_token(shape.block)
    row = {"shape": shape.name, "model": shape.model.describe(), "vocab": shape.model.vocab_size, "batch": shape.batch,
           "block": shape.block, "params": shape.model.num_params(), "flops_per_token": flops_per_token}
    for name, times in measured["rounds"].items():
        seconds = statistics.median(times)
        row[name] = {"seconds_per_step": seconds, "tokens_per_s": tokens / seconds,
                     "mfu": tokens / seconds * flops_per_token / peak, "rounds": times}
    row["speedup"] = row["jaxrap"]["tokens_per_s"] / row["pytorch"]["tokens_per_s"]
    return row


def print_report(console: Console, report: dict) -> None:
    table = Table(title=f"Training step, float32 ({report['machine']}, {report['date']})")
    for column in ("shape", "model, vocab", "B x T", "jaxrap tok/s", "jaxrap MFU", "PyTorch tok/s", "PyTorch MFU", "jaxrap / PyTorch"):
        table.add_column(column, justify="left" if column == "shape" else "right")
    for row in report["shapes"]:
        jx, pt = row["jaxrap"], row["pytorch"]
        table.add_row(
            row["shape"], f"{row['model']}, {row['vocab']}", f"{row['batch']} x {row['block']}",
            f"{jx['tokens_per_s']:,.0f}", f"{jx['mfu']:.1%}", f"{pt['tokens_per_s']:,.0f}", f"{pt['mfu']:.1%}", f"{row['speedup']:.2f}x",
        )
    console.print(table)
    console.print(
        f"peak fp32 matmul ({report['matmul_size']}^3): jax {report['peak_jax'] / 1e9:.0f} GFLOP/s (MFU denominator),"
        f" torch {report['peak_torch'] / 1e9:.0f} GFLOP/s; medians of {report['repeats']} alternating rounds"
        f" of {report['steps']} steps; malloc: {report['malloc']}"
    )
    if "loop" in report:
        loop = report["loop"]
        table = Table(title="Time outside the jitted step (tiny shape, jaxrap.train.loop.train)")
        for column in ("loop s/step", "bare step s/step", "outside the step", "saves in window"):
            table.add_column(column, justify="right")
        table.add_row(f"{loop['seconds_per_step']:.3f}", f"{loop['bare_seconds_per_step']:.3f}",
                      f"{loop['overhead']:.1%}", str(loop["saves_in_window"]))
        console.print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="tiny,gpt2", help=f"comma-separated, of {', '.join(SHAPES)}")
    parser.add_argument("--steps", type=int, default=3, help="steps per timed round")
    parser.add_argument("--repeats", type=int, default=5, help="alternating rounds per framework (median taken)")
    parser.add_argument("--matmul-size", type=int, default=2048, help="square fp32 matmul that measures the peak")
    parser.add_argument("--loop-steps", type=int, default=60, help="steps of the real loop (0: skip the loop check)")
    parser.add_argument("--save-every", type=int, default=20, help="checkpoint interval in the loop check (tiny_cpu: 100)")
    parser.add_argument("--log-every", type=int, default=10, help="log interval in the loop check (tiny_cpu: 10)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.shapes.split(",") if name.strip()]
    unknown = [name for name in names if name not in SHAPES]
    if unknown or not names:
        parser.error(f"--shapes: unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(SHAPES)}")

    console = Console(stderr=args.json, width=160)
    say = lambda text: console.log(text)  # noqa: E731 - progress goes to stderr with --json

    # As `jaxrap train` runs: before jax starts its threads. Both frameworks share the process, so
    # PyTorch's step gets the same allocator (JAXRAP_MALLOC=system: glibc's defaults for both).
    kept = keep_freed_memory()
    import jax

    report = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {jax.device_count()} {jax.default_backend()} device(s),"
                   f" {__import__('os').cpu_count()} cores",
        "jax": jax.__version__, "malloc": "freed memory kept" if kept else "glibc defaults",
        "steps": args.steps, "repeats": args.repeats, "matmul_size": args.matmul_size,
    }
    report["peak_jax"] = jax_matmul_peak(args.matmul_size)
    report["peak_torch"] = torch_matmul_peak(args.matmul_size)
    say(f"peak fp32 matmul: jax {report['peak_jax'] / 1e9:.0f} GFLOP/s, torch {report['peak_torch'] / 1e9:.0f} GFLOP/s")
    report["shapes"] = []
    bare_tiny: list[float] = []
    for name in names:
        measured = measure_shape(SHAPES[name], args.steps, args.repeats, say)
        report["shapes"].append(summarize(SHAPES[name], measured, report["peak_jax"]))
        if name == "tiny":
            bare_tiny = measured["rounds"]["jaxrap"]
            tiny_step = measured["jaxrap_step"]
    if "tiny" in names and args.loop_steps:
        loop = measure_loop(SHAPES["tiny"], args.loop_steps, args.save_every, args.log_every, say)
        bare_tiny.append(tiny_step.run(args.steps) / args.steps)  # once more, right after the loop
        loop["bare_seconds_per_step"] = statistics.median(bare_tiny)
        loop["overhead"] = 1.0 - loop["bare_seconds_per_step"] / loop["seconds_per_step"]
        report["loop"] = loop
    if args.json:
        print(json.dumps(report))
    else:
        print_report(console, report)


if __name__ == "__main__":
    main()
