"""Run `jaxrap train`, and SIGKILL the process at one chosen point of one checkpoint save.

    python tests/kill_during_save.py POINT STEP train --config ... --run-dir ...

The kill comes from inside the save, at a point of Orbax's own code, so where the process
dies is exact, not a race with a timer. POINT is one of:

- ``arrays``: the 3rd array write of step STEP's save (the other arrays not yet written);
- ``before_rename``: every file written and the commit marker in place, the temporary
  ``<step>.orbax-checkpoint-tmp-*`` directory not yet renamed to ``<step>``;
- ``after_rename``: right after that rename, before Orbax's bookkeeping and the pruning of
  older checkpoints;
- ``pruning``: the 3rd file removed while Orbax deletes the checkpoint STEP's save replaces.

A test helper (like invented_lyrics.py), not part of jaxrap.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

KILL_POINTS = ("arrays", "before_rename", "after_rename", "pruning")
NTH = 3  # which array write, or which file removal, dies


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install(point: str, step: int) -> None:
    from orbax.checkpoint._src.path import async_path
    from orbax.checkpoint._src.serialization import serialization

    from jaxrap.checkpoint import Checkpoints

    saving = threading.Event()  # step STEP's save has started
    renamed = threading.Event()  # its directory is final
    count = [0]

    def nth() -> bool:
        count[0] += 1
        return count[0] == NTH

    save = Checkpoints.save

    def save_then_arm(self, save_step, *args, **kwargs):
        self.wait()  # the previous save is written: what follows belongs to this one
        if save_step == step:
            saving.set()
        return save(self, save_step, *args, **kwargs)

    Checkpoints.save = save_then_arm

    estimate = serialization.estimate_write_memory_footprint  # called before each array fragment's write

    def write_or_die(array):
        if point == "arrays" and saving.is_set() and nth():
            die()
        return estimate(array)

    serialization.estimate_write_memory_footprint = write_or_die

    rename = async_path.rename  # finalize: <step>.orbax-checkpoint-tmp-* -> <step>

    async def rename_or_die(source, target):
        final = saving.is_set() and target.name == str(step)
        if final and point == "before_rename":
            die()
        result = await rename(source, target)
        if final:
            if point == "after_rename":
                die()
            renamed.set()
        return result

    async_path.rename = rename_or_die

    unlink = os.unlink  # shutil.rmtree's file removal, as Orbax prunes old checkpoints

    def unlink_or_die(*args, **kwargs):
        if point == "pruning" and renamed.is_set() and nth():
            die()
        return unlink(*args, **kwargs)

    os.unlink = unlink_or_die


def main() -> int:
    point, step, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    if point not in KILL_POINTS:
        raise SystemExit(f"kill point must be one of {', '.join(KILL_POINTS)}, got {point!r}")
    install(point, step)
    from jaxrap.cli import main as jaxrap

    return jaxrap(argv)


if __name__ == "__main__":
    sys.exit(main())
