"""jaxrap.dispatch: the host never runs more than MAX_IN_FLIGHT programs ahead of the devices.

The deadlock this prevents is tested end to end in tests/test_cli_train.py (4 devices, the real
corpus, three runs); here, the window's own rule."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from jaxrap import dispatch
from jaxrap.dispatch import DispatchWindow


def test_admitting_past_the_limit_waits_for_the_oldest_first(monkeypatch):
    waited = []
    monkeypatch.setattr(dispatch.jax, "block_until_ready", waited.append)
    window = DispatchWindow(limit=2)
    for result in ("a", "b"):
        window.admit(result)
    assert waited == []
    window.admit("c")
    assert waited == ["a"]
    window.admit("d")
    assert waited == ["a", "b"]


def test_the_shipped_limit_is_far_below_xla_cpus_32_programs_per_device():
    assert 1 <= dispatch.MAX_IN_FLIGHT <= 8


def test_a_window_waits_on_real_arrays():
    window = DispatchWindow(limit=1)
    step = jax.jit(lambda x: x + 1)
    x = jnp.zeros(4)
    for _ in range(5):
        x = step(x)
        window.admit(x)
    assert float(x[0]) == 5.0


def test_a_window_holds_at_least_one_program():
    with pytest.raises(ValueError, match="at least one"):
        DispatchWindow(limit=0)
