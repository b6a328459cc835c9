"""Peak host memory while jaxrap loads a ~1B-parameter Llama written by transformers.

    python scripts/measure_loading.py [--dir /tmp/llama-1b] [--keep]

Writes a random-init LlamaForCausalLM of TinyLlama's shape (22 layers, 2048 wide, 32 query / 4
key/value heads, SwiGLU 5632, vocab 32,000, untied: 1.10B parameters) with transformers'
``save_pretrained`` in bfloat16, as 2 GB shards with ``model.safetensors.index.json`` (as
checkpoints of this size come). Then, each in a fresh process, loads it with
``jaxrap.model.hf.load_pretrained`` as training does (float32, straight onto a device sharding)
and as generation does (float32 host arrays), and reads the process's peak resident set
(``ru_maxrss``) against its resident set just before loading (jax and jaxrap imported, the
device up, glibc's malloc set as the ``jaxrap`` command sets it: ``jaxrap.host_allocator``).
The files are deleted afterwards unless ``--keep``.

The figure that matters is the peak increase over the loaded params' own size: loading all
tensors first and converting them after would need the file's size on top of the result (1.5x
for bfloat16 files read as float32), converting each tensor as it arrives needs one tensor.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHAPE = dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
             num_key_value_heads=4, max_position_embeddings=2048, tie_word_embeddings=False)


def write_model(directory: Path) -> dict:
    """The random Llama in HF format (bfloat16 shards); its parameter count and file bytes."""
    import torch
    import transformers

    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)  # built in bfloat16: half the memory of building in float32
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**SHAPE))
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(directory, max_shard_size="2GB")
    del model
    files = sorted(directory.glob("*.safetensors"))
    return {"params": params, "file_bytes": sum(f.stat().st_size for f in files), "shards": len(files)}


PROBE = """
import json, resource, sys, time
from jaxrap.host_allocator import keep_freed_memory
keep_freed_memory()  # as `jaxrap train` and `generate` start (JAXRAP_MALLOC=system: glibc's defaults)
import jax, numpy as np
from jaxrap.model import hf, lm
directory, placed = sys.argv[1], sys.argv[2] == "placed"
jax.numpy.zeros(1).block_until_ready()  # the device up before the baseline
config = hf.load_config(directory)
shardings = None
if placed:
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    shardings = jax.tree.map(lambda _: device, lm.abstract(config)[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with open("/proc/self/status") as status:
    current = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
started = time.perf_counter()
_, params = hf.load_pretrained(directory, shardings=shardings, dtype=np.float32)
jax.block_until_ready(params)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
loaded = sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(params))
print(json.dumps({"rss_before": current, "peak_before": before, "peak": peak, "loaded_bytes": loaded, "seconds": seconds}))
"""


def measure(directory: Path, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, str(directory), mode], check=True, capture_output=True, text=True,
                         env={**__import__("os").environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="where to write the model (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the model files")
    args = parser.parse_args(argv)
    directory = args.dir or Path(tempfile.mkdtemp(prefix="jaxrap-llama-1b-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        written = write_model(directory)
        print(f"wrote {written['params'] / 1e9:.2f}B parameters, {written['file_bytes'] / 2**30:.2f} GiB of bfloat16 in"
              f" {written['shards']} shards, in {time.perf_counter() - started:.0f} s")
        for mode, what in (("placed", "float32 onto the device (training's path)"), ("host", "float32 host arrays (generate)")):
            figures = measure(directory, mode)
            increase = figures["peak"] - figures["rss_before"]
            loaded = figures["loaded_bytes"]
            print(f"{what}: loaded {loaded / 2**30:.2f} GiB in {figures['seconds']:.0f} s; RSS {figures['rss_before'] / 2**30:.2f}"
                  f" GiB before, peak {figures['peak'] / 2**30:.2f} GiB: +{increase / 2**30:.2f} GiB ="
                  f" {increase / loaded:.2f}x the loaded params ({(increase - loaded) / 2**20:.0f} MiB over them)")
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
