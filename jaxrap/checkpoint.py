"""Checkpoints with Orbax: async, atomic, the latest N plus the best by validation loss.

The checkpoint format, below both the training loop (which saves and resumes) and loading a
trained model (``jaxrap.rundir.load_run_model``, which reads params only), so that neither
side imports the other.

``RUN/checkpoints/<step>/`` holds three items:

- ``params``: the model's trainable float32 parameters (what generate / export / eval read):
  all of them, or a LoRA run's adapters and new embedding rows (its base is not saved);
- ``train_state``: ``step``, ``opt_state`` and ``rng`` (what resuming needs besides params);
- ``meta``: JSON with ``step``, the data iterator position (``data``), the resolved run config
  (``config``), what the run trains beyond its params (``model``: a LoRA run's base, by
  ``model.init`` and fingerprint, and its adapters' spec), ``eval_loss`` when the step
  evaluated, and ``checksums``: one per array of ``params`` and of ``train_state``, and the
  ``algorithm`` that made them (``jaxrap.array_checksums``), compared when they are restored;

plus Orbax's ``metrics`` (``eval_loss``) that ranks checkpoints. Saves are asynchronous: the
arrays are copied off the devices while ``save`` blocks, written by a background thread, and
the step directory appears under its final name only once complete (Orbax writes to
``<step>.orbax-checkpoint-tmp-*`` and renames), so a run killed mid-save leaves no partial
checkpoint that looks whole. A finalized checkpoint that still fails to restore (a file
deleted or truncated afterwards, or arrays that decode to values other than those saved:
``DamagedCheckpoint``) is skipped with a warning in favour of the one before; a
training run (a writable ``Checkpoints``) also moves it aside to
``<step>.unreadable-<time>`` (outside Orbax's step names, kept for inspection), so that saving
that step again later does not collide with it. Loading a model (read-only) moves nothing.

Kept: the ``keep`` latest, and the one with the lowest ``eval_loss`` (checkpoints saved
without an evaluation only count as latest).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from jaxrap import array_checksums
from jaxrap.errors import JaxrapError

ITEMS = ("params", "train_state", "meta")
EVAL_LOSS = "eval_loss"
CHECKSUMS = "checksums"
_TRAIN_STATE_KEYS = ("step", "opt_state", "rng")


def _eval_loss(metrics: dict[str, Any]) -> float:
    return metrics[EVAL_LOSS]


class _QuietExpectedOrbaxWarnings(logging.Filter):
    """Orbax warns about what this module does on purpose: saves without metrics (steps that
    did not evaluate) once best_fn is set, and read-only managers (loading a run)."""

    EXPECTED = ("Requested `tracked_metric`", "CheckpointManagerOptions.read_only=True", "Given directory is read only")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.EXPECTED)


logging.getLogger("absl").addFilter(_QuietExpectedOrbaxWarnings())


class Checkpoints:
    """The checkpoints of one run directory."""

    def __init__(self, directory: str | Path, *, keep: int = 3, async_save: bool = True, read_only: bool = False):
        self.directory = Path(directory).absolute()
        self.read_only = read_only
        options = ocp.CheckpointManagerOptions(
            enable_async_checkpointing=async_save,
            best_fn=_eval_loss,  # makes Orbax record each save's metrics, and best_step() work
            best_mode="min",
            preservation_policy=policies.AnyPreservationPolicy([
                policies.LatestN(n=keep),
                # BestN sorts by the metric (reverse=True: descending) and keeps the last n.
                policies.BestN(get_metric_fn=_eval_loss, reverse=True, n=1, keep_checkpoints_without_metrics=False),
            ]),
            create=not read_only,
            read_only=read_only,
            cleanup_tmp_directories=not read_only,  # partial saves of a killed run
        )
        self.manager = ocp.CheckpointManager(self.directory, item_names=ITEMS, options=options)

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def best_step(self) -> int | None:
        """The step with the lowest validation loss among kept checkpoints (None: none evaluated)."""
        if not any(self.manager.metrics(step) for step in self.steps()):
            return None
        return self.manager.best_step()

    def save(self, step: int, state: dict[str, Any], meta: dict[str, Any], eval_loss: float | None = None) -> None:
        """Start saving ``state`` (params, opt_state, step, rng) and ``meta`` as ``step``."""
        items = {"params": state["params"], "train_state": {key: state[key] for key in _TRAIN_STATE_KEYS}}
        sums = {name: array_checksums.checksums(tree) for name, tree in items.items()}
        self.manager.save(
            step,
            args=ocp.args.Composite(
                params=ocp.args.StandardSave(items["params"]),
                train_state=ocp.args.StandardSave(items["train_state"]),
                meta=ocp.args.JsonSave(
                    {**meta, "step": step, EVAL_LOSS: eval_loss, CHECKSUMS: {"algorithm": array_checksums.ALGORITHM, **sums}}
                ),
            ),
            metrics={EVAL_LOSS: eval_loss} if eval_loss is not None else None,
            force=True,
        )

    def restore(self, step: int, abstract_state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(state, meta) of ``step``; ``abstract_state`` gives shapes, dtypes and shardings."""
        restored = self.manager.restore(
            step,
            args=ocp.args.Composite(
                params=ocp.args.StandardRestore(abstract_state["params"]),
                train_state=ocp.args.StandardRestore({key: abstract_state[key] for key in _TRAIN_STATE_KEYS}),
                meta=ocp.args.JsonRestore(),
            ),
        )
        _verify_checksums(restored.meta, params=restored.params, train_state=restored.train_state)
        return {"params": restored.params, **restored.train_state}, restored.meta

    def restore_meta(self, step: int) -> dict[str, Any]:
        """The ``meta`` item of ``step`` alone (no array is read)."""
        return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta

    def restore_params(self, step: int, abstract_params: Any) -> Any:
        """The params of ``step``, without reading the optimizer state."""
        restored = self.manager.restore(
            step, args=ocp.args.Composite(params=ocp.args.StandardRestore(abstract_params), meta=ocp.args.JsonRestore())
        )
        _verify_checksums(restored.meta, params=restored.params)
        return restored.params

    def restore_newest_valid(
        self,
        restore: Callable[[int], Any],
        warn: Callable[[str], None],
        steps: list[int] | None = None,
    ) -> tuple[int, Any] | None:
        """``(step, restore(step))`` for the newest step that restores; None when there are none.

        A step that fails (deleted or truncated files) is reported through ``warn`` and the one
        before it is tried; once one restores, a writable manager moves the failed ones aside.
        """
        steps = self.steps() if steps is None else steps
        failures, restored = [], None
        _drop_closed_loop_callbacks()  # before the first read: they come while the failure propagates
        for step in sorted(steps, reverse=True):
            try:
                restored = step, restore(step)
                break
            except Exception as error:  # noqa: BLE001 - Orbax/TensorStore raise many types for damaged files
                reason = _first_sentence(f"{type(error).__name__}: {error}")
                failures.append(step)
                warn(f"warning: checkpoint {step} in {self.directory} is unreadable ({reason}); trying the one before")
        if not self.read_only and jax.process_count() > 1:
            _same_step_everywhere(None if restored is None else restored[0])
        if restored is None and failures:  # nothing moved: a rerun must not start afresh by itself
            raise JaxrapError(
                f"{self.directory}: no readable checkpoint (tried steps {', '.join(map(str, failures))});"
                " delete the damaged step directories, or start a new run directory"
            )
        if failures and not self.read_only:
            self._move_aside(failures, warn)
        return restored

    def _move_aside(self, steps: list[int], warn: Callable[[str], None]) -> None:
        """Rename unreadable step directories out of Orbax's step names (process 0, once every
        process is done reading them; they failed the same steps, see _same_step_everywhere),
        so that training can save those steps again."""
        multiprocess = jax.process_count() > 1
        if multiprocess:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("jaxrap-unreadable-checkpoints-read")
        if jax.process_index() == 0:
            stamp = time.strftime("%Y%m%dT%H%M%S")
            for step in steps:
                source = self.directory / str(step)
                target = source.with_name(f"{step}.unreadable-{stamp}")
                source.rename(target)
                warn(f"warning: moved unreadable checkpoint {step} to {target} (kept for inspection; delete it when done)")
        if multiprocess:
            multihost_utils.sync_global_devices("jaxrap-unreadable-checkpoints-moved")
        self.manager.reload()

    def wait(self) -> None:
        """Block until background saves are written (and old checkpoints pruned)."""
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()

    def __enter__(self) -> Checkpoints:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class DamagedCheckpoint(Exception):
    """A checkpoint's arrays were read, but differ from the checksums saved with them."""


