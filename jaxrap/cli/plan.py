"""`jaxrap plan`: the memory each device needs to train a config, full fine-tuning and LoRA side
by side, before any weight or data is read (``jaxrap.train.memory_plan``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from jaxrap.errors import JaxrapError

HOST_DEVICES_FLAG = "--xla_force_host_platform_device_count"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="the memory per device a config needs (parameters, gradients, optimizer state, activations), full vs LoRA",
        description="Plan the memory of training --config, per device, for full fine-tuning and for LoRA"
        " (model.lora, or rank 16 on every linear layer when the config has none): parameters, gradients,"
        " optimizer state, and activations at the config's batch and block, read from XLA's memory"
        " analysis of the real train step. Names the largest term and what to change (mesh.fsdp,"
        " model.lora, model.base_dtype, train.remat, a smaller batch with accumulation). No weight or"
        " data is read; a model.init on the hub needs its config.json only. Exit status 1 when the"
        " configured method does not fit --device-memory.",
    )
    parser.add_argument("--config", required=True, type=Path, help="run config YAML (e.g. configs/tiny_cpu.yaml)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="override one config value, read as YAML (e.g. --set model.lora.rank=8); repeatable",
    )
    parser.add_argument(
        "--devices", type=int,
        help="plan for this many devices (default: this machine's); on a machine with fewer, the step is"
        " compiled for as many host (CPU) devices",
    )
    parser.add_argument(
        "--device-memory", metavar="SIZE",
        help="memory of one device, e.g. 16GiB (TPU v5e), 32GiB (TPU v4), 80GB; default: train.device_memory,"
        " else what the devices report",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from jaxrap.byte_sizes import parse_size
    from jaxrap.config import load_config

    config = load_config(args.config, args.overrides)
    memory = args.device_memory if args.device_memory is not None else config.train.device_memory
    try:
        setting = parse_size(memory) if memory is not None else None
    except ValueError as error:
        raise JaxrapError(f"--device-memory: {error}") from None
    if args.devices is not None and args.devices < 1:
        raise JaxrapError(f"--devices must be 1 or more, got {args.devices}")
    devices = _devices(args.devices)

    from jaxrap.byte_sizes import format_size
    from jaxrap.compile_cache import enable_compilation_cache
    from jaxrap.sharding import make_mesh
    from jaxrap.train.memory_plan import device_capacity, plan_both, planned_model_config, render, suggestions

    enable_compilation_cache()  # `jaxrap train` of the same config then loads the probes compiled here
    mesh = make_mesh(config.mesh, devices)
    model_config = planned_model_config(config)
    capacity, source = device_capacity(devices, setting) if setting is not None or args.devices is None else (None, "")
    train = config.train
    print(
        f"{args.config}: {model_config.describe()}, {model_config.num_params() / 1e6:,.0f}M parameters;"
        f" {mesh.size} {devices[0].platform} device(s), mesh data {mesh.shape['data']} x fsdp {mesh.shape['fsdp']};"
        f" {train.per_device_batch_size} x {config.data.block_size} tokens per device x {train.grad_accum_steps}"
        f" accumulation step(s); {config.model.dtype} compute; remat {train.remat}"
    )
    full, lora = plan_both(config, model_config, mesh)
    for line in render((full, lora), capacity):
        print(line)
    if capacity is not None:
        print(f"device memory: {format_size(capacity)} ({source})")
    configured = lora if config.model.lora is not None else full
    share = (configured.terms[configured.largest] or 0) / max(configured.total, 1)
    print(f"{configured.method}: the largest term is {configured.largest} ({share:.0%} of {format_size(configured.total)})")
    fits = capacity is None or configured.total <= capacity
    remedies = suggestions(config, configured, mesh)
    if remedies:
        print(("to fit, change" if not fits else "to shrink it, change") + ":")
        for remedy in remedies:
            print(f"  {remedy}")
    return 0 if fits else 1


def _devices(count: int | None) -> list:
    """``count`` devices of the default backend, or of the host platform when it has fewer
    (forced to ``count`` host devices when jax has not started yet)."""
    if count is not None and "jax" not in sys.modules:
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {HOST_DEVICES_FLAG}={count}".strip()
    import jax

    devices = jax.devices()
    if count is None:
        return devices
    if len(devices) < count:
        devices = jax.devices("cpu")
    if len(devices) < count:
        raise JaxrapError(
            f"--devices {count}: this process has {len(devices)} host device(s) (jax started before {HOST_DEVICES_FLAG}"
            " could be set); run `jaxrap plan` in its own process"
        )
    return devices[:count]
