"""Check jaxrap's fused attention on a GPU: cuDNN's kernel against XLA's, and the models on it.

    python scripts/check_attention_gpu.py            # on a machine with an NVIDIA GPU; ~1-2 minutes

Self-contained (random weights, no files, no network). On a CPU-only machine it says so and
exits 1. It prints, in bfloat16:

1. ``jax.nn.dot_product_attention`` causal, grouped-query shapes of the families (B 4, T 1024,
   16 query heads over 16 / 8 / 4 key-value heads, head width 64 and 128): cuDNN's output and
   gradients against XLA's implementation of the same call (max abs difference, and relative to
   the output's scale), and the time of a forward + backward of each;
2. a training forward + backward of jaxrap's Llama-style block and GPT-2 (``jaxrap.model.lm``),
   whether the compiled program holds cuDNN's fused attention (``__cudnn$fmha`` custom calls:
   the path ``jaxrap.model.attention.fused_implementation`` picks), and its logits against the
   same model computing in float32 (the bfloat16 gap the README's tolerance speaks of);
3. a PASS / FAIL line: cuDNN within bfloat16 rounding of XLA, and the models on the fused path.
"""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

# bfloat16 keeps 8 bits of mantissa: two implementations of the same softmax-weighted sums agree
# to a few roundings of the output's scale.
RELATIVE_TOLERANCE = 2e-2


def timed(fn, *args, repeats: int = 10) -> float:
    """Median milliseconds of ``fn(*args)`` after a warm-up call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def check_kernel(kv_heads: int, head_dim: int) -> bool:
    B, T, H = 4, 1024, 16
    keys = jax.random.split(jax.random.key(0), 4)
    q = jax.random.normal(keys[0], (B, T, H, head_dim), jnp.bfloat16)
    k = jax.random.normal(keys[1], (B, T, kv_heads, head_dim), jnp.bfloat16)
    v = jax.random.normal(keys[2], (B, T, kv_heads, head_dim), jnp.bfloat16)
    g = jax.random.normal(keys[3], (B, T, H, head_dim), jnp.bfloat16)

    def run(implementation):
        def loss(q, k, v):
            out = jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation=implementation)
            return jnp.sum(out.astype(jnp.float32) * g.astype(jnp.float32)), out

        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))

    cudnn, xla = run("cudnn"), run("xla")
    (_, out_c), grads_c = cudnn(q, k, v)
    (_, out_x), grads_x = xla(q, k, v)
    scale = float(jnp.abs(out_x.astype(jnp.float32)).max())
    worst = max(
        float(jnp.abs(a.astype(jnp.float32) - b.astype(jnp.float32)).max()) / max(float(jnp.abs(b.astype(jnp.float32)).max()), 1e-6)
        for a, b in zip((out_c, *grads_c), (out_x, *grads_x))
    )
    ms_c, ms_x = timed(cudnn, q, k, v), timed(xla, q, k, v)
    ok = worst <= RELATIVE_TOLERANCE
    print(f"  heads {H}/{kv_heads}, D {head_dim}: max |cuDNN - XLA| / max |XLA| = {worst:.2e} (output scale {scale:.2f})"
          f" {'ok' if ok else 'TOO FAR'}; fwd+bwd cuDNN {ms_c:.2f} ms, XLA {ms_x:.2f} ms ({ms_x / ms_c:.2f}x)")
    return ok


def check_model(name: str, config) -> bool:
    from jaxrap.model import lm

    params = lm.build(config, seed=0)[1]
    ids = jax.random.randint(jax.random.key(1), (4, 1024), 0, config.vocab_size)

    def loss(params, forward):
        return jnp.mean(forward(params, ids, None))

    low, high = lm.make_forward(config, "bfloat16"), lm.make_forward(config, "float32")
    step = jax.jit(jax.grad(lambda p: loss(p, low)))
    fused = step.lower(params).compile().as_text().count("__cudnn$fmha")
    ms = timed(step, params)
    gap = float(jnp.abs(jax.jit(low)(params, ids, None) - jax.jit(high)(params, ids, None)).max())
    ok = fused > 0
    print(f"  {name} ({config.describe()}): {fused} cuDNN fused-attention calls in the training step"
          f" {'ok' if ok else 'MISSING'}; fwd+bwd {ms:.1f} ms; bfloat16 logits within {gap:.3f} of float32")
    return ok


def main() -> int:
    if jax.default_backend() != "gpu":
        print(f"no GPU: jax's backend is {jax.default_backend()}; run this where an NVIDIA GPU is visible")
        return 1
    from jaxrap.model.config import GPT2Config
    from jaxrap.model.llama_config import LlamaConfig

    print(f"{jax.devices()[0].device_kind}, jax {jax.__version__}")
    print("1. dot_product_attention, causal, bfloat16, B 4 x T 1024:")
    kernel_ok = all(check_kernel(kv, d) for kv, d in ((16, 64), (8, 128), (4, 64)))
    print("2. jaxrap's models, bfloat16 training step (B 4 x T 1024):")
    llama = LlamaConfig(vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=4,
                        num_attention_heads=16, num_key_value_heads=4, max_position_embeddings=2048)
    gpt2 = GPT2Config(n_layer=4, n_embd=1024, n_head=16, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    models_ok = check_model("Llama-style", llama) & check_model("GPT-2", gpt2)
    passed = kernel_ok and models_ok
    print(f"3. {'PASS' if passed else 'FAIL'}: cuDNN {'within' if kernel_ok else 'NOT within'} bfloat16 rounding of XLA;"
          f" models {'on' if models_ok else 'NOT on'} the fused path")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
