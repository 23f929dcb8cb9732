"""Reading legacy JSON values the way the official client's parser does, and writing them back."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
MISSING: Any = object()


class LegacyFormatError(ValueError):
    """A legacy object breaks a reading rule (a required key is missing or mistyped)."""


def f32(value: float) -> float:
    """Round to the nearest float32, as the blobs store floats."""
    try:
        return float(struct.unpack("<f", struct.pack("<f", value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


def short_f32(value: float) -> float:
    """The shortest decimal that reads back as the same float32 (1.3, not 1.2999999523)."""
    if not math.isfinite(value):
        return value
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        if f32(candidate) == f32(value):
            return candidate
    return value


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def in_range(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: is_int(v) and low <= v <= high


I64 = in_range(-(1 << 63), (1 << 63) - 1)
I32 = in_range(-(1 << 31), (1 << 31) - 1)
U32 = in_range(0, (1 << 32) - 1)
U16 = in_range(0, 65535)
U8 = in_range(0, 255)


def is_number(value: Any) -> bool:
    return (isinstance(value, (int, float))) and not isinstance(value, bool)


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def is_float_list(value: Any) -> bool:
    return isinstance(value, list) and all(is_number(v) for v in value)


def obj_of(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LegacyFormatError(f"{what}: expected an object")
    return value


def required(obj: dict[str, Any], key: str, check: Callable[[Any], bool]) -> Any:
    """A key that must be present and valid."""
    if key not in obj:
        raise LegacyFormatError(f"missing key {key!r}")
    value = obj[key]
    if not check(value):
        raise LegacyFormatError(f"invalid value for {key!r}: {value!r}")
    return value


def optional(obj: dict[str, Any], key: str, check: Callable[[Any], bool], default: Any) -> Any:
    """A key with a default when missing; present but invalid is an error."""
    if key not in obj:
        return default
    value = obj[key]
    if not check(value):
        raise LegacyFormatError(f"invalid value for {key!r}: {value!r}")
    return value


def lenient(obj: dict[str, Any], key: str, check: Callable[[Any], bool], default: Any) -> Any:
    """A key whose missing or invalid value silently becomes ``default``."""
    value = obj.get(key, MISSING)
    return value if value is not MISSING and check(value) else default


def lenient_required(
    obj: dict[str, Any], key: str, check: Callable[[Any], bool], default: Any
) -> Any:
    """A key that must be present, but whose invalid value silently becomes ``default``."""
    if key not in obj:
        raise LegacyFormatError(f"missing key {key!r}")
    return lenient(obj, key, check, default)


def num_or_str(value: Any) -> int:
    """An integer, or a string holding one (old clients send ids as strings)."""
    if is_int(value) and I64(value):
        return int(value)
    if isinstance(value, str):
        try:
            parsed = int(value.strip())
        except ValueError:
            pass
        else:
            if I64(parsed):
                return parsed
    raise LegacyFormatError(f"not an integer: {value!r}")


def required_id(obj: dict[str, Any], key: str) -> int:
    if key not in obj:
        raise LegacyFormatError(f"missing key {key!r}")
    return num_or_str(obj[key])


def boolish(value: Any) -> bool:
    """true/false, 0/1, or strings such as "true" and "1"."""
    if isinstance(value, bool):
        return value
    if is_int(value) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    raise LegacyFormatError(f"not a boolean: {value!r}")


def is_boolish(value: Any) -> bool:
    try:
        boolish(value)
    except LegacyFormatError:
        return False
    return True


def unknown_keys(obj: dict[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """The keys of ``obj`` this format does not model; they are kept and sent back."""
    known = set(known)
    return {k: v for k, v in obj.items() if k not in known}


def dump_other(other: dict[str, Any]) -> bytes:
    return json.dumps(other, separators=(",", ":"), ensure_ascii=False).encode() if other else b""


def load_other(raw: bytes, reserved: Iterable[str]) -> dict[str, Any]:
    """Parse an ``other`` blob and drop the keys the writer emits itself."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    reserved = set(reserved)
    return {k: v for k, v in value.items() if k not in reserved}
