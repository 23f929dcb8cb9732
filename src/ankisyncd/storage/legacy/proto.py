"""A small table-driven proto3 codec for the blobs schema 18 stores.

Only the wire types those blobs use: varint (bool, enum, int32, int64, uint32), 32-bit (float)
and length-delimited (string, bytes, messages, packed repeated scalars). Unknown fields are
kept and written back, so re-encoding a blob loses nothing a newer client put there.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
_VARINT_KINDS = frozenset({"bool", "enum", "int32", "int64", "uint32"})
UNKNOWN = "_unknown"


class DecodeError(ValueError):
    """The bytes are not a valid message of the expected type."""


@dataclass(frozen=True)
class Field:
    number: int
    name: str
    kind: str  # bool enum int32 int64 uint32 float string bytes message
    repeated: bool = False
    optional: bool = False  # proto3 ``optional``: absent (None) differs from zero
    message: Message | None = None


@dataclass(frozen=True)
class Message:
    name: str
    fields: tuple[Field, ...]
    by_number: dict[int, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_number", {f.number: f for f in self.fields})

    def default(self) -> dict[str, Any]:
        return {f.name: _default(f) for f in self.fields}


def _default(f: Field) -> Any:
    if f.repeated:
        return []
    if f.optional or f.kind == "message":
        return None
    return {"bool": False, "float": 0.0, "string": "", "bytes": b""}.get(f.kind, 0)


# --- varints ------------------------------------------------------------------------------


def _write_varint(out: bytearray, value: int) -> None:
    value &= 0xFFFF_FFFF_FFFF_FFFF  # negative int32/int64: ten-byte two's complement
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise DecodeError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & 0xFFFF_FFFF_FFFF_FFFF, pos
        shift += 7


def _from_varint(kind: str, raw: int) -> Any:
    if kind == "bool":
        return raw != 0
    if kind == "uint32":
        return raw & 0xFFFF_FFFF
    if kind == "int64":
        return raw - (1 << 64) if raw >> 63 else raw
    low = raw & 0xFFFF_FFFF  # int32 and enum
    return low - (1 << 32) if low >> 31 else low


# --- decoding -----------------------------------------------------------------------------


def decode(message: Message, data: bytes) -> dict[str, Any]:
    """Decode ``data`` into a dict of field name -> value (defaults filled in)."""
    values = message.default()
    unknown = bytearray()
    pos = 0
    while pos < len(data):
        start = pos
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise DecodeError("field number 0")
        if wire == VARINT:
            raw, pos = _read_varint(data, pos)
            payload: Any = raw
        elif wire == FIXED32:
            if pos + 4 > len(data):
                raise DecodeError("truncated fixed32")
            payload, pos = data[pos : pos + 4], pos + 4
        elif wire == FIXED64:
            if pos + 8 > len(data):
                raise DecodeError("truncated fixed64")
            payload, pos = data[pos : pos + 8], pos + 8
        elif wire == LENGTH:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise DecodeError("truncated length-delimited field")
            payload, pos = data[pos : pos + length], pos + length
        else:
            raise DecodeError(f"unsupported wire type {wire}")
        f = message.by_number.get(number)
        if f is None:
            unknown += data[start:pos]
            continue
        _store(values, f, wire, payload)
    if unknown:
        values[UNKNOWN] = bytes(unknown)
    return values


def _store(values: dict[str, Any], f: Field, wire: int, payload: Any) -> None:
    if f.kind in _VARINT_KINDS:
        if wire == VARINT:
            items = [_from_varint(f.kind, payload)]
        elif wire == LENGTH and f.repeated:
            items, pos = [], 0
            while pos < len(payload):
                raw, pos = _read_varint(payload, pos)
                items.append(_from_varint(f.kind, raw))
        else:
            raise DecodeError(f"{f.name}: wrong wire type")
    elif f.kind == "float":
        if wire == FIXED32:
            items = [struct.unpack("<f", payload)[0]]
        elif wire == LENGTH and f.repeated and len(payload) % 4 == 0:
            items = [v for (v,) in struct.iter_unpack("<f", payload)]
        else:
            raise DecodeError(f"{f.name}: wrong wire type")
    elif wire != LENGTH:
        raise DecodeError(f"{f.name}: wrong wire type")
    elif f.kind == "string":
        try:
            items = [bytes(payload).decode("utf-8")]
        except UnicodeDecodeError as exc:
            raise DecodeError(f"{f.name}: invalid utf-8") from exc
    elif f.kind == "bytes":
        items = [bytes(payload)]
    else:
        assert f.message is not None
        items = [decode(f.message, bytes(payload))]
    if f.repeated:
        values[f.name].extend(items)
    else:
        values[f.name] = items[-1]


# --- encoding -----------------------------------------------------------------------------


def encode(message: Message, values: dict[str, Any]) -> bytes:
    """Encode a dict like the one ``decode`` returns; proto3 omits defaults of plain fields."""
    out = bytearray()
    for f in message.fields:
        value = values.get(f.name)
        if f.repeated:
            if value:
                _encode_repeated(out, f, value)
        elif value is None:
            continue
        elif f.optional or f.kind == "message" or value != _default(f):
            _encode_one(out, f, value)
    out += values.get(UNKNOWN, b"")
    return bytes(out)


def _key(out: bytearray, number: int, wire: int) -> None:
    _write_varint(out, number << 3 | wire)


def _encode_one(out: bytearray, f: Field, value: Any) -> None:
    if f.kind in _VARINT_KINDS:
        _key(out, f.number, VARINT)
        _write_varint(out, int(value))
    elif f.kind == "float":
        _key(out, f.number, FIXED32)
        out += struct.pack("<f", value)
    else:
        if f.kind == "string":
            payload = value.encode("utf-8")
        elif f.kind == "bytes":
            payload = bytes(value)
        else:
            assert f.message is not None
            payload = encode(f.message, value)
        _key(out, f.number, LENGTH)
        _write_varint(out, len(payload))
        out += payload


def _encode_repeated(out: bytearray, f: Field, items: list[Any]) -> None:
    if f.kind in _VARINT_KINDS or f.kind == "float":
        packed = bytearray()
        for item in items:
            if f.kind == "float":
                packed += struct.pack("<f", item)
            else:
                _write_varint(packed, int(item))
        _key(out, f.number, LENGTH)
        _write_varint(out, len(packed))
        out += packed
    else:
        for item in items:
            _encode_one(out, f, item)
