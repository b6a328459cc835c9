"""`jaxrap train`: the whole training job, from raw lyrics to a trained, evaluated run directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxrap.errors import JaxrapError

DEFAULT_RUNS_DIR = Path("runs")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train or fine-tune a model (GPT-2 or Llama-style, full or LoRA) on the corpus (resumes a run directory that has checkpoints)",
        description="Train the model of --config on the prepared corpus at data.path, preparing it first"
        " when it holds none (from --source, data.source, $JAXRAP_LYRICS_CSV, else the public corpus URL)"
        " and training a BPE tokenizer when the model has none. Logs to the console, RUN/metrics.jsonl"
        " and TensorBoard (RUN/tensorboard), evaluates on the whole validation split every"
        " train.eval_every steps, saves Orbax checkpoints every train.save_every steps, and resumes"
        " automatically when RUN has checkpoints. SIGTERM or Ctrl-C: finish the step, save, exit 0.",
    )
    parser.add_argument("--config", type=Path, help="run config YAML (e.g. configs/tiny_cpu.yaml); default: RUN/config.yaml when resuming")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="override one config value, read as YAML (e.g. --set train.steps=200 --set optim.lr=3e-4); repeatable",
    )
    parser.add_argument("--run-dir", type=Path, help=f"run directory (default: {DEFAULT_RUNS_DIR}/<config name>)")
    parser.add_argument("--source", help="CSV path or URL to prepare data.path from when it holds no corpus")
    parser.add_argument("--samples", type=int, default=3, help="sample songs to print when training ends (default 3; 0: none)")
    group = parser.add_argument_group("multi-process runs (every process runs the same command)")
    group.add_argument(
        "--distributed", action="store_true", help="join a multi-host job found in the environment (Cloud TPU pod slice, SLURM)"
    )
    group.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0, for a job started by hand")
    group.add_argument("--num-processes", type=int, help="processes in the job (with --coordinator)")
    group.add_argument("--process-id", type=int, help="this process's index, 0 to N-1 (with --coordinator)")
    parser.set_defaults(run=run)


def resolve(args: argparse.Namespace):
    """(RunConfig, run directory) from --config / --run-dir / --set, validated before jax starts."""
    from jaxrap.config import load_config
    from jaxrap.rundir import RunDir

    if args.config is None:
        if args.run_dir is None or not RunDir(args.run_dir).config_file.is_file():
            raise JaxrapError("pass --config FILE (e.g. configs/tiny_cpu.yaml), or --run-dir of a run to resume")
        config_path = RunDir(args.run_dir).config_file
    else:
        config_path = args.config
    run_dir = args.run_dir or DEFAULT_RUNS_DIR / config_path.stem
    if (args.coordinator is None) != (args.num_processes is None) or (args.coordinator is None) != (args.process_id is None):
        raise JaxrapError("--coordinator, --num-processes and --process-id go together")
    if args.samples < 0:
        raise JaxrapError(f"--samples must be 0 or more, got {args.samples}")
    return load_config(config_path, args.overrides), run_dir


def run(args: argparse.Namespace) -> int:
    config, run_dir = resolve(args)

    from jaxrap.train.distributed import initialize

    initialize(args.coordinator, args.num_processes, args.process_id, auto=args.distributed)

    import jax
    from rich.console import Console

    from jaxrap.compile_cache import enable_compilation_cache
    from jaxrap.rundir import RunDir
    from jaxrap.train.pipeline import run_training
    from jaxrap.train.trackers import ConsoleTracker, JsonlTracker, TensorBoardTracker, Tracker

    enable_compilation_cache()  # a rerun loads the memory plan's probes and the steps (docs/training.md)
    run = RunDir(run_dir)
    leader = jax.process_index() == 0
    console = Console(highlight=False, quiet=not leader)
    trackers: list[Tracker] = (
        [ConsoleTracker(console), JsonlTracker(run.metrics_file), TensorBoardTracker(run.tensorboard_dir)] if leader else []
    )

    def say(text: str) -> None:
        console.print(text, soft_wrap=True)

    say(f"run directory {run.path} ({jax.process_count()} process(es), {jax.device_count()} {jax.devices()[0].platform} device(s))")
    result = run_training(config, run.path, trackers=trackers, source=args.source, say=say, check_memory=True)
    if result.stopped_by is not None:
        return 0
    if result.eval_loss is not None:
        say(f"validation loss {result.eval_loss:.4f} (perplexity {result.eval_perplexity:.2f}) at step {result.step}")
    say(f"checkpoints in {run.checkpoints_dir}; metrics in {run.metrics_file}; TensorBoard: tensorboard --logdir {run.tensorboard_dir}")
    if args.samples and jax.process_count() == 1:
        print_samples(run.path, args.samples, seed=config.train.seed, say=say)
    elif args.samples:  # loading a checkpoint is a collective with several processes: sample afterwards
        say(f"sample from the trained model with: jaxrap generate --model {run.path} --prompt ''")
    say(f"export to Hugging Face format: jaxrap export --run-dir {run.path} --out models/{run.path.name}")
    return 0


def print_samples(run_dir: Path, count: int, *, seed: int, say) -> None:
    """A few bars of new songs from the run's newest checkpoint (the shipped sampling preset)."""
    from jaxrap.cli.warning_lines import warnings_as_lines
    from jaxrap.sample.generator import Generator
    from jaxrap.sample.params import SamplingParams

    with warnings_as_lines():
        generator = Generator.load(run_dir)
    max_new_tokens = min(96, generator.model.context - 1)  # room for the end-of-song context token
    params = SamplingParams(num_samples=count, max_bars=4, max_new_tokens=max_new_tokens, seed=seed)
    for index, text in enumerate(generator.generate("", params), start=1):  # "": a new song, from end-of-song
        say(f"--- sample {index} (step {generator.step}) ---")
        say(text.strip("\n"))

