"""The memory plan (jaxrap.train.memory_plan, `jaxrap plan`, `jaxrap train`'s check): state terms
from the shapes and shardings, LoRA's gradients and optimizer state against full fine-tuning's,
activations extrapolated from 1 and 2 blocks against the whole model's compile, and the CLI:
the table, the refusal of what cannot fit before any data work, and bad sizes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from jaxrap.byte_sizes import format_size, parse_size, size_problem
from jaxrap.config import MeshConfig, load_config
from jaxrap.model.config import GPT2Config
from jaxrap.sharding import make_mesh
from jaxrap.train import memory_plan
from jaxrap.train.memory_plan import plan_both, plan_memory, with_layers

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY = GPT2Config(vocab_size=256, n_positions=64, n_embd=64, n_layer=3, n_head=4)


def _config(*overrides: str):
    return load_config(None, ["model.init=some/base", "data.block_size=64", "train.per_device_batch_size=2", *overrides])


def _jaxrap(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "XLA_FLAGS": "", **env}
    return subprocess.run([sys.executable, "-m", "jaxrap", *args], env=environment, capture_output=True, text=True, timeout=300)


def test_state_terms_follow_the_shapes_and_the_mesh():
    one = make_mesh(MeshConfig(), jax.devices()[:1])
    full, lora = plan_both(_config("model.lora.rank=8", "model.base_dtype=bfloat16"), TINY, one, activations=False)
    params = 4 * TINY.num_params()
    assert (full.parameters, full.gradients, full.trained) == (params, params, TINY.num_params())
    assert params * 2 < full.optimizer < params * 2 + 64  # Adam's two moments, and its counts
    adapters = 3 * 8 * (64 + 192 + 64 + 64 + 64 + 256 + 256 + 64)  # per block: c_attn, c_proj, c_fc, mlp c_proj
    assert lora.trained == adapters and lora.gradients == 4 * adapters
    assert lora.parameters == 2 * TINY.num_params() + 4 * adapters  # a bfloat16 base, float32 adapters
    assert full.activations is None and lora.method == "LoRA rank 8"

    fsdp = plan_memory(_config(), TINY, make_mesh(MeshConfig(fsdp=4)), activations=False)
    assert full.parameters / 4 <= fsdp.parameters < full.parameters / 3  # small leaves stay whole


def test_lora_gradients_and_optimizer_state_are_under_5_percent_of_full_fine_tuning_on_gpt2_small():
    gpt2_small = GPT2Config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12)
    one = make_mesh(MeshConfig(), jax.devices()[:1])
    full, lora = plan_both(_config("data.block_size=1024", "model.lora.rank=16"), gpt2_small, one, activations=False)
    ratio = (lora.gradients + lora.optimizer) / (full.gradients + full.optimizer)
    assert ratio < 0.05, ratio  # 1.9%: 2.36M adapter parameters against 124M


def test_activations_from_one_and_two_blocks_match_the_whole_models_compile():
    one = make_mesh(MeshConfig(), jax.devices()[:1])
    config = _config()
    extrapolated = memory_plan._probe_temporaries(config, TINY, one)
    monkey = memory_plan.PROBE_LAYERS
    try:
        memory_plan.PROBE_LAYERS = (3, 4)  # TINY has 3 blocks: compiled whole
        whole = memory_plan._probe_temporaries(config, TINY, one)
    finally:
        memory_plan.PROBE_LAYERS = monkey
    assert extrapolated is not None and whole is not None
    assert abs(extrapolated - whole) <= 0.05 * whole, (extrapolated, whole)
    assert with_layers(TINY, 1).n_layer == 1 and with_layers(TINY, 1).n_embd == TINY.n_embd


def test_remat_and_a_smaller_batch_shrink_the_activations():
    one = make_mesh(MeshConfig(), jax.devices()[:1])
    plain = plan_memory(_config(), TINY, one)
    remat = plan_memory(_config("train.remat=block"), TINY, one)
    halved = plan_memory(_config("train.per_device_batch_size=1", "train.grad_accum_steps=2"), TINY, one)
    assert plain.activations and remat.activations and halved.activations
    assert remat.activations < 0.8 * plain.activations and halved.activations < 0.7 * plain.activations
    assert plain.largest == "activations"
    remedies = memory_plan.suggestions(_config(), plain, make_mesh(MeshConfig()))
    assert remedies[0].startswith("train.remat: block") and remedies[1].startswith("train.per_device_batch_size: 1 with")
    assert any(remedy.startswith("mesh.fsdp: 4") for remedy in remedies)


def test_sizes_read_and_print():
    assert parse_size("16GiB") == 16 << 30 and parse_size("80GB") == 80 * 10**9 and parse_size("1.5 t") == 3 << 39
    assert parse_size("512") == 512 and format_size(16 << 30) == "16.0 GiB" and format_size(100) == "100 B"
    assert size_problem("lots") == "expected a size such as 16GiB, 512MiB or 80GB, got 'lots'"
    assert size_problem("16GiBs") is not None and size_problem("0") == "must be at least 1 byte, got '0'"


def test_jaxrap_plan_prints_both_methods_and_what_to_change(tmp_path):
    """And keeps its probes in the persistent compilation cache, for the `jaxrap train` after it."""
    result = _jaxrap("plan", "--config", str(CONFIGS / "tiny_cpu.yaml"), "--set", "model.shape.n_layer=2",
                     "--set", "data.block_size=64", "--devices", "4", "--device-memory", "1MiB",
                     JAXRAP_COMPILATION_CACHE=str(tmp_path / "xla"))
    assert result.returncode == 1, result.stderr[-3000:]  # full fine-tuning does not fit 1 MiB
    lines = result.stdout.splitlines()
    assert "4 cpu device(s), mesh data 4 x fsdp 1" in lines[0]
    assert lines[1].split() == ["per", "device", "full", "fine-tuning", "LoRA", "rank", "16"]
    assert [line.split()[0] for line in lines[2:7]] == ["parameters", "gradients", "optimizer", "activations", "total"]
    assert "NO" in lines[8] and lines[9] == "device memory: 1.0 MiB (as set)"
    assert lines[10].startswith("full fine-tuning: the largest term is activations")
    assert lines[11] == "to fit, change:" and any("mesh.fsdp: 4" in line for line in lines[12:])
    assert result.stderr == ""
    assert any((tmp_path / "xla").iterdir())


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--device-memory", "lots"], "jaxrap: error: --device-memory: expected a size such as 16GiB, 512MiB or 80GB, got 'lots'"),
        (["--devices", "0"], "jaxrap: error: --devices must be 1 or more, got 0"),
        (["--devices", "3", "--set", "mesh.fsdp=2"], "jaxrap: error: mesh.data (1) x mesh.fsdp (2) must equal the number of devices (3)"),
    ],
)
def test_jaxrap_plan_refuses_bad_input_in_one_line(flags, message):
    result = _jaxrap("plan", "--config", str(CONFIGS / "tiny_cpu.yaml"), *flags)
    assert result.returncode == 2 and result.stderr.strip().startswith(message) and len(result.stderr.splitlines()) == 1


def test_train_refuses_a_config_that_cannot_fit_before_any_data_work(tmp_path):
    result = _jaxrap("train", "--config", str(CONFIGS / "tiny_cpu.yaml"), "--run-dir", str(tmp_path / "run"),
                     "--set", f"data.path={tmp_path / 'corpus'}", "--set", "train.device_memory=8MiB")
    assert result.returncode == 2, result.stderr[-3000:]
    (error,) = result.stderr.splitlines()
    assert error.startswith("jaxrap: error: this run needs ") and "more than the 8.0 MiB each device has (as set)" in error
    assert "(full fine-tuning: parameters 16.3 MiB, gradients 16.3 MiB, optimizer state 32.6 MiB, activations unknown)" in error
    assert "the largest term is optimizer state. To fit: model.lora" in error
    assert not (tmp_path / "corpus").exists() and not (tmp_path / "run").exists()
    bad = _jaxrap("train", "--config", str(CONFIGS / "tiny_cpu.yaml"), "--set", "train.device_memory=16 gigs")
    assert bad.returncode == 2 and "train.device_memory: expected a size such as 16GiB" in bad.stderr


class _Device:
    """A device of a multi-host mesh: another process's raises on memory_stats, as PjRt does."""

    device_kind = "TPU v5 lite"

    def __init__(self, process_index: int):
        self.process_index = process_index

    def memory_stats(self) -> dict[str, int]:
        if self.process_index != jax.process_index():
            raise RuntimeError("MemoryStats is only supported for addressable PjRt devices.")
        return {"bytes_limit": 16 * 2**30}


def test_device_capacity_asks_this_processs_own_devices_on_a_multi_host_mesh():
    """Process 1 of two: the mesh's first device is process 0's (tests/test_multihost.py runs
    the whole thing; `jaxrap train` on process 1 died here before)."""
    here = jax.process_index()
    devices = [_Device(here + 1), _Device(here + 1), _Device(here), _Device(here)]
    assert memory_plan.device_capacity(devices) == (16 * 2**30, "TPU v5 lite reports")
