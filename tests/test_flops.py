"""Peak FLOP/s for MFU: the accelerator table, the CPU measurement, the config override."""

from __future__ import annotations

import jax
import pytest

from jaxrap.train.flops import measure_matmul_peak, table_peak, total_peak_flops


@pytest.mark.parametrize(
    ("kind", "dtype", "peak"),
    [
        ("TPU v4", "bfloat16", 275e12),
        ("TPU v5 lite", "float32", 197e12),  # TPUs run float32 matmuls as bf16 passes
        ("TPU v5p", "bfloat16", 459e12),
        ("NVIDIA H100 80GB HBM3", "bfloat16", 989e12),
        ("NVIDIA H100 80GB HBM3", "float32", 989e12 / 2),  # TF32
        ("NVIDIA A100-SXM4-40GB", "bfloat16", 312e12),
        ("Some new chip", "bfloat16", None),
    ],
)
def test_known_accelerators(kind, dtype, peak):
    assert table_peak(kind, dtype) == peak


def test_cpu_peak_is_measured_once_per_process_whatever_the_device_count():
    measured = measure_matmul_peak("float32", size=256, repeats=2)
    assert 1e8 < measured < 1e14
    cpus = jax.devices()  # 4 virtual devices share the host's cores
    assert total_peak_flops(cpus, "float32") == measure_matmul_peak("float32")
    assert total_peak_flops(cpus, "float32", per_device=1e11) == 4e11  # train.peak_flops wins
