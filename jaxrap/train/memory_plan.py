"""How much memory each device needs to train a config, found before any weight or data is
read: ``jaxrap plan`` prints it, ``jaxrap train`` refuses a config that cannot fit.

Per device, for full fine-tuning and for LoRA:

- parameters: each leaf's shard on one device, of the trainable params and (LoRA) of the
  frozen base in ``model.base_dtype``: shapes from ``jax.eval_shape``, shards from the run's
  own shardings (``jaxrap.sharding``);
- gradients: the trainable params' shard in float32 (the step holds their sum);
- optimizer state: AdamW's two moments and count, sharded like the params;
- activations: everything else the compiled train step holds at its peak, read from XLA's
  memory analysis of the real step (``loop.CompiledSteps``: the same forward, optimizer,
  shardings, mesh, batch and block): its temporaries, less the gradients, plus the batch.

Compiling a 7B model's step takes minutes, and its temporaries grow by the same amount with
each block, so the step is compiled with 1 and 2 blocks and extrapolated linearly to L (within
a few percent of the whole model's compile where both were measured: docs/lora.md). On a
backend without a memory analysis the activations are unknown and the plan says so.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import jax
import jax.numpy as jnp

from jaxrap.byte_sizes import format_size
from jaxrap.checkpoint import abstract_like
from jaxrap.config import SCRATCH, LoraConfig, RunConfig
from jaxrap.errors import JaxrapError
from jaxrap.model.registry import LMConfig, config_from_hf_dict
from jaxrap.train.loop import CompiledSteps
from jaxrap.train.trainable import training_model

if TYPE_CHECKING:
    from jax.sharding import Mesh

    from jaxrap.rundir import RunDir

TERMS = ("parameters", "gradients", "optimizer state", "activations")
# Layers the activation probes are compiled with: the step's temporaries at L layers are
# temp(1) + (L - 1) * (temp(2) - temp(1)).
PROBE_LAYERS = (1, 2)


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    """Bytes per device of one way to train a config."""

    method: str  # "full fine-tuning", "LoRA rank 16"
    parameters: int
    gradients: int
    optimizer: int
    activations: int | None  # None: the backend gave no memory analysis
    trained: int  # parameters the optimizer updates (all devices)

    @property
    def terms(self) -> dict[str, int | None]:
        return dict(zip(TERMS, (self.parameters, self.gradients, self.optimizer, self.activations)))

    @property
    def total(self) -> int:
        return sum(value or 0 for value in self.terms.values())

    @property
    def largest(self) -> str:
        return max(self.terms, key=lambda name: self.terms[name] or 0)


def plan_both(config: RunConfig, model_config: LMConfig, mesh: Mesh, *, activations: bool = True) -> tuple[MemoryPlan, MemoryPlan]:
    """(full fine-tuning, LoRA) plans of ``config``: LoRA as ``model.lora`` says, or with
    ``LoraConfig``'s defaults (rank 16, every linear layer of the blocks) when it says none."""
    full = config.model_copy(update={"model": config.model.model_copy(update={"lora": None, "base_dtype": "float32"})})
    lora = config if config.model.lora is not None else config.model_copy(
        update={"model": config.model.model_copy(update={"lora": LoraConfig()})}
    )
    return plan_memory(full, model_config, mesh, activations=activations), plan_memory(lora, model_config, mesh, activations=activations)


def plan_memory(config: RunConfig, model_config: LMConfig, mesh: Mesh, *, activations: bool = True) -> MemoryPlan:
    """The plan of training ``config`` as it says (full fine-tuning or LoRA) on ``mesh``;
    ``activations=False`` skips the compiles (the state terms alone)."""
    steps = _steps(config, model_config, mesh)
    params, frozen = steps.abstract_state["params"], steps.model.abstract_frozen
    params_shardings = steps.steps.state_shardings["params"]
    parameters = _shard_bytes(params, params_shardings) + _shard_bytes(frozen, steps.steps.frozen_shardings)
    gradients = _shard_bytes(_as_float32(params), params_shardings)
    optimizer = _shard_bytes(steps.abstract_state["opt_state"], steps.steps.state_shardings["opt_state"])
    temporaries = _probe_temporaries(config, model_config, mesh) if activations else None
    lora = config.model.lora
    return MemoryPlan(
        method="full fine-tuning" if lora is None else f"LoRA rank {lora.rank}",
        parameters=parameters,
        gradients=gradients,
        optimizer=optimizer,
        activations=None if temporaries is None else max(temporaries - gradients, 0) + steps.batch_bytes,
        trained=sum(leaf.size for leaf in jax.tree.leaves(params)),
    )


@dataclasses.dataclass(frozen=True)
class _Steps:
    steps: CompiledSteps
    model: Any  # loop.Model

    @property
    def abstract_state(self) -> Any:
        return self.steps.abstract_state

    @property
    def batch_bytes(self) -> int:
        """One device's input_ids, targets and loss_mask (int32) of a train batch."""
        return 3 * 4 * math.prod(self.steps.train_shape) // self.steps.mesh.size


