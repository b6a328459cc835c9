"""The training loop: plain Python around the jitted ``train_step`` and ``eval_step``.

It knows the model only as ``forward`` (see ``step``) and its initial parameters; data come
as packed blocks (``jaxrap.data.batches``). Per step the host only dispatches: the next batch is
gathered and sent to the devices by a background thread while the current step runs, and
metrics stay on the devices until a log, eval or save step reads them all at once (one host
sync per log, not per step). On those syncs the loop checks that every loss since the last one
is finite, so a NaN never reaches a checkpoint.

Resuming: when the run's checkpoint directory has checkpoints, the newest readable one is
restored (params, optimizer state, step, RNG and data position) and training continues as if
never stopped. SIGTERM (TPU preemption) and Ctrl-C finish the current step, save, and return
normally; a second Ctrl-C aborts at once.
"""

from __future__ import annotations

import math
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from jaxrap.config import RunConfig
from jaxrap.data.batches import EvalBatches, PackedBlocks, TrainBatches
from jaxrap.errors import JaxrapError
from jaxrap.model.loss import perplexity
from jaxrap.train import sharding
from jaxrap.checkpoint import Checkpoints, abstract_like
from jaxrap.train.flops import total_peak_flops
from jaxrap.train.optimizer import make_optimizer
from jaxrap.train.step import Forward, Params, init_state, jit_eval_step, jit_train_step
from jaxrap.train.trackers import Tracker

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
    """What the loop needs of a model: a forward, its shape, initial params and FLOPs."""

    forward: Forward
    abstract_params: Params  # ShapeDtypeStruct tree of the float32 params
    init_params: Callable[[], Params]  # called only when no checkpoint is resumed
    flops_per_token: float  # forward + backward FLOPs per trained token, for MFU


