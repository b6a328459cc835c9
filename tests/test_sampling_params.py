"""SamplingParams validation (jaxrap.sample.params), property-based: whatever a caller passes
(the CLI, the terminal UI's panel, a history file, Python), the result is a SamplingParams the
jitted sampler accepts, or a JaxrapError; never another exception."""

from __future__ import annotations

import dataclasses
import math

from hypothesis import example, given, settings, strategies as st

from jaxrap.errors import JaxrapError
from jaxrap.sample.params import SamplingParams
from jaxrap.sample.processors import SamplingArrays

FIELDS = [field.name for field in dataclasses.fields(SamplingParams)]

# Any value of any type: in-range numbers, huge and non-finite ones, the wrong types, strings,
# containers (of strings, as stop wants, or not), objects.
any_value = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 300), st.integers(), st.just(10**400), st.just(2**31),
    st.floats(-3, 3), st.floats(), st.fractions(), st.decimals(allow_nan=True), st.complex_numbers(),
    st.text(max_size=8), st.binary(max_size=4),
    st.lists(st.text(max_size=4), max_size=3), st.tuples(st.text(max_size=4)), st.frozensets(st.text(max_size=3), max_size=2),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.builds(object),
)
any_fields = st.fixed_dictionaries({}, optional={name: any_value for name in FIELDS})


@settings(max_examples=500)
@given(any_fields)
@example({"temperature": 10**400})  # math.isfinite(int) overflowed
@example({"stop": 5})  # iterating a non-iterable
@example({"top_k": 2**31})  # valid here, then np.int32 overflowed in the sampler
@example({"stop": ["\n"]})
def test_any_values_give_valid_params_or_a_jaxrap_error(fields):
    try:
        params = SamplingParams(**fields)
    except JaxrapError as error:
        assert "\n" not in str(error)  # a one-line message
        return
    assert params == SamplingParams(**dataclasses.asdict(params))  # what was accepted stays valid
    assert isinstance(params.stop, tuple) and all(isinstance(s, str) and s for s in params.stop)
    arrays = SamplingArrays.from_params(params, eos_token_id=0)  # the sampler's traced scalars
    for name in ("temperature", "top_p", "min_p", "repetition_penalty", "frequency_penalty", "presence_penalty",
                 "artist_guidance"):
        traced = float(getattr(arrays, name))
        assert math.isfinite(traced) and math.isclose(traced, getattr(params, name), rel_tol=1e-6, abs_tol=1e-30)
    for name in ("top_k", "min_new_tokens", "repetition_window", "no_repeat_ngram_size"):
        assert int(getattr(arrays, name)) == getattr(params, name)
    assert int(arrays.max_new_tokens) == params.new_tokens_cap  # None: at most 256, what fits is set later