def _steps(config: RunConfig, model_config: LMConfig, mesh: Mesh) -> _Steps:
    model = training_model(config, model_config, _never_loaded)
    return _Steps(CompiledSteps.build(config, model, mesh, config.data.block_size), model)


def _never_loaded(shardings: Any) -> Any:
    raise AssertionError("a memory plan reads no weights")


def _probe_temporaries(config: RunConfig, model_config: LMConfig, mesh: Mesh) -> int | None:
    """Bytes of temporaries of the real train step at ``model_config``'s depth, extrapolated from
    compiles at ``PROBE_LAYERS`` (or the model's own depth when it has no more); None when the
    backend gives no memory analysis."""
    layers = model_config.n_layer
    probes = [n for n in PROBE_LAYERS if n <= layers] if layers > PROBE_LAYERS[-1] else [layers]
    temps = []
    for n in probes:
        probe = _steps(config, with_layers(model_config, n), mesh)
        compiled = probe.steps
        state = abstract_like(compiled.abstract_state, compiled.state_shardings)
        frozen = abstract_like(probe.model.abstract_frozen, compiled.frozen_shardings)
        batch = {name: jax.ShapeDtypeStruct(compiled.train_shape, jnp.int32, sharding=compiled.train_sharding)
                 for name in ("input_ids", "targets", "loss_mask")}
        jitted = cast(Any, compiled.train_fn)  # jit_train_step's jax.jit-ed step
        analysis = jitted.lower(state, batch, frozen).compile().memory_analysis()
        if analysis is None:
            return None
        temps.append(int(analysis.temp_size_in_bytes))
    if len(temps) == 1:
        return temps[0]
    return temps[0] + (layers - PROBE_LAYERS[0]) * (temps[1] - temps[0])


def with_layers(config: LMConfig, layers: int) -> LMConfig:
    """``config`` with ``layers`` blocks (its config.json with the layer count changed)."""
    data = config.to_hf_dict()
    key = "num_hidden_layers" if "num_hidden_layers" in data else "n_layer"
    return config_from_hf_dict({**data, key: layers})


def _shard_bytes(abstract: Any, shardings: Any) -> int:
    """Bytes one device holds of ``abstract`` (ShapeDtypeStructs) placed with ``shardings``."""
    leaves = jax.tree.leaves(abstract)
    placed = jax.tree.leaves(shardings, is_leaf=lambda x: isinstance(x, jax.sharding.Sharding))
    return sum(
        math.prod(target.shard_shape(tuple(leaf.shape))) * jnp.dtype(leaf.dtype).itemsize
        for leaf, target in zip(leaves, placed, strict=True)
    )


def _as_float32(abstract: Any) -> Any:
    return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, jnp.float32), abstract)


