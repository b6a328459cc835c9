"""Sampling benchmark: jaxrap's sampler against transformers' PyTorch ``generate``, same run.

    python scripts/bench_sample.py [--shapes tiny,gpt2,llama-tiny,llama-small] [--rounds 3] [--json out.json]
        [--new-tokens 256] [--no-compile-times]

For each shape (random-init weights, float32): tokens/s at batch 1 and 8, warm time to the
first token for 16- and 64-token prompts, and (jaxrap only; PyTorch runs eagerly) the compile
time of the sampler's programs in a fresh process with an empty persistent compilation cache,
then in another fresh process with the cache the first one filled. jaxrap runs its real
sampler (``jaxrap.sample.decode``: prefill, first token, chunks of 8 from the KV cache) and
transformers' ``generate`` of the class for the shape's model_type (``GPT2LMHeadModel``,
``LlamaForCausalLM``), with the same settings: 16-token prompt, 256 new
tokens (fewer when the context is shorter: prompt + new tokens must fit ``n_positions``),
sampling with temperature 1, top-p 0.95, no top-k, repetition penalty 1.3 over the whole
context, and ``min_new_tokens`` so both produce exactly that many tokens. jaxrap and torch
rounds alternate, so a busy neighbour slows both; figures are medians over the rounds.
Tokens/s counts every generated token over the whole call, the prompt pass included. The
Llama-style shapes are bench_train's: llama_tiny_cpu's (4 x 256, GQA 4/2) and one of GPT-2
small's size with GQA (12 x 768, 12 query / 4 key-value heads).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jaxrap.model.config import GPT2Config
from jaxrap.model.llama_config import LlamaConfig
from jaxrap.model.registry import LMConfig
from jaxrap.sample.params import SamplingParams

SHAPES: dict[str, LMConfig] = {
    "tiny": GPT2Config(n_layer=4, n_embd=256, n_head=4, vocab_size=4096, n_positions=256, bos_token_id=4095, eos_token_id=4095),
    "gpt2": GPT2Config(),  # GPT-2 small: 12 layers, 768 wide, 12 heads, vocab 50257, 1024 positions
    "llama-tiny": LlamaConfig(
        vocab_size=4096, hidden_size=256, intermediate_size=704, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True, bos_token_id=4095, eos_token_id=4095,
    ),
    "llama-small": LlamaConfig(
        vocab_size=50257, hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
        num_key_value_heads=4, max_position_embeddings=1024, tie_word_embeddings=True, bos_token_id=50256, eos_token_id=50256,
    ),
}
PROMPT_TOKENS = 16
TTFT_PROMPTS = (16, 64)
NEW_TOKENS = 256
BATCHES = (1, 8)
TTFT_REPEATS = 5  # first-token timings per round and prompt (cheap), of which the median counts


def new_tokens(config: LMConfig, most: int = NEW_TOKENS) -> int:
    return min(most, config.n_positions - PROMPT_TOKENS)


def sampling_params(config: LMConfig, new: int, num_samples: int, seed: int) -> SamplingParams:
    return SamplingParams(
        max_new_tokens=new, min_new_tokens=new, temperature=1.0, top_k=0, top_p=0.95,
        repetition_penalty=1.3, repetition_window=0, num_samples=num_samples, seed=seed,
    )


def prompt_ids(config: LMConfig, length: int) -> list[int]:
    return np.random.default_rng(length).integers(0, config.vocab_size - 1, length).tolist()


# --- jaxrap ---------------------------------------------------------------------------------

def jax_model(config: LMConfig, dtype: str = "float32", *, zeros: bool = False):
    from jaxrap.model import lm
    from jaxrap.sample.decode import DecodeModel

    if zeros:  # compile probes need shapes, not values
        import jax

        params = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), lm.abstract(config)[1])
    else:
        params = lm.build(config, seed=0)[1]
    return DecodeModel.from_params(config, params, dtype)


def jax_generate(model, prompt: list[int], params: SamplingParams) -> tuple[float, float]:
    """(seconds to the first token, seconds for the whole generation) of jaxrap's sampler."""
    from jaxrap.sample.decode import token_chunks
    from jaxrap.sample.processors import SamplingArrays

    sampling = SamplingArrays.from_params(params, model.config.eos_token_id)
    start = time.perf_counter()
    first, generated = None, 0
    for tokens in token_chunks(model, prompt, sampling, num_samples=params.num_samples):  # (B, k)
        first = first if first is not None else time.perf_counter() - start
        generated += int((tokens >= 0).sum())
    total = time.perf_counter() - start
    assert generated == params.num_samples * params.max_new_tokens, generated
    return first, total