def _verify_checksums(meta: dict[str, Any], **items: Any) -> None:
    """Raise ``DamagedCheckpoint`` naming the arrays of ``items`` whose checksums differ from
    those ``meta`` recorded (checkpoints saved before checksums were recorded, or with another
    algorithm, pass)."""
    saved = meta.get(CHECKSUMS, {})
    if saved.get("algorithm") != array_checksums.ALGORITHM:
        return
    damaged = [
        f"{name}{path}" for name, tree in items.items() if name in saved for path in array_checksums.mismatches(tree, saved[name])
    ]
    if damaged:
        named = ", ".join(damaged[:3]) + (f" and {len(damaged) - 3} more" if len(damaged) > 3 else "")
        raise DamagedCheckpoint(f"{named}: values differ from the checksums saved with them")


def _same_step_everywhere(step: int | None) -> None:
    """Every process of a job restored the same step (None: none), or all raise: a checkpoint
    only some processes can read would have them train from different states."""
    import numpy as np
    from jax.experimental import multihost_utils

    steps = multihost_utils.process_allgather(np.int32(-1 if step is None else step)).tolist()
    if len(set(steps)) > 1:
        named = ", ".join(f"process {index}: {'none' if value < 0 else value}" for index, value in enumerate(steps))
        raise JaxrapError(
            f"the processes resumed different checkpoints ({named}): some cannot read a checkpoint the others can;"
            " check that every host sees the same run directory"
        )