def device_capacity(devices: list[jax.Device], setting: int | None = None) -> tuple[int, str]:
    """(bytes per device, where the figure comes from): ``setting`` when given, else what the
    device reports (TPU, GPU), else the host's memory shared by this host's devices (CPU)."""
    if setting is not None:
        return setting, "as set"
    # Only this process's devices answer memory_stats (another host's raise): on a multi-host
    # mesh each process asks its own.
    own = [device for device in devices if device.process_index == jax.process_index()] or devices[:1]
    stats = own[0].memory_stats() or {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"]), f"{own[0].device_kind} reports"
    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return host // len(own), f"the host's {format_size(host)} over {len(own)} device(s)"


def suggestions(config: RunConfig, plan: MemoryPlan, mesh: Mesh) -> list[str]:
    """What would shrink ``plan``: for the state (fsdp, LoRA, a bfloat16 base) and for the
    activations (rematerialisation, a smaller batch with more accumulation), those of the
    larger of the two first."""
    devices, fsdp = mesh.size, mesh.shape["fsdp"]
    state = plan.parameters + plan.gradients + plan.optimizer
    lora, train = config.model.lora, config.train
    for_state, for_activations = [], []
    if fsdp < devices:
        for_state.append(
            f"mesh.fsdp: {devices} (parameters, gradients and optimizer state split over all {devices} devices:"
            f" about {format_size(state * fsdp / devices)} instead of {format_size(state)})"
        )
    if lora is None:
        for_state.append("model.lora (gradients and optimizer state for the adapters only: `jaxrap plan` shows its column)")
    elif config.model.base_dtype == "float32":
        for_state.append(f"model.base_dtype: bfloat16 (the frozen base in half the bytes: about {format_size(plan.parameters / 2)})")
    if train.remat == "none":
        for_activations.append("train.remat: block (keeps one block's activations for the backward pass instead of all)")
    if train.per_device_batch_size > 1:
        for_activations.append(
            f"train.per_device_batch_size: {train.per_device_batch_size // 2} with train.grad_accum_steps:"
            f" {train.grad_accum_steps * 2} (the same global batch, about half the activations)"
        )
    activations_first = (plan.activations or 0) > state
    return for_activations + for_state if activations_first else for_state + for_activations


def render(plans: tuple[MemoryPlan, ...], capacity: int | None) -> list[str]:
    """The plans as a table of lines: one column per plan, a row per term and the total, and
    (given a device's memory) whether each fits."""
    width = max(16, *(len(plan.method) + 2 for plan in plans))
    lines = ["per device".ljust(18) + "".join(plan.method.rjust(width) for plan in plans)]
    for name in TERMS:
        cells = [plan.terms[name] for plan in plans]
        lines.append(name.ljust(18) + "".join(("unknown" if cell is None else format_size(cell)).rjust(width) for cell in cells))
    lines.append("total".ljust(18) + "".join(format_size(plan.total).rjust(width) for plan in plans))
    lines.append("trained params".ljust(18) + "".join(f"{plan.trained:,}".rjust(width) for plan in plans))
    if capacity is not None:
        lines.append(
            f"of {format_size(capacity)}".ljust(18)
            + "".join((f"{plan.total / capacity:.0%} " + ("fits" if plan.total <= capacity else "NO")).rjust(width) for plan in plans)
        )
    return lines


def planned_model_config(config: RunConfig, run: RunDir | None = None) -> LMConfig:
    """The model ``config`` trains, read without weights or data: a resumed run's own shape,
    a pretrained model's config.json (from the hub, that file alone), or a scratch shape with
    ``data.vocab_size`` tokens (the tokenizer is trained later; artist tokens add a few rows
    the plan leaves out)."""
    from jaxrap.model.registry import read_config, scratch_config

    if run is not None and run.model_config_file.is_file() and run.has_checkpoints():
        return read_config(run.model_config_file)
    if config.model.init != SCRATCH:
        return _pretrained_config(config.model.init)
    shape = config.model.shape
    assert shape is not None  # a scratch config has its default shape
    vocab = config.data.vocab_size
    if config.model.tokenizer is not None:
        from jaxrap.data.tokenizer import load_tokenizer

        vocab = len(load_tokenizer(config.model.tokenizer))
    return scratch_config(
        shape.model_type, n_layer=shape.n_layer, n_head=shape.n_head, n_embd=shape.n_embd, n_positions=shape.n_positions,
        dropout=shape.dropout, n_kv_head=shape.n_kv_head, n_inner=shape.n_inner, head_dim=shape.head_dim,
        rope_theta=shape.rope_theta, tie_word_embeddings=shape.tie_word_embeddings,
    ).replace(vocab_size=vocab)


def _pretrained_config(init: str) -> LMConfig:
    """config.json of a model directory, or of a hub id (downloaded alone, weights left)."""
    from pathlib import Path

    from jaxrap.hub import is_hub_id
    from jaxrap.model import hf
    from jaxrap.model.registry import read_config

    if Path(init).expanduser().exists() or not is_hub_id(init):
        return hf.load_config(hf.resolve_model_dir(init))
    try:
        from huggingface_hub import hf_hub_download

        return read_config(hf_hub_download(repo_id=init, filename="config.json"))
    except JaxrapError:
        raise
    except Exception as error:  # noqa: BLE001 - network, auth and 404s all mean "not reachable"
        raise JaxrapError(
            f"{init}: not a local directory and its config.json could not be fetched from the Hugging Face hub"
            f" ({type(error).__name__}); pass a local model directory (its config.json is all a plan reads)"
        ) from None


def refuse_what_cannot_fit(config: RunConfig, run: RunDir, mesh: Mesh, say: Callable[[str], None]) -> MemoryPlan:
    """``jaxrap train``'s check, before any data work: the run's plan against each device's
    memory (``train.device_memory``, else ``device_capacity``); a JaxrapError with the figures
    and what to change when it does not fit."""
    from jaxrap.byte_sizes import parse_size

    setting = parse_size(config.train.device_memory) if config.train.device_memory is not None else None
    capacity, source = device_capacity(list(mesh.devices.flat), setting)
    model_config = planned_model_config(config, run)
    plan = plan_memory(config, model_config, mesh, activations=False)
    if plan.total <= capacity:  # the state fits: compile the probes for the activations
        plan = plan_memory(config, model_config, mesh)
    figures = ", ".join(f"{name} {'unknown' if value is None else format_size(value)}" for name, value in plan.terms.items())
    if plan.total > capacity:
        remedies = "; ".join(suggestions(config, plan, mesh)) or "a larger device or more devices"
        raise JaxrapError(
            f"this run needs {format_size(plan.total)} per device ({plan.method}: {figures}), more than the"
            f" {format_size(capacity)} each device has ({source}); the largest term is {plan.largest}. To fit: {remedies}"
        )
    say(f"memory per device: {format_size(plan.total)} of {format_size(capacity)} ({plan.method}: {figures})")
    return plan