def train(
    config: RunConfig,
    model: Model,
    train_blocks: PackedBlocks,
    eval_blocks: PackedBlocks,
    checkpoint_dir: Any,
    trackers: list[Tracker],
    *,
    mesh: jax.sharding.Mesh | None = None,
    async_checkpoints: bool = True,
) -> TrainResult:
    """Train to ``config.train.steps``, resuming from ``checkpoint_dir`` when it has checkpoints."""
    tc = config.train
    mesh = mesh or sharding.make_mesh(config.mesh)
    accum = tc.grad_accum_steps
    global_batch = tc.per_device_batch_size * mesh.size * accum  # rows per optimizer update
    block = train_blocks.block_size
    optimizer, schedule = make_optimizer(config.optim, tc.steps)

    abstract_state = jax.eval_shape(lambda p: init_state(p, optimizer, tc.seed), model.abstract_params)
    state_shardings = sharding.state_shardings(mesh, abstract_state)
    replicated = sharding.replicated(mesh)
    train_sharding = sharding.batch_sharding(mesh, leading_axes=1)  # (A, B, T)
    eval_sharding = sharding.batch_sharding(mesh)  # (B, T)
    train_fn = jit_train_step(model.forward, optimizer, schedule, state_shardings, train_sharding, replicated)
    eval_fn = jit_eval_step(model.forward, state_shardings["params"], eval_sharding, replicated)

    checkpoints = Checkpoints(checkpoint_dir, keep=tc.keep_checkpoints, async_save=async_checkpoints)
    say = _broadcast(trackers)
    resumed = checkpoints.restore_newest_valid(
        lambda step: checkpoints.restore(step, abstract_like(abstract_state, state_shardings)), warn=say
    )
    if resumed is not None:
        step, (state, meta) = resumed
        data_state = meta["data"]
        say(f"resumed from checkpoint {step} in {checkpoints.directory}")
    else:
        step, data_state = 0, None
        params = _place(model.init_params(), state_shardings["params"])
        state = jax.jit(lambda p: init_state(p, optimizer, tc.seed), out_shardings=state_shardings)(params)

    process = {"process_index": jax.process_index(), "process_count": jax.process_count()}
    batches = TrainBatches(train_blocks, global_batch, seed=tc.seed, state=data_state, **process)
    eval_rows = (tc.eval_batch_size or tc.per_device_batch_size) * mesh.size
    eval_batches = EvalBatches(eval_blocks, eval_rows, **process)
    train_shape = (accum, global_batch // accum, block)
    peak = total_peak_flops(list(mesh.devices.flat), config.model.dtype, tc.peak_flops)

    def evaluate(params: Params) -> dict[str, float]:
        loss, _ = evaluate_loss(eval_fn, params, eval_batches, eval_sharding)
        return {"eval_loss": loss, "eval_perplexity": perplexity(loss)}

    for tracker in trackers:
        tracker.start(step, tc.steps)
    if step >= tc.steps:
        say(f"the run is complete at step {step} (train.steps {tc.steps}); raise train.steps to train further")
    stop = _StopRequest(multiprocess=jax.process_count() > 1)
    prefetcher = _Prefetcher(batches, lambda local: _put_train_batch(local, train_sharding, train_shape), PREFETCH)
    pending: list[tuple[int, dict[str, jax.Array]]] = []  # metrics of steps not read back yet
    meter = _Throughput(tokens_per_step=global_batch * block, flops_per_token=model.flops_per_token, peak_flops=peak)
    last_eval: float | None = None
    try:
        with stop:
            while step < tc.steps:
                batch, data_state = prefetcher.next()
                state, metrics = train_fn(state, batch)
                step += 1
                pending.append((step, metrics))
                meter.started(step)
                last = step == tc.steps
                do_eval = last or step % tc.eval_every == 0
                do_save = last or do_eval or step % tc.save_every == 0  # evaluated steps can be the best
                log_step = last or do_eval or step % tc.log_every == 0
                stopping = stop.requested(check_others=log_step)
                if not (log_step or do_save or stopping):
                    continue
                host_metrics = _read_finite(pending, checkpoints)
                pending.clear()
                record = meter.summarize(step, host_metrics) if log_step or stopping else None
                eval_loss = None
                if do_eval:
                    record.update(evaluate(state["params"]))
                    eval_loss = last_eval = record["eval_loss"]
                if record is not None:
                    for tracker in trackers:
                        tracker.log(step, record)
                if do_save or stopping:
                    meta = {"data": data_state, "config": config.model_dump(mode="json")}
                    checkpoints.save(step, state, meta, eval_loss=eval_loss)
                meter.reset(step)
                if stopping:
                    checkpoints.wait()
                    say(
                        f"stopped by {stop.signal_name} after step {step}; saved checkpoint {step} in"
                        f" {checkpoints.directory}; run the same command to resume"
                    )
                    return TrainResult(step, stop.signal_name, last_eval)
        return TrainResult(step, None, last_eval)
    finally:
        prefetcher.close()
        checkpoints.wait()
        checkpoints.close()
        for tracker in trackers:
            tracker.finish()


def evaluate_loss(
    eval_fn: Callable[[Params, dict[str, jax.Array]], jax.Array],
    params: Params,
    batches: EvalBatches,
    batch_sharding: jax.sharding.NamedSharding,
) -> tuple[float, int]:
    """(token-weighted mean cross-entropy, counted targets) over every batch of a split.

    The [loss sum, count] pairs add up on the devices; the host syncs once, at the end.
    """
    total = None
    for local in batches:
        batch = sharding.put_batch(local, batch_sharding, (batches.global_batch_size, batches.blocks.block_size))
        result = eval_fn(params, batch)
        total = result if total is None else total + result
    loss_sum, count = (float(x) for x in jax.device_get(total))
    return loss_sum / max(count, 1.0), int(count)


def _broadcast(trackers: list[Tracker]) -> Callable[[str], None]:
    def say(text: str) -> None:
        for tracker in trackers:
            tracker.message(text)

    return say


def _place(params: Params, shardings: Any) -> Params:
    """Host (or single-device) params onto the mesh; every process passes the same values."""
    def put(leaf, target):
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, target, lambda index: host[index])

    return jax.tree.map(put, params, shardings)


