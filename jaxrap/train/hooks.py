"""What the training loop does after each update, as hooks (as Levanter's trainer runs them).

The loop's body is: next batch, train step, ``StepHooks.after_step``. ``after_step`` decides
what the step does (``StepInfo``: log, evaluate, save, stop) from the config's intervals and the
stop request; when the step does anything, it reads the metrics of every step since the last
sync back from the devices at once (one host sync per log, save or stop, never one per step)
and stops the run on a non-finite loss, so a NaN never reaches a checkpoint; then it runs the
hooks in order:

- ``ThroughputHook``: loss (mean since the last log), lr, grad_norm, tokens/s and MFU into the
  step's record;
- ``EvalHook``: the validation loss and perplexity over the whole split into the record;
- ``LogHook``: the record to the tracker;
- ``CheckpointHook``: a checkpoint of the state and the data position (and, when the run
  stops, waits for it to be written and says how to resume).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import jax

from jaxrap import sharding
from jaxrap.checkpoint import Checkpoints
from jaxrap.config import RunConfig, TrainConfig
from jaxrap.data.batches import EvalBatches
from jaxrap.dispatch import DispatchWindow
from jaxrap.errors import JaxrapError
from jaxrap.model.loss import perplexity
from jaxrap.train.step import Batch, Params, TrainState
from jaxrap.train.stop import StopRequest
from jaxrap.train.trackers import Tracker


@dataclass
class StepInfo:
    """One update as the hooks see it, and what they add to it."""

    step: int  # updates done (1-based)
    state: TrainState  # after this update, on the devices
    data_state: dict[str, Any]  # the data position after this step's batch (what a checkpoint saves)
    dispatched: float  # time.perf_counter() when the step's dispatch returned
    log: bool = False  # log a record: every train.log_every steps, evaluations, the last step, a stop
    evaluate: bool = False  # every train.eval_every steps and the last one
    save: bool = False  # every train.save_every steps, evaluations, the last step, a stop
    stop: str | None = None  # the signal the run stops for after this step
    metrics: list[dict[str, float]] = field(default_factory=list)  # host metrics of the steps since the last sync
    record: dict[str, float] = field(default_factory=dict)  # what this step logs, filled by the hooks in order
    eval_loss: float | None = None  # set by EvalHook on evaluation steps


class Hook(Protocol):
    def __call__(self, info: StepInfo) -> None:
        """Act on the step (every step; most hooks only when its flags say so)."""


class StepHooks:
    """The schedule, the sync and the hooks of the loop: ``after_step`` after every update."""

    def __init__(self, train: TrainConfig, stop: StopRequest, checkpoints: Checkpoints, hooks: Sequence[Hook]):
        self.train = train
        self.stop = stop
        self.checkpoints = checkpoints
        self.hooks = list(hooks)
        self._pending: list[tuple[int, dict[str, jax.Array]]] = []  # device metrics not read back yet

    def after_step(self, step: int, state: TrainState, metrics: dict[str, jax.Array], data_state: dict[str, Any]) -> StepInfo:
        info = StepInfo(step, state, data_state, dispatched=time.perf_counter())
        self._pending.append((step, metrics))
        tc = self.train
        last = step == tc.steps
        info.evaluate = last or step % tc.eval_every == 0
        log_step = last or info.evaluate or step % tc.log_every == 0
        info.stop = self.stop.requested(check_others=log_step)
        stopping = info.stop is not None
        info.log = log_step or stopping
        info.save = last or info.evaluate or step % tc.save_every == 0 or stopping  # evaluated steps can be the best
        if info.log or info.save:
            info.metrics = self._read_finite()
        for hook in self.hooks:
            hook(info)
        return info

    def _read_finite(self) -> list[dict[str, float]]:
        """Host copies of the pending steps' metrics; stops the run at the first step whose loss,
        gradient norm or new state is not finite (``train_step``'s ``finite``), before any hook
        can save that state."""
        host = jax.device_get([metrics for _, metrics in self._pending])
        for (step, _), metrics in zip(self._pending, host):
            if not metrics["finite"]:
                self.checkpoints.wait()
                latest = self.checkpoints.latest_step()
                kept = f"the last good checkpoint is step {latest}" if latest is not None else "no checkpoint was saved"
                what, detail = _non_finite(metrics)
                raise JaxrapError(
                    f"{what} at step {step}{detail}; stopped without saving ({kept});"
                    " lower optim.lr, raise optim.warmup_steps or set optim.clip_norm, then rerun to resume"
                )
        self._pending.clear()
        return [{name: float(value) for name, value in metrics.items()} for metrics in host]


def _non_finite(metrics: dict[str, Any]) -> tuple[str, str]:
    """(what went non-finite in a step: the first of loss, gradient norm and updated state,
    the step's finite figures)."""
    loss, grad_norm = float(metrics["loss"]), float(metrics["grad_norm"])
    if not math.isfinite(loss):
        return f"training loss is {loss}", ""
    if not math.isfinite(grad_norm):
        return f"the gradient norm is {grad_norm}", f" (loss {loss:.4f})"
    return "the update made the parameters or optimizer state non-finite", f" (loss {loss:.4f}, gradient norm {grad_norm:.4g})"


class ThroughputHook:
    """Train metrics of logged steps: the loss averaged since the last log, lr, grad_norm, and
    tokens/s and MFU over the steps since the last sync, excluding compile, eval and saves."""

    def __init__(self, tokens_per_step: int, flops_per_token: float, peak_flops: float):
        self.tokens_per_step = tokens_per_step
        self.flops_per_token = flops_per_token
        self.peak_flops = peak_flops
        self._since: tuple[int, float] | None = None  # (step, time) the interval starts after

    def __call__(self, info: StepInfo) -> None:
        # The first step of an interval returns once dispatched (after compiling, the first
        # time); timing from there leaves compilation out.
        if self._since is None:
            self._since = (info.step - 1, info.dispatched)
        if info.log:
            info.record.update(self._summarize(info.step, info.metrics))
        if info.log or info.save:  # a sync: what follows (eval, saves) is left out of the next interval
            self._since = None

    def _summarize(self, step: int, metrics: list[dict[str, float]]) -> dict[str, float]:
        assert self._since is not None  # set by this step at the latest
        record = {
            "loss": sum(m["loss"] for m in metrics) / len(metrics),  # mean over the interval
            "lr": metrics[-1]["lr"],
            "grad_norm": metrics[-1]["grad_norm"],
        }
        first, started = self._since
        seconds = time.perf_counter() - started
        if step > first and seconds > 0:
            tokens_per_s = (step - first) * self.tokens_per_step / seconds
            record["tokens_per_s"] = tokens_per_s
            record["mfu"] = tokens_per_s * self.flops_per_token / self.peak_flops
        return record


EvalFn = Callable[[Params, Batch], jax.Array]


class EvalHook:
    """On evaluation steps: the token-weighted validation loss over the whole split (and its
    perplexity) into the record; ``last_loss`` is the latest one."""

    def __init__(self, eval_fn: EvalFn, batches: EvalBatches, batch_sharding: jax.sharding.NamedSharding):
        self.eval_fn = eval_fn
        self.batches = batches
        self.batch_sharding = batch_sharding
        self.last_loss: float | None = None

    def __call__(self, info: StepInfo) -> None:
        if not info.evaluate:
            return
        loss, _ = evaluate_loss(self.eval_fn, info.state["params"], self.batches, self.batch_sharding)
        info.record.update({"eval_loss": loss, "eval_perplexity": perplexity(loss)})
        info.eval_loss = self.last_loss = loss


def evaluate_loss(
    eval_fn: EvalFn, params: Params, batches: EvalBatches, batch_sharding: jax.sharding.NamedSharding
) -> tuple[float, int]:
    """(token-weighted mean cross-entropy, counted targets) over every batch of a split.

    The [loss sum, count] pairs add up on the devices; the host reads them once, at the end, and
    dispatches at most ``dispatch.MAX_IN_FLIGHT`` batches ahead of the devices (``jaxrap.dispatch``).
    """
    total = None
    window = DispatchWindow()
    for local in batches:
        batch = sharding.put_batch(local, batch_sharding, (batches.global_batch_size, batches.blocks.block_size))
        result = eval_fn(params, batch)
        total = result if total is None else total + result
        window.admit(total)
    loss_sum, count = (float(x) for x in jax.device_get(total))
    return loss_sum / max(count, 1.0), int(count)


class LogHook:
    """On logged steps: the record to the tracker."""

    def __init__(self, tracker: Tracker):
        self.tracker = tracker

    def __call__(self, info: StepInfo) -> None:
        if info.log:
            self.tracker.log(info.step, info.record)


class CheckpointHook:
    """On save steps: a checkpoint of the state, the data position and the run config (with the
    step's validation loss, which ranks the best). On a stop, waits for it and says so."""

    def __init__(
        self, checkpoints: Checkpoints, config: RunConfig, say: Callable[[str], None], model: dict[str, Any] | None = None
    ):
        self.checkpoints = checkpoints
        self.config = config
        self.say = say
        self.model = model or {}  # the loop's Model.record: a LoRA run's base and adapters

    def __call__(self, info: StepInfo) -> None:
        if info.save:
            meta = {"data": info.data_state, "config": self.config.model_dump(mode="json"), "model": self.model}
            self.checkpoints.save(info.step, info.state, meta, eval_loss=info.eval_loss)
        if info.stop is not None:
            self.checkpoints.wait()
            self.say(
                f"stopped by {info.stop} after step {info.step}; saved checkpoint {info.step} in"
                f" {self.checkpoints.directory}; run the same command to resume"
            )
