"""JSON on the wire: bounded decoding, compact encoding, and the checks every message uses."""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from ankisyncd.errors import BadRequest

I32 = (-(1 << 31), (1 << 31) - 1)
I64 = (-(1 << 63), (1 << 63) - 1)

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode
# A JSON string, escapes included; removed before counting the values outside strings.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def _value_bound(body: bytes) -> int:
    """At least the number of values in ``body``: each but the first follows , : [ or {."""
    return 1 + sum(body.count(c) for c in (b",", b":", b"[", b"{"))


def count_is_within(body: bytes, max_values: int) -> bool:
    """Whether ``body`` holds at most ``max_values`` JSON values (keys count as values, and
    an empty array or object as two).

    The quick bound counts separators inside strings too; only a body it cannot clear is
    scanned exactly, without its strings (tens of ms per MiB: rare, and off the event loop).
    """
    if len(body) < max_values or _value_bound(body) <= max_values:
        return True  # the bound is at most one more than the body's bytes
    return _value_bound(_STRING.sub(b'""', body)) <= max_values


def parse_json(body: bytes, max_values: int) -> Any:
    """Decode a JSON request body of at most ``max_values`` values, or raise BadRequest.

    The count is checked before anything is built, so a body of many tiny values (``[[],[],…]``
    costs 20 bytes of memory per byte of input) is refused for the price of a scan. msgspec
    decodes straight from the UTF-8 bytes, without the text copy ``json.loads`` makes first.
    """
    if not count_is_within(body, max_values):
        raise BadRequest("invalid json: too many values")
    try:
        return _decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise BadRequest("invalid json") from exc


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def encode_json(value: Any) -> bytes:
    """Encode a JSON value compactly: exactly the bytes of compact ``json.dumps`` in UTF-8.

    msgspec (in C) writes most values ten times faster with the same bytes; where its text may
    differ, or it refuses a value, ``json.dumps`` writes it instead.
    """
    try:
        out = _encode(value)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
        return _dumps(value)  # raises as json.dumps does if the value is not JSON
    return _dumps(value) if _MAY_DIFFER.search(out) else out


# Where msgspec's text may differ from ``json.dumps``: floats (msgspec writes 1e16 and 0.00001
# where Python writes 1e+16 and 1e-05), each written with a digit before "." or "e", and NaN
# and infinities, which msgspec writes as null. A string that holds these is only a false alarm.
_MAY_DIFFER = re.compile(rb"[0-9][.eE]|null")


def encode_plain(value: Any) -> bytes:
    """Encode a value without floats (objects with string keys, lists, 64-bit integers,
    strings, booleans, None; rows read from SQLite, say): the same bytes as ``encode_json``
    (same escapes, UTF-8 as is), without looking for floats."""
    return _encode(value)


def expect_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"invalid json: {what} must be an object")
    return value


def expect_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadRequest(f"invalid json: {what} must be an array")
    return value


def expect_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"invalid json: {what!r} must be a string")
    return value


def expect_int(value: Any, bounds: tuple[int, int], what: str, *, floats: bool = False) -> int:
    """An integer within ``bounds``; with ``floats``, a float is truncated as the official
    parser does for some columns."""
    if isinstance(value, bool):
        raise BadRequest(f"invalid json: {what!r} must be an integer")
    if isinstance(value, float) and floats and value == value and abs(value) < 2**63:
        value = int(value)
    if not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        raise BadRequest(f"invalid json: {what!r} must be an integer in {bounds}")
    return value
