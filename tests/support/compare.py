"""Comparing what two devices hold, field by field."""

from __future__ import annotations

from typing import Any

NO_CHANGES, NORMAL_SYNC, FULL_SYNC, FULL_DOWNLOAD, FULL_UPLOAD = 0, 1, 2, 3, 4


BLOB_TABLES = {
    "notetypes": [4],
    "fields": [3],
    "templates": [5],
    "decks": [4, 5],
    "deck_config": [4],
}


def _without_other(hex_blob: str) -> str:
    """Drop protobuf field 255 (``other``: legacy keys this client version does not model)."""
    data, pos, out = bytes.fromhex(hex_blob), 0, bytearray()

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while pos < len(data):
        start = pos
        key = varint()
        wire = key & 7
        if wire == 0:
            varint()
        elif wire == 5:
            pos += 4
        elif wire == 1:
            pos += 8
        else:
            length = varint()
            pos += length
        if key >> 3 != 255:
            out += data[start:pos]
    return out.hex().upper()


def content(dump: dict[str, Any], *, ignore_other: bool = False) -> dict[str, Any]:
    """Everything that must be equal on two synced devices.

    Left out is only per-device bookkeeping: the col row's mod, usn and ls, and the usn (and
    mtime) that each device stamps on the config entries, tags and graves it stores.
    """
    crt, _mod, scm, ver, _usn, _ls = dump["col"][0]
    out = {k: v for k, v in dump.items() if k not in ("col", "config", "tags", "graves")}
    out["graves"] = sorted((oid, kind) for oid, kind, _usn in dump["graves"])
    out["col"] = [crt, scm, ver]
    out["config"] = sorted((key, val) for key, _usn, _mtime, val in dump["config"])
    out["tags"] = sorted((tag, collapsed) for tag, _usn, collapsed in dump["tags"])
    if ignore_other:
        # An older client keeps the keys a newer server sends that it does not know in
        # ``other``; the official server leads to the same difference (reference run).
        for table, columns in BLOB_TABLES.items():
            out[table] = [
                [_without_other(v) if i in columns else v for i, v in enumerate(row)]
                for row in out[table]
            ]
    return out


def differences(a: dict[str, Any], b: dict[str, Any], **options: bool) -> dict[str, Any]:
    """Per table, the rows only in a and only in b (for readable assertion messages)."""
    ca, cb = content(a, **options), content(b, **options)
    out = {}
    for table in ca:
        rows_a = {repr(r) for r in ca[table]}
        rows_b = {repr(r) for r in cb[table]}
        if rows_a != rows_b:
            out[table] = {
                "only_a": sorted(rows_a - rows_b)[:3],
                "only_b": sorted(rows_b - rows_a)[:3],
            }
    return out
