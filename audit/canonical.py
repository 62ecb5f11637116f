"""RFC 8785 JSON Canonicalization Scheme (JCS), byte-identical to the `rfc8785` package.

Pure Python, no Django. The fast path validates the document in one walk and hands it to orjson
(or, without it, the standard library's C encoder), whose output equals JCS whenever every key
is in the Basic Multilingual Plane (code-point order == UTF-16 order) and every float prints the
same there and in ECMAScript (non-integral with |x| >= 1e-4). Other documents take the exact,
pure-Python path below. tests/audit/test_canonical.py holds every path to the `rfc8785` package.
"""

from __future__ import annotations

import json
import math
from json.encoder import encode_basestring  # the C escaper: same escapes as JCS
from typing import Any

_STDLIB_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _stdlib_encode(value: object) -> bytes:
    return _STDLIB_ENCODER.encode(value).encode("utf-8")


_ENCODE_ERRORS: tuple[type[Exception], ...] = (UnicodeEncodeError,)
_fast_encode = _fast_strict_encode = _stdlib_encode
try:  # orjson is 8x faster than the standard library's C encoder and gives the same bytes here
    import orjson

    def _orjson_encode(value: object) -> bytes:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)

    def _orjson_strict_encode(value: object) -> bytes:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER)

    _fast_encode, _fast_strict_encode = _orjson_encode, _orjson_strict_encode
    _ENCODE_ERRORS = (UnicodeEncodeError, orjson.JSONEncodeError)
except ImportError:  # the offline verifier needs only cryptography and rfc8785
    pass

MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalizationError(ValueError):
    """The value cannot be represented in RFC 8785 canonical JSON; `path` says where."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def canonicalize(value: object) -> bytes:
    """Return the JCS bytes of `value`, or raise CanonicalizationError and say where."""
    try:
        needs_exact_path = _walk(value)
    except _Invalid:
        _explain(value, "$")
        raise  # pragma: no cover - _explain always raises for invalid input
    try:
        if not needs_exact_path:
            encoded = _fast_encode(value)
            if encoded.isascii() or not _has_astral_key(value):
                return encoded
        return _exact(value).encode("utf-8")
    except _ENCODE_ERRORS as exc:
        raise CanonicalizationError("$", "string contains a lone surrogate") from exc


class _Invalid(Exception):
    pass


def _walk(value: Any) -> bool:
    """Validate `value`; return True when the C encoder's output would differ from JCS.

    Hot path of every append: scalars are checked inline rather than by recursion.
    """
    kind = type(value)
    if kind is dict:
        exact = False
        for key in value:
            if type(key) is not str:
                if not isinstance(key, str):
                    raise _Invalid
                exact = True
        items = value.values()
    elif kind is list or kind is tuple:
        exact = False
        items = value
    else:
        return _walk_scalar(value)
    for item in items:
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if kind is float:
            if item - item != 0.0:  # NaN or ±inf
                raise _Invalid
            if item.is_integer() or -1e-4 < item < 1e-4:
                exact = True
        elif kind is int:
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                raise _Invalid
        elif _walk(item):
            exact = True
    return exact


def _walk_scalar(value: Any) -> bool:
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return False
    if kind is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return False
        raise _Invalid
    if kind is float:
        if not math.isfinite(value):
            raise _Invalid
        return value.is_integer() or abs(value) < 1e-4
    # Subclasses (StrEnum, IntEnum, OrderedDict, ...) are valid but take the exact path.
    if isinstance(value, (str, bool)):
        return True
    if isinstance(value, int):
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return True
        raise _Invalid
    if isinstance(value, float):
        _walk_scalar(float(value))
        return True
    if isinstance(value, dict):
        _walk(dict(value))
        return True
    if isinstance(value, (list, tuple)):
        _walk(list(value))
        return True
    raise _Invalid


def is_canonical(data: bytes, value: object) -> bool:
    """Whether `data` (which parses to `value`) is exactly the RFC 8785 form of `value`."""
    try:
        return canonicalize(value) == data
    except CanonicalizationError:
        pass
    try:  # large integral floats print as digits and parse back as ints beyond ±(2^53−1)
        return canonicalize(_as_ecmascript_numbers(value)) == data
    except CanonicalizationError:
        return False


def _as_ecmascript_numbers(value: object) -> object:
    """An integral float of 2^53 or more is printed as digits and parses back as a large int; as
    in ECMAScript, read such an int as the nearest double (the comparison of bytes then tells
    whether the digits were that double's canonical form)."""
    if isinstance(value, dict):
        return {key: _as_ecmascript_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_ecmascript_numbers(item) for item in value]
    if type(value) is int and not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        try:
            return float(value)
        except OverflowError:
            return value
    return value


def _has_astral_key(value: object) -> bool:
    """True if a key lies beyond U+FFFF, where UTF-16 order differs from code-point order."""
    if isinstance(value, dict):
        return any(max(key, default="") > "\uffff" or _has_astral_key(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_astral_key(item) for item in value)
    return False


def _explain(value: object, path: str) -> None:
    """Slow twin of _walk that raises CanonicalizationError naming the first bad place."""
    if value is None or isinstance(value, (str, bool)):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalizationError(path, f"object key {key!r} is a {type(key).__name__}, keys must be strings")
            _explain(item, f"{path}.{key}")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _explain(item, f"{path}[{index}]")
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalizationError(path, f"integer {value} is outside ±(2^53−1); send it as a string")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CanonicalizationError(path, f"{value!r} is not a finite number")
        return
    raise CanonicalizationError(
        path, f"{type(value).__name__} is not a JSON type (use str, number, bool, null, list, object)"
    )


def _exact(value: Any) -> str:
    """The JCS text of an already validated value, by the RFC's rules, in pure Python."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return encode_basestring(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, dict):
        keys = sorted(value, key=_utf16_sort_key)
        members = (f"{encode_basestring(key)}:{_exact(value[key])}" for key in keys)
        return "{" + ",".join(members) + "}"
    return "[" + ",".join(_exact(item) for item in value) + "]"


def _utf16_sort_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def format_number(number: float) -> str:
    """ECMAScript Number::toString for a finite float (RFC 8785 §3.2.2.3)."""
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    mantissa, _, exponent = repr(abs(number)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    count = len(digits)
    if count <= point <= 21:
        text = digits + "0" * (point - count)
    elif 0 < point <= 21:
        text = f"{digits[:point]}.{digits[point:]}"
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        power = point - 1
        head = digits[0] if count == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{head}e{'+' if power >= 0 else '-'}{abs(power)}"
    return sign + text
