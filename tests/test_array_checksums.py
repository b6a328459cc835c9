"""Checksums of a pytree's arrays: the same on any sharding, changed by any single element."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxrap.array_checksums import checksums, mismatches

DTYPES = [np.float32, jnp.bfloat16, np.int32, np.uint32, np.uint8, np.bool_]


@settings(max_examples=60, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(DTYPES))
def test_a_change_to_any_one_element_changes_the_checksum(data, dtype):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=7))
    width = np.dtype(dtype).itemsize * 8
    words = data.draw(hnp.arrays(np.uint64, shape, elements=st.integers(0, 2**width - 1)))
    index = data.draw(st.integers(0, words.size - 1))
    changed = words.copy()
    changed.flat[index] = data.draw(st.integers(0, 2**width - 1).filter(lambda word: word != words.flat[index]))
    if dtype is np.bool_:
        before, after = jnp.asarray(words % 2 == 1), jnp.asarray(changed % 2 == 1)
        if bool(before.reshape(-1)[index]) == bool(after.reshape(-1)[index]):
            return  # the same bool: not a change
    else:
        unsigned = np.dtype(f"uint{width}")
        before = jax.lax.bitcast_convert_type(jnp.asarray(words.astype(unsigned)), dtype)
        after = jax.lax.bitcast_convert_type(jnp.asarray(changed.astype(unsigned)), dtype)
    assert checksums(before) != checksums(after)


def test_the_same_on_any_sharding_and_device_count():
    assert len(jax.devices()) == 4  # conftest: four virtual CPU devices
    rng = np.random.default_rng(0)
    tree = {
        "w": rng.normal(size=(8, 12)).astype(np.float32),
        "b": rng.normal(size=(8,)).astype(jnp.bfloat16),
        "step": np.int32(7),
        "rng": jax.random.key_data(jax.random.key(3)),
    }
    expected = checksums(tree)
    for axes in [("data",), ("data", "fsdp")]:
        mesh = jax.make_mesh((4,) if len(axes) == 1 else (2, 2), axes)
        for spec in [P(), P(axes[0]), P(None, axes[-1]), P(*axes)]:
            placed = {**tree, "w": jax.device_put(tree["w"], NamedSharding(mesh, spec))}
            assert checksums(placed) == expected, (axes, spec)


def test_typed_keys_read_as_their_key_data():
    key = jax.random.key(5)
    assert checksums(key) == checksums(jax.random.key_data(key))


def test_mismatches_name_the_changed_arrays():
    tree = {"a": {"kernel": np.ones((3, 4), np.float32)}, "b": np.zeros((2,), np.float32)}
    saved = checksums(tree)
    assert mismatches(tree, saved) == []
    tree["a"]["kernel"][2, 3] = np.nextafter(np.float32(1), np.float32(2))  # one bit
    assert mismatches(tree, saved) == ["['a']['kernel']"]
    assert mismatches(tree, saved[:1]) == ["['a']['kernel']", "['b']"]  # another structure: every array


@pytest.mark.parametrize("shape", [(), (1,), (0,), (5, 0)])
def test_scalars_and_empty_arrays(shape):
    assert len(checksums(np.zeros(shape, np.float32))) == 1
    assert checksums({}) == []
