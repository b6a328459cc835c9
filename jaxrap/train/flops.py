"""Peak FLOP/s for MFU: a table for TPUs and GPUs, a quick matmul measurement on CPU.

MFU = model FLOPs per second (``flops_per_token * tokens/s``) / peak FLOP/s of the devices.
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp

# Dense bfloat16 matmul peak of one JAX device (vendor datasheets). On TPU v2/v3 a JAX device
# is one core (half a chip); from v4 on it is a chip. Longest matching prefix wins.
_BF16_PEAK = {
    "TPU v2": 22.5e12,
    "TPU v3": 61.5e12,
    "TPU v4": 275e12,
    "TPU v5 lite": 197e12,
    "TPU v5e": 197e12,
    "TPU v5": 459e12,  # v5p
    "TPU v6 lite": 918e12,
    "TPU v6e": 918e12,
    "NVIDIA A100": 312e12,
    "NVIDIA H100": 989e12,
    "NVIDIA H200": 989e12,
    "NVIDIA L4": 121e12,
    "NVIDIA A10": 125e12,
}


def table_peak(device_kind: str, dtype: str) -> float | None:
    """Per-device peak for a known accelerator, None when unknown.

    float32 on NVIDIA runs matmuls as TF32 (JAX's default precision), half the bf16 rate; TPUs
    run float32 matmuls as bfloat16 passes by default, at the bf16 rate.
    """
    matches = [name for name in _BF16_PEAK if device_kind.startswith(name)]
    if not matches:
        return None
    peak = _BF16_PEAK[max(matches, key=len)]
    return peak / 2 if dtype == "float32" and device_kind.startswith("NVIDIA") else peak


@functools.cache
def measure_matmul_peak(dtype: str = "float32", size: int = 1024, repeats: int = 8) -> float:
    """FLOP/s of the best of ``repeats`` jitted (size x size) @ (size x size) matmuls on device 0."""
    a = jnp.ones((size, size), dtype)
    b = jnp.ones((size, size), dtype)
    matmul = jax.jit(jnp.matmul)
    matmul(a, b).block_until_ready()  # compile and warm up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        matmul(a, b).block_until_ready()
        best = min(best, time.perf_counter() - started)
    return 2.0 * size**3 / best


def total_peak_flops(devices: list[jax.Device], dtype: str, per_device: float | None = None) -> float:
    """Peak FLOP/s of ``devices`` together, for MFU.

    ``per_device`` (train.peak_flops) wins when given. CPU devices of one process share its
    cores (``--xla_force_host_platform_device_count`` only splits them), so the CPU peak is one
    measurement per process, whatever the device count.
    """
    if per_device is not None:
        return per_device * len(devices)
    if devices[0].platform == "cpu":
        return measure_matmul_peak(dtype) * jax.process_count()
    peak = table_peak(devices[0].device_kind, dtype)
    return peak * len(devices) if peak is not None else measure_matmul_peak(dtype, size=4096) * len(devices)