def _drop_closed_loop_callbacks() -> None:
    """Silence what a failed restore leaves behind, after the failure was already reported. Orbax
    runs each restore in an asyncio event loop that it closes as soon as one read fails, while
    the other reads are still under way; Python then reports, dozens of times with a TensorStore
    spec each (issue 17: 2,272 lines of stderr from one truncated data file):

    - through ``sys.unraisablehook``, each read TensorStore completes in its own threads, whose
      callback lands on the closed loop: "RuntimeError: Event loop is closed" (``_check_closed``);
    - through ``sys.unraisablehook``, each of Orbax's read coroutines left suspended, closed when
      collected: the ``GeneratorExit`` that closing throws in is caught by its ``except
      BaseException`` and re-raised as "Encountered error while reading array index"
      (``_read_array_index_and_device_put``);
    - through asyncio's logger, each read task, gathering future or TensorStore future whose
      error nobody awaited any more: "Task exception was never retrieved" and the like;
    - as a RuntimeWarning, each of Orbax's read coroutines that was created but never started:
      "coroutine '_read_array_index_and_device_put' was never awaited" (or its metadata's
      ``Store._get_array_metadatas``).

    Installed before each restore that may fail (the hooks once, the warning filter every time:
    whoever resets the warning filters, as pytest does per test, leaves the hooks in place), they
    drop exactly those and pass anything else on."""
    # Re-adding an identical filter moves it to the front instead of adding another.
    warnings.filterwarnings("ignore", message=_ORBAX_READ_NEVER_AWAITED, category=RuntimeWarning)
    previous = sys.unraisablehook
    if getattr(previous, "drops_closed_loop_callbacks", False):
        return

    def hook(unraisable: Any) -> None:
        if not (_is_closed_loop_callback(unraisable) or _is_closed_orbax_read(unraisable)):
            previous(unraisable)

    hook.drops_closed_loop_callbacks = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook
    logging.getLogger("asyncio").addFilter(_AbandonedReadErrors())


# The coroutines of orbax/checkpoint/_src/serialization/serialization.py that read arrays, and
# the one of _src/metadata/array_metadata_store.py that reads their metadata.
_ORBAX_READ_NEVER_AWAITED = (
    r"coroutine '(_read_shard|_read_array_index_and_device_put|_read_and_create_array|async_deserialize"
    r"|Store\._get_array_metadatas)' was never awaited"
)


# TensorStore's read errors, and Orbax's wrapper of them.
_READ_ERROR = re.compile(r"^([A-Z_]+: Error (reading|opening) |Encountered error while reading array index)")


class _AbandonedReadErrors(logging.Filter):
    """asyncio's "<kind> exception was never retrieved" for a read of a restore that had already
    given up on the checkpoint."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        unretrieved = re.match(r"^\w+ exception was never retrieved", record.getMessage()) is not None
        return not (unretrieved and _is_read_error(error))


def _is_read_error(error: BaseException | None) -> bool:
    """An error of reading a checkpoint's arrays, or one caused by it: TensorStore's
    ("OUT_OF_RANGE: Error reading ...", "NOT_FOUND: Error opening ...") or Orbax's wrapper of it
    ("Encountered error while reading array index ...")."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if _READ_ERROR.match(str(error)):
            return True
        error = error.__cause__ or error.__context__
    return False


def _is_closed_loop_callback(unraisable: Any) -> bool:
    error, trace = unraisable.exc_value, unraisable.exc_traceback
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    return (
        isinstance(error, RuntimeError)
        and str(error) == "Event loop is closed"
        and trace is not None
        and trace.tb_frame.f_code.co_name == "_check_closed"
    )


def _is_closed_orbax_read(unraisable: Any) -> bool:
    """An Orbax coroutine, closed while suspended, that turned the GeneratorExit into an error."""
    coroutine, error = unraisable.object, unraisable.exc_value
    code = getattr(coroutine, "cr_code", None)
    return (
        code is not None
        and f"{os.sep}orbax{os.sep}checkpoint{os.sep}" in code.co_filename
        and isinstance(error, Exception)
        and isinstance(error.__context__, GeneratorExit)
    )


def abstract_like(tree: Any, shardings: Any) -> Any:
    """ShapeDtypeStructs of ``tree`` carrying ``shardings``: a restore target."""
    return jax.tree.map(lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding), tree, shardings)


def _first_sentence(message: str) -> str:
    """A restore error in one readable line: TensorStore appends its spec's repr (a bound
    method's name and a JSON dump) after "See full TensorStore details"."""
    return message.splitlines()[0].split(" See full TensorStore details")[0][:300]
