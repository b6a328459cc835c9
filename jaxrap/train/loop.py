"""The training loop: plain Python around the jitted ``train_step``, with hooks after each update.

It knows the model only as ``forward`` (see ``step``) and its initial parameters; data come as
packed blocks (``jaxrap.data.batches``). The body is: next batch (gathered and put on the
devices by a background thread while the previous step runs, ``prefetch``), train step (only
dispatched: metrics stay on the devices; the loop waits only when it is ``dispatch.MAX_IN_FLIGHT``
steps ahead of them, ``jaxrap.dispatch`` says why), hooks (``hooks``: they log, evaluate and save on the
steps the config asks for, syncing with the devices only then, and stop the run on a non-finite
loss, gradient or updated state before anything is saved).

Resuming: when the run's checkpoint directory has checkpoints, the newest readable one is
restored (params, optimizer state, step, RNG and data position; a LoRA run's frozen base is
read again, once the checkpoint's record of it matches) and training continues as if never
stopped, with the same global batch on any number of devices that can split it (the
accumulation steps make up for fewer devices). SIGTERM (TPU preemption) and Ctrl-C finish the
current step, save, and return normally; a second Ctrl-C aborts at once (``stop``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxrap import sharding
from jaxrap.checkpoint import Checkpoints, abstract_like
from jaxrap.config import RunConfig, TrainConfig, flatten
from jaxrap.data.batches import EvalBatches, PackedBlocks, TrainBatches
from jaxrap.dispatch import DispatchWindow
from jaxrap.errors import JaxrapError
from jaxrap.model.loss import perplexity
from jaxrap.train.flops import total_peak_flops
from jaxrap.train.hooks import CheckpointHook, EvalHook, LogHook, StepHooks, ThroughputHook
from jaxrap.train.optimizer import make_optimizer
from jaxrap.train.prefetch import Prefetcher
from jaxrap.train.step import Batch, Forward, Params, TrainState, init_state, jit_eval_step, jit_train_step
from jaxrap.train.stop import StopRequest
from jaxrap.train.trackers import CompositeTracker, Tracker

PREFETCH = 2  # batches gathered and on the devices ahead of the running step


@dataclass(frozen=True)
class TrainResult:
    step: int  # updates done when the loop returned
    stopped_by: str | None  # "SIGTERM" / "SIGINT" when a signal ended the run early, else None
    eval_loss: float | None  # the last evaluation's validation loss, None when none ran

    @property
    def eval_perplexity(self) -> float | None:
        return None if self.eval_loss is None else perplexity(self.eval_loss)


@dataclass(frozen=True)
class Model:
    """What the loop needs of a model: a forward, its shape, initial params and FLOPs. Not a
    loaded model (``jaxrap.load.LoadedModel``): weights come from ``init_params`` or a checkpoint.

    The params are the trainable ones (in the train state and the checkpoints) and, for a model
    with a frozen part (a LoRA run's base), the frozen ones: loaded by ``load_frozen`` at every
    start, resumed or not, and passed to each step, never trained or saved (``step``)."""

    forward: Forward  # forward(params, input_ids, dropout_key), params = trainable and frozen joined
    abstract_params: Params  # ShapeDtypeStruct tree of the trainable float32 params
    # Called with the params' shardings and the frozen params only when no checkpoint is resumed;
    # returns the params placed with them (a checkpoint streamed onto the devices) or on the
    # host (placed here).
    init_params: Callable[[Any, Params], Params]
    flops_per_token: float  # forward + backward FLOPs per trained token, for MFU
    abstract_frozen: Params = field(default_factory=dict)  # ShapeDtypeStructs of the frozen params, in their dtype
    load_frozen: Callable[[Any], Params] = lambda shardings: {}  # their shardings -> the frozen params, placed
    # What every checkpoint records of the model besides its params (a LoRA run's base and
    # adapters); a checkpoint that records something else is refused on resume.
    record: dict[str, Any] = field(default_factory=dict)


def train(
    config: RunConfig,
    model: Model,
    train_blocks: PackedBlocks,
    eval_blocks: PackedBlocks,
    checkpoint_dir: str | Path,
    trackers: list[Tracker],
    *,
    mesh: jax.sharding.Mesh | None = None,
    async_checkpoints: bool = True,
) -> TrainResult:
    """Train to ``config.train.steps``, resuming from ``checkpoint_dir`` when it has checkpoints."""
    tc = config.train
    steps = CompiledSteps.build(config, model, mesh or sharding.make_mesh(config.mesh), train_blocks.block_size)
    checkpoints = Checkpoints(checkpoint_dir, keep=tc.keep_checkpoints, async_save=async_checkpoints)
    tracker = CompositeTracker(trackers)
    step, state, frozen, data_state = _resume_or_init(checkpoints, steps, model, tc.seed, tracker.message)
    # Each step consumed one global batch, so the checkpoint's is examples_seen / step (not
    # whole only for a run resumed on another device count before this was kept: left as is).
    if data_state is not None and data_state["examples_seen"] % step == 0:
        steps = steps.keeping_global_batch(data_state["examples_seen"] // step, tc, tracker.message)

    process = {"process_index": jax.process_index(), "process_count": jax.process_count()}
    batches = TrainBatches(train_blocks, steps.global_batch, seed=tc.seed, state=data_state, **process)
    evaluation = EvalHook(
        lambda params, batch: steps.eval_fn(params, batch, frozen),
        EvalBatches(eval_blocks, steps.eval_rows, **process),
        steps.eval_sharding,
    )
    peak = total_peak_flops(list(steps.mesh.devices.flat), config.model.dtype, tc.peak_flops)
    stop = StopRequest(multiprocess=jax.process_count() > 1)
    hooks = StepHooks(tc, stop, checkpoints, [
        ThroughputHook(steps.global_batch * train_blocks.block_size, model.flops_per_token, peak),
        evaluation,
        LogHook(tracker),
        CheckpointHook(checkpoints, config, tracker.message, model.record),
    ])

    tracker.start(step, tc.steps)
    if step >= tc.steps:
        tracker.message(f"the run is complete at step {step} (train.steps {tc.steps}); raise train.steps to train further")
    prefetcher = Prefetcher(batches, steps.put_train_batch, PREFETCH)
    window = DispatchWindow()  # the loop runs at most a few steps ahead of the devices (jaxrap.dispatch)
    try:
        with stop:
            while step < tc.steps:
                batch, data_state = prefetcher.next()
                state, metrics = steps.train_fn(state, batch, frozen)
                window.admit(metrics["loss"])
                step += 1
                info = hooks.after_step(step, state, metrics, data_state)
                if info.stop is not None:
                    return TrainResult(step, info.stop, evaluation.last_loss)
        return TrainResult(step, None, evaluation.last_loss)
    finally:
        prefetcher.close()
        checkpoints.wait()
        checkpoints.close()
        tracker.finish()


@dataclass(frozen=True)
class CompiledSteps:
    """The mesh, the state's and batches' shardings, and the jitted train and eval steps."""

    mesh: jax.sharding.Mesh
    global_batch: int  # rows per optimizer update, over every device and micro-batch
    eval_rows: int  # rows per evaluation batch, over every device
    train_shape: tuple[int, int, int]  # (A, G / A, T) of a train batch
    abstract_state: TrainState
    state_shardings: Any
    frozen_shardings: Any  # of the model's frozen params ({} when it has none)
    train_sharding: jax.sharding.NamedSharding  # (A, B, T)
    eval_sharding: jax.sharding.NamedSharding  # (B, T)
    train_fn: Callable[[TrainState, Batch, Params], tuple[TrainState, dict[str, jax.Array]]]  # (state, batch, frozen)
    eval_fn: Callable[[Params, Batch, Params], jax.Array]  # (params, batch, frozen)
    init_state: Callable[[Params], TrainState]  # placed params -> a fresh train state, sharded

    @classmethod
    def build(cls, config: RunConfig, model: Model, mesh: jax.sharding.Mesh, block_size: int) -> CompiledSteps:
        tc = config.train
        accum = tc.grad_accum_steps
        global_batch = tc.per_device_batch_size * mesh.size * accum
        optimizer, schedule = make_optimizer(config.optim, tc.steps)
        abstract_state = jax.eval_shape(lambda p: init_state(p, optimizer, tc.seed), model.abstract_params)
        state_shardings = sharding.state_shardings(mesh, abstract_state)
        frozen_shardings = sharding.state_shardings(mesh, model.abstract_frozen)
        replicated = sharding.replicated(mesh)
        train_sharding = sharding.batch_sharding(mesh, leading_axes=1)  # (A, B, T)
        eval_sharding = sharding.batch_sharding(mesh)  # (B, T)
        return cls(
            mesh=mesh,
            global_batch=global_batch,
            eval_rows=(tc.eval_batch_size or tc.per_device_batch_size) * mesh.size,
            train_shape=(accum, global_batch // accum, block_size),
            abstract_state=abstract_state,
            state_shardings=state_shardings,
            frozen_shardings=frozen_shardings,
            train_sharding=train_sharding,
            eval_sharding=eval_sharding,
            train_fn=jit_train_step(
                model.forward, optimizer, schedule, state_shardings, train_sharding, replicated, frozen_shardings
            ),
            eval_fn=jit_eval_step(model.forward, state_shardings["params"], eval_sharding, replicated, frozen_shardings),
            init_state=jax.jit(lambda p: init_state(p, optimizer, tc.seed), out_shardings=state_shardings),
        )

    def keeping_global_batch(self, global_batch: int, train: TrainConfig, say: Callable[[str], None]) -> CompiledSteps:
        """These steps with a resumed run's global batch (``global_batch``), on this mesh.

        Global batch = per-device batch x devices x accumulation steps: resumed on another
        number of devices, the config's values would change it, and with it the updates and
        the data order. The per-device batch stays at most the config's (it is what fits a
        device's memory) and the accumulation steps make up the rest; a global batch the
        devices cannot split is refused.
        """
        if global_batch == self.global_batch:
            return self
        devices, block_size = self.mesh.size, self.train_shape[2]
        layout = batch_layout(global_batch, devices, train.per_device_batch_size)
        if layout is None:
            fits = ", ".join(str(n) for n in range(1, global_batch + 1) if global_batch % n == 0)
            raise JaxrapError(
                f"the checkpoint was trained with a global batch of {global_batch} sequences, which {devices} devices"
                f" cannot split; resume on a number of devices that divides it ({fits}), or start a new run directory"
            )
        per_device, accum = layout
        say(
            f"resuming on {devices} devices: the global batch stays {global_batch} sequences as {per_device} per device"
            f" x {devices} devices x {accum} accumulation steps (train.per_device_batch_size {train.per_device_batch_size}"
            f" x train.grad_accum_steps {train.grad_accum_steps} would make it {self.global_batch} here)"
        )
        return dataclasses.replace(self, global_batch=global_batch, train_shape=(accum, global_batch // accum, block_size))

    def put_train_batch(self, local: dict[str, np.ndarray]) -> Batch:
        """This process's (G/P, T) rows as (A, G/(P*A), T) micro-batches of the global (A, G/A, T)."""
        accum = self.train_shape[0]
        local = {name: array.reshape(accum, -1, array.shape[-1]) for name, array in local.items()}
        return sharding.put_batch(local, self.train_sharding, self.train_shape)


def batch_layout(global_batch: int, devices: int, max_per_device: int) -> tuple[int, int] | None:
    """(per-device batch, accumulation steps) making ``global_batch`` on ``devices``: the largest
    per-device batch up to ``max_per_device``, so the fewest micro-batches; None when the
    devices cannot split it."""
    if global_batch % devices:
        return None
    rows = global_batch // devices  # per device, over all micro-batches
    per_device = max(size for size in range(1, min(max_per_device, rows) + 1) if rows % size == 0)
    return per_device, rows // per_device


def _resume_or_init(
    checkpoints: Checkpoints, steps: CompiledSteps, model: Model, seed: int, say: Callable[[str], None]
) -> tuple[int, TrainState, Params, dict[str, Any] | None]:
    """(step, state, frozen params, data position) of the newest readable checkpoint, or a
    fresh start. A checkpoint of another model (``Model.record``) is refused before the frozen
    params are read."""
    resumed = checkpoints.restore_newest_valid(
        lambda step: checkpoints.restore(step, abstract_like(steps.abstract_state, steps.state_shardings)), warn=say
    )
    if resumed is not None:
        step, (state, meta) = resumed
        check_record(meta.get("model", {}), model.record, f"checkpoint {step} in {checkpoints.directory}")
        frozen = model.load_frozen(steps.frozen_shardings)
        say(f"resumed from checkpoint {step} in {checkpoints.directory}")
        return step, state, frozen, meta["data"]
    shardings = steps.state_shardings["params"]
    frozen = model.load_frozen(steps.frozen_shardings)
    return 0, steps.init_state(sharding.place(model.init_params(shardings, frozen), shardings)), frozen, None


def check_record(saved: dict[str, Any], expected: dict[str, Any], source: str) -> None:
    """Refuse, in one line naming what differs, a checkpoint that records another model."""
    saved_flat, expected_flat = flatten(saved), flatten(expected)
    changed = [
        f"{key} ({saved_flat.get(key)!r} -> {expected_flat.get(key)!r})"
        for key in sorted(set(saved_flat) | set(expected_flat))
        if saved_flat.get(key) != expected_flat.get(key)
    ]
    if changed:
        raise JaxrapError(
            f"{source} was trained on another model: {'; '.join(changed)}; resume with the model it was trained on,"
            " or pick a new --run-dir"
        )