def _put_train_batch(local: dict[str, np.ndarray], train_sharding, train_shape) -> dict[str, jax.Array]:
    """This process's (G/P, T) rows as (A, G/(P*A), T) micro-batches of the global (A, G/A, T)."""
    accum = train_shape[0]
    local = {name: array.reshape(accum, -1, array.shape[-1]) for name, array in local.items()}
    return sharding.put_batch(local, train_sharding, train_shape)


def _read_finite(pending: list[tuple[int, dict[str, jax.Array]]], checkpoints: Checkpoints) -> list[dict[str, float]]:
    """Host copies of the pending steps' metrics; stops the run on the first non-finite loss."""
    host = jax.device_get([metrics for _, metrics in pending])
    for (step, _), metrics in zip(pending, host):
        loss = float(metrics["loss"])
        if not math.isfinite(loss):
            checkpoints.wait()
            latest = checkpoints.latest_step()
            kept = f"the last good checkpoint is step {latest}" if latest is not None else "no checkpoint was saved"
            raise JaxrapError(
                f"training loss is {loss} at step {step}; stopped without saving ({kept});"
                " lower optim.lr, raise optim.warmup_steps or set optim.clip_norm, then rerun to resume"
            )
    return [{name: float(value) for name, value in metrics.items()} for metrics in host]


class _Throughput:
    """Tokens/s and MFU over the steps since the last sync, excluding compile, eval and saves."""

    def __init__(self, tokens_per_step: int, flops_per_token: float, peak_flops: float):
        self.tokens_per_step = tokens_per_step
        self.flops_per_token = flops_per_token
        self.peak_flops = peak_flops
        self.since: tuple[int, float] | None = None  # (step, time) the interval starts after

    def started(self, step: int) -> None:
        # The first step of an interval returns once dispatched (after compiling, the first
        # time); timing from there leaves compilation out.
        if self.since is None:
            self.since = (step - 1, time.perf_counter())

    def reset(self, step: int) -> None:
        self.since = None

    def summarize(self, step: int, metrics: list[dict[str, float]]) -> dict[str, float]:
        record = {
            "loss": sum(m["loss"] for m in metrics) / len(metrics),  # mean over the interval
            "lr": metrics[-1]["lr"],
            "grad_norm": metrics[-1]["grad_norm"],
        }
        first, started = self.since
        seconds = time.perf_counter() - started
        if step > first and seconds > 0:
            tokens_per_s = (step - first) * self.tokens_per_step / seconds
            record["tokens_per_s"] = tokens_per_s
            record["mfu"] = tokens_per_s * self.flops_per_token / self.peak_flops
        return record


class _Prefetcher:
    """Gathers and places the next batches on a background thread: (device batch, data position)."""

    def __init__(self, batches: TrainBatches, put: Callable[[dict[str, np.ndarray]], dict[str, jax.Array]], depth: int):
        self._batches = batches
        self._put = put
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jaxrap-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._closed.is_set():
                local = next(self._batches)
                item = (self._put(local), self._batches.state())  # state after this batch
                while not self._closed.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as error:  # noqa: BLE001 - re-raised in the training thread
            self._queue.put(error)

    def next(self) -> tuple[dict[str, jax.Array], dict[str, Any]]:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)


class _StopRequest:
    """SIGTERM / SIGINT set a flag the loop reads between steps; a second Ctrl-C aborts.

    With several processes they must stop at the same step, so the flag is shared (an
    all-gather) only on log steps, where the loop syncs anyway.
    """

    def __init__(self, multiprocess: bool):
        self.multiprocess = multiprocess
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame) -> None:
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now
        self.signal_name = signal.Signals(signum).name

    def requested(self, check_others: bool) -> bool:
        if not self.multiprocess:
            return self.signal_name is not None
        if not check_others:
            return False
        from jax.experimental import multihost_utils

        flags = multihost_utils.process_allgather(np.int32(self.signal_name is not None))
        if np.any(flags) and self.signal_name is None:
            self.signal_name = "SIGTERM"  # another process was signalled
        return bool(np.any(flags))