def jax_first_token(model, prompt: list[int], params: SamplingParams) -> float:
    """Seconds to the first token; ``params`` should ask for one token, so that the decode
    chunk ``token_chunks`` dispatches behind it is empty and does not run on into the next
    timing (as transformers' is measured: ``generate`` of one token)."""
    from jaxrap.sample.decode import token_chunks
    from jaxrap.sample.processors import SamplingArrays

    sampling = SamplingArrays.from_params(params, model.config.eos_token_id)
    start = time.perf_counter()
    chunks = token_chunks(model, prompt, sampling, num_samples=params.num_samples)
    next(chunks)
    elapsed = time.perf_counter() - start
    for _ in chunks:  # drain: nothing stays in flight
        pass
    return elapsed


def compile_probe(shape: str, dtype: str) -> dict[str, float]:
    """In this (fresh) process: seconds to compile the programs a batch-1 generation runs
    (prefill of a 16-token bucket, first token, decode chunk) and the batch-8 ones, through
    the persistent cache that ``JAXRAP_COMPILATION_CACHE`` names."""
    import jax

    from jaxrap.compile_cache import enable_compilation_cache
    from jaxrap.sample.decode import CHUNK, prompt_bucket
    from jaxrap.sample.processors import SamplingArrays

    enable_compilation_cache()
    config = SHAPES[shape]
    model = jax_model(config, dtype, zeros=True)
    jax.block_until_ready(model.head)
    bucket = prompt_bucket(PROMPT_TOKENS, config.n_positions)
    prompt, length = np.zeros((1, bucket), np.int32), np.int32(PROMPT_TOKENS)
    times = {}
    for batch in BATCHES:
        sampling = SamplingArrays.from_params(sampling_params(config, new_tokens(config), batch, 0), config.eos_token_id)
        start = time.perf_counter()
        args = (model.params, model.head, prompt, length, sampling)
        model.prefill.lower(*args, num_samples=batch).compile()
        state, logits = jax.eval_shape(lambda *a, batch=batch: model.prefill(*a, num_samples=batch), *args)
        model.first_token.lower(state, logits, sampling).compile()
        model.decode_chunk.lower(model.params, model.head, state, sampling, np.int32(CHUNK)).compile()
        times[f"batch{batch}"] = time.perf_counter() - start
    return times


def compile_times(shape: str, dtype: str) -> dict[str, dict[str, float]]:
    """Compile seconds in a fresh process with an empty cache directory ("cold"), then in
    another fresh process with the directory the first one filled ("cached")."""
    with tempfile.TemporaryDirectory() as cache_dir:
        env = {**os.environ, "JAXRAP_COMPILATION_CACHE": cache_dir}
        runs = {}
        for name in ("cold", "cached"):
            out = subprocess.run(
                [sys.executable, __file__, "--compile-probe", shape, "--dtype", dtype],
                env=env, check=True, capture_output=True, text=True,
            ).stdout
            runs[name] = json.loads(out.strip().splitlines()[-1])
    return runs


# --- transformers ---------------------------------------------------------------------------

def torch_model(config: LMConfig):
    """transformers' class for ``config``'s model_type, random-init, float32."""
    import torch
    import transformers

    torch.manual_seed(0)
    fields = config.to_hf_dict()
    return transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.for_model(fields.pop("model_type"), **fields)).eval()


def torch_generate(model, prompt: list[int], params: SamplingParams) -> float:
    """Seconds for transformers' ``generate`` with the same settings as jaxrap's."""
    import torch

    torch.manual_seed(params.seed)
    ids = torch.tensor([prompt] * params.num_samples)
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0, top_k=0,
            top_p=params.top_p, repetition_penalty=params.repetition_penalty,
            max_new_tokens=params.max_new_tokens, min_new_tokens=params.min_new_tokens,
            pad_token_id=model.config.eos_token_id, eos_token_id=model.config.eos_token_id,
        )
    elapsed = time.perf_counter() - start
    assert out.shape == (params.num_samples, len(prompt) + params.max_new_tokens), out.shape
    return elapsed


# --- the run --------------------------------------------------------------------------------

