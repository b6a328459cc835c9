"""LoRA against full fine-tuning on the corpus, from a small model pretrained here from scratch.

    python scripts/compare_lora.py --corpus data/rap --out runs/lora_compare [--pretrain-steps 400] [--steps 200]

1. Pretrain configs/tiny_cpu.yaml's model (GPT-2, 4 layers x 256, a 4,096-entry BPE trained on
   the corpus) from scratch, without artist tokens, for ``--pretrain-steps``; export it.
2. Fine-tune that export with artist tokens (new embedding rows) for ``--steps`` steps, twice:
   every parameter (AdamW at ``--full-lr``), and LoRA rank 16 on every linear layer
   (``--lora-lr``; LoRA's usual larger rate), same data order, batch, schedule shape and seed.

Each run is a `jaxrap train` process; reported per fine-tune: validation loss at the end (the
whole validation split, songs prefixed with their artist token), median training tokens/s of
the logged intervals (compilation excluded), and the process's peak resident memory (VmHWM,
polled), next to the memory plan's figure for the same config (``jaxrap plan``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "tiny_cpu.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True, help="prepared corpus (copied: training writes its token cache)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pretrain-steps", type=int, default=400)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--full-lr", type=float, default=5e-4)
    parser.add_argument("--lora-lr", type=float, default=2e-3)
    args = parser.parse_args()
    out = args.out.resolve()
    corpus = out / "corpus"
    if not corpus.exists():
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-r", str(args.corpus), str(corpus)], check=True)
    pretrain, base = out / "pretrain", out / "base"
    if not base.exists():
        _train(pretrain, [f"data.path={corpus}", "data.artist_tokens=false", "data.artist_dropout=0",
                          f"train.steps={args.pretrain_steps}", f"train.eval_every={args.pretrain_steps}"])
        _jaxrap("export", "--run-dir", str(pretrain), "--out", str(base))
    common = [f"data.path={corpus}", f"model.init={base}", "model.shape=null", "model.tokenizer=null", "data.artist_tokens=true",
              f"train.steps={args.steps}", f"train.eval_every={args.steps}", "optim.warmup_steps=20"]
    rows = {
        "full fine-tuning": _fine_tune(out / "full", [*common, f"optim.lr={args.full_lr}"]),
        "LoRA rank 16": _fine_tune(out / "lora", [*common, f"optim.lr={args.lora_lr}", "model.lora.rank=16"]),
    }
    pretrained = _final(pretrain)["eval_loss"]
    print(f"pretrained {args.pretrain_steps} steps from scratch: validation loss {pretrained:.4f} (no artist tokens)")
    for name, row in rows.items():
        print(f"{name}: {args.steps} steps, validation loss {row['eval_loss']:.4f}, {row['tokens_per_s']:,.0f} tokens/s,"
              f" peak memory {row['peak'] / 2**20:,.0f} MiB (process), plan {row['plan']}")
    (out / "compare.json").write_text(json.dumps(rows, indent=2) + "\n")


def _fine_tune(run_dir: Path, overrides: list[str]) -> dict:
    peak = _train(run_dir, overrides)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    speeds = [record["tokens_per_s"] for record in records[1:] if "tokens_per_s" in record]
    plan = _jaxrap("plan", "--config", str(CONFIG), *[flag for override in overrides for flag in ("--set", override)])
    total = next(line for line in plan.splitlines() if line.startswith("total")).split()
    return {"eval_loss": _final(run_dir)["eval_loss"], "tokens_per_s": statistics.median(speeds), "peak": peak,
            "plan": " / ".join(" ".join(total[i:i + 2]) for i in (1, 3)) + " (full / LoRA columns)"}


def _final(run_dir: Path) -> dict:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [record for record in records if "eval_loss" in record][-1]


def _train(run_dir: Path, overrides: list[str]) -> int:
    """Run `jaxrap train` on configs/tiny_cpu.yaml with ``overrides``; its peak resident bytes."""
    command = [sys.executable, "-m", "jaxrap", "train", "--config", str(CONFIG), "--run-dir", str(run_dir), "--samples", "0"]
    for override in overrides:
        command += ["--set", override]
    process = subprocess.Popen(command)
    peak = 0
    while process.poll() is None:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
            peak = max(peak, int(status.split("VmHWM:")[1].split()[0]) * 1024)
        except (FileNotFoundError, IndexError):
            pass
        time.sleep(0.5)
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} exited {process.returncode}")
    return peak


def _jaxrap(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "jaxrap", *args], check=True, capture_output=True, text=True).stdout


if __name__ == "__main__":
    main()
