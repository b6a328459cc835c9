"""Joining a multi-process run: ``jax.distributed.initialize`` before any device is touched.

Each process then sees every device of the job in ``jax.devices()``, builds the same mesh, and
feeds only its own rows of each batch (``jax.make_array_from_process_local_data``).
"""

from __future__ import annotations


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
) -> None:
    """Join the job: explicitly (coordinator, count, id), or ``auto`` from the cluster's
    environment (Cloud TPU pod slices, SLURM, Open MPI). Does nothing when neither is given."""
    if coordinator is None and not auto:
        return
    import jax

    # CPU processes need an explicit collectives backend for cross-process all-reduces;
    # TPU and GPU ignore this setting.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