def bench_shape(shape: str, rounds: int, dtype: str, log, *, most_new: int = NEW_TOKENS, compile_probes: bool = True) -> dict:
    config = SHAPES[shape]
    new = new_tokens(config, most_new)
    jax_m, torch_m = jax_model(config, dtype), torch_model(config)
    prompt = prompt_ids(config, PROMPT_TOKENS)
    ttft_prompts = {n: prompt_ids(config, n) for n in TTFT_PROMPTS}
    samples: dict[str, list[float]] = {}

    def record(key: str, value: float) -> None:
        samples.setdefault(key, []).append(value)

    # Warm-up: compile every jaxrap program and let torch allocate, outside the timings.
    for batch in BATCHES:
        jax_generate(jax_m, prompt, sampling_params(config, new, batch, 0))
    for ids in ttft_prompts.values():
        jax_first_token(jax_m, ids, sampling_params(config, 1, 1, 0))
    torch_generate(torch_m, prompt, sampling_params(config, 8, 1, 0))

    for r in range(rounds):
        for batch in BATCHES:
            params = sampling_params(config, new, batch, seed=r)
            record(f"jax_seconds_b{batch}", jax_generate(jax_m, prompt, params)[1])
            record(f"torch_seconds_b{batch}", torch_generate(torch_m, prompt, params))
        for n, ids in ttft_prompts.items():
            for _ in range(TTFT_REPEATS):
                record(f"jax_ttft_{n}", jax_first_token(jax_m, ids, sampling_params(config, 1, 1, r)))
                record(f"torch_ttft_{n}", torch_generate(torch_m, ids, sampling_params(config, 1, 1, r)))
        log(f"{shape}: round {r + 1}/{rounds} done")

    median = {key: statistics.median(values) for key, values in samples.items()}
    result = {"shape": shape, "model": config.describe(), "vocab": config.vocab_size, "config": config.to_hf_dict(),
              "new_tokens": new, "dtype": dtype, "rounds": rounds}
    for who in ("jax", "torch"):
        for batch in BATCHES:
            result[f"{who}_tokens_per_s_b{batch}"] = batch * new / median[f"{who}_seconds_b{batch}"]
        for n in TTFT_PROMPTS:
            result[f"{who}_ttft_ms_{n}"] = 1000 * median[f"{who}_ttft_{n}"]
    result["samples"] = samples
    del jax_m, torch_m
    if compile_probes:
        log(f"{shape}: compile times (fresh processes)")
        result["compile_seconds"] = compile_times(shape, dtype)
    return result


def table(results: list[dict]):
    from rich.table import Table

    out = Table(title="Sampling: jaxrap vs transformers (PyTorch) generate, same run, medians")
    for column in ("shape", "measure", "jaxrap", "transformers", "jaxrap / transformers"):
        out.add_column(column, justify="left" if column in ("shape", "measure") else "right")
    for result in results:
        shape = f"{result['shape']} ({result['model']}, V {result['vocab']})"
        for batch in BATCHES:
            ours, theirs = result[f"jax_tokens_per_s_b{batch}"], result[f"torch_tokens_per_s_b{batch}"]
            out.add_row(
                shape, f"tokens/s, batch {batch} ({result['new_tokens']} new)", f"{ours:.1f}", f"{theirs:.1f}", f"{ours / theirs:.2f}x"
            )
            shape = ""
        ours = result["jax_tokens_per_s_b8"] / result["jax_tokens_per_s_b1"]
        theirs = result["torch_tokens_per_s_b8"] / result["torch_tokens_per_s_b1"]
        out.add_row("", "batch 8 / batch 1 throughput", f"{ours:.2f}x", f"{theirs:.2f}x", "")
        for n in TTFT_PROMPTS:
            ours, theirs = result[f"jax_ttft_ms_{n}"], result[f"torch_ttft_ms_{n}"]
            out.add_row("", f"first token, {n}-token prompt (warm)", f"{ours:.0f} ms", f"{theirs:.0f} ms", f"{theirs / ours:.2f}x faster")
        compiled = result.get("compile_seconds", {})
        for name, cache in (("cold", "empty cache"), ("cached", "filled cache")) if compiled else ():  # --no-compile-times: none
            seconds = " / ".join(f"{compiled[name][f'batch{b}']:.1f}" for b in BATCHES)
            out.add_row("", f"trace + compile s, batch 1 / 8, fresh process, {cache}", seconds, "eager", "")
        out.add_section()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="tiny,gpt2", help=f"comma-separated, of {', '.join(SHAPES)}")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved jaxrap/transformers rounds (median)")
    parser.add_argument(
        "--new-tokens", type=int, default=NEW_TOKENS, help=f"tokens per generation (default {NEW_TOKENS}, fewer if the context is short)"
    )
    parser.add_argument("--no-compile-times", action="store_true", help="skip the fresh-process compile timings")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="jaxrap's compute dtype")
    parser.add_argument("--json", type=Path, help="also write the figures (and every timing) here")
    parser.add_argument("--compile-probe", metavar="SHAPE", help=argparse.SUPPRESS)  # internal: one fresh process
    args = parser.parse_args()

    if args.compile_probe:
        print(json.dumps(compile_probe(args.compile_probe, args.dtype)))
        return
    shapes = args.shapes.split(",")
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        parser.error(f"unknown shape(s) {', '.join(unknown)}; choose from {', '.join(SHAPES)}")

    import torch
    from rich.console import Console

    console = Console(stderr=True)
    console.log(f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs")
    results = [
        bench_shape(shape, args.rounds, args.dtype, console.log, most_new=args.new_tokens, compile_probes=not args.no_compile_times)
        for shape in shapes
    ]
    Console(width=140).print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
