"""Comparing what two devices hold, field by field."""

from __future__ import annotations

from typing import Any

NO_CHANGES, NORMAL_SYNC, FULL_SYNC, FULL_DOWNLOAD, FULL_UPLOAD = 0, 1, 2, 3, 4

# Blob columns per table, by position in the driver's dump; the key columns come first.
BLOB_TABLES = {
    "notetypes": (1, [4]),
    "fields": (2, [3]),
    "templates": (2, [5]),
    "decks": (1, [4, 5]),
    "deck_config": (1, [4]),
}


def _fields(hex_blob: str) -> list[tuple[int, bytes]]:
    """The top-level protobuf fields of a blob: (number, raw bytes of the whole field)."""
    data, pos, out = bytes.fromhex(hex_blob), 0, []

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
        out.append((key >> 3, data[start:pos]))
    return out


def _keep(hex_blob: str, numbers: set[int]) -> str:
    return b"".join(raw for n, raw in _fields(hex_blob) if n in numbers).hex().upper()


def content(dump: dict[str, Any]) -> dict[str, Any]:
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
    return out


def comparable(
    a: dict[str, Any], b: dict[str, Any], *, across_versions: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The contents of two dumps, ready to compare.

    Across client versions, each blob keeps only the protobuf fields that both sides have:
    a client stores only the fields its version knows, and keeps unknown legacy keys in field
    255 (``other``). A reference run shows the official server leads to the same differences.
    """
    ca, cb = content(a), content(b)
    if not across_versions:
        return ca, cb
    for table, (key_len, blob_columns) in BLOB_TABLES.items():
        rows_b = {tuple(r[:key_len]): r for r in cb[table]}
        for row_a in ca[table]:
            row_b = rows_b.get(tuple(row_a[:key_len]))
            if row_b is None:
                continue
            for i in blob_columns:
                common = {n for n, _ in _fields(row_a[i])} & {n for n, _ in _fields(row_b[i])}
                common.discard(255)
                row_a[i], row_b[i] = _keep(row_a[i], common), _keep(row_b[i], common)
    return ca, cb


def differences(a: dict[str, Any], b: dict[str, Any], **options: bool) -> dict[str, Any]:
    """Per table, the rows only in a and only in b (for readable assertion messages)."""
    ca, cb = comparable(a, b, **options)
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
