import json
import math

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import canonical
from audit.canonical import MAX_SAFE_INTEGER, CanonicalizationError, canonicalize, format_number

floats = st.floats(allow_nan=False, allow_infinity=False)
magnitudes = st.builds(
    lambda mantissa, exponent: mantissa * 10.0**exponent,
    st.floats(min_value=-10, max_value=10, allow_nan=False),
    st.integers(min_value=-320, max_value=300),
).filter(math.isfinite)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | floats
    | magnitudes
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(), children, max_size=6),
    max_leaves=40,
)


@settings(max_examples=1500)
@given(json_values)
def test_matches_rfc8785_package_on_any_json_value(value):
    assert canonicalize(value) == rfc8785.dumps(value)


@settings(max_examples=800)
@given(json_values)
def test_without_orjson_the_standard_library_path_matches_rfc8785_too(value):
    original = canonical._fast_encode
    canonical._fast_encode = canonical._stdlib_encode
    try:
        assert canonicalize(value) == rfc8785.dumps(value)
    finally:
        canonical._fast_encode = original


@settings(max_examples=500)
@given(st.dictionaries(st.text(alphabet=st.characters(min_codepoint=0xE000)), st.integers(0, 9), max_size=8))
def test_sorts_keys_by_utf16_code_units_like_rfc8785(value):
    assert canonicalize(value) == rfc8785.dumps(value)


@settings(max_examples=2000)
@given(floats | magnitudes)
def test_numbers_print_as_ecmascript_does(number):
    assert format_number(number).encode() == rfc8785.dumps(number)


def test_rfc8785_section_3_2_3_example():
    source = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonicalize(json.loads(source)) == expected.encode()


def test_rfc8785_sorting_example_puts_astral_key_before_fb33():
    keys = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    encoded = canonicalize(dict.fromkeys(keys, 0)).decode()
    order = [json.loads("{" + member + "}") for member in encoded[1:-1].split(",")]
    assert [next(iter(m)) for m in order] == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


@pytest.mark.parametrize(
    ("value", "path", "problem"),
    [
        ({"a": float("nan")}, "$.a", "not a finite number"),
        ({"a": [1, float("inf")]}, "$.a[1]", "not a finite number"),
        ({"a": {"b": -float("inf")}}, "$.a.b", "not a finite number"),
        ({"big": 2**53}, "$.big", "outside ±(2^53−1)"),
        ({"small": -(2**53)}, "$.small", "outside ±(2^53−1)"),
        ({"x": {1: "one"}}, "$.x", "keys must be strings"),
        ({"x": {None: "none"}}, "$.x", "keys must be strings"),
        ({"when": object()}, "$.when", "not a JSON type"),
        ({"bytes": b"abc"}, "$.bytes", "not a JSON type"),
        ({"s": "\ud800"}, "$", "lone surrogate"),
    ],
)
def test_refuses_what_jcs_cannot_represent_and_says_where(value, path, problem):
    with pytest.raises(CanonicalizationError) as caught:
        canonicalize(value)
    assert caught.value.path == path
    assert problem in caught.value.problem


def test_accepts_the_limits_of_the_safe_integer_range():
    assert canonicalize([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]) == b"[9007199254740991,-9007199254740991]"


@settings(max_examples=1500)
@given(json_values)
def test_is_canonical_accepts_exactly_the_rfc8785_bytes(value):
    canonical_bytes = rfc8785.dumps(value)
    parsed = json.loads(canonical_bytes)
    assert canonical.is_canonical(canonical_bytes, parsed)
    spaced = json.dumps(parsed, ensure_ascii=False, sort_keys=True).encode()
    if spaced != canonical_bytes:
        assert not canonical.is_canonical(spaced, json.loads(spaced))
    python_style = json.dumps(parsed, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    if python_style != canonical_bytes:
        assert not canonical.is_canonical(python_style, json.loads(python_style))


@pytest.mark.parametrize(
    "text",
    [
        b'{"a":100.0}',
        b'{"a":1e16}',
        b'{"a":4.8e-6}',
        b'{"b":1,"a":2}',
        b'{"a":9007199254740993}',
        b'{"a":"\\u0041"}',
        b'{"a":1E-7}',
        b'{ "a":1}',
    ],
)
def test_is_canonical_rejects_non_canonical_forms(text):
    assert not canonical.is_canonical(text, json.loads(text))
