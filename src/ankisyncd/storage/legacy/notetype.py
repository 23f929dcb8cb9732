"""Notetypes: legacy JSON (``models`` entries) <-> ``notetypes``, ``fields``, ``templates`` rows."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from ankisyncd.storage.legacy import schemas
from ankisyncd.storage.legacy.proto import decode, encode
from ankisyncd.storage.legacy.values import (
    I64,
    U16,
    U32,
    LegacyFormatError,
    boolish,
    dump_other,
    in_range,
    is_bool,
    is_boolish,
    is_int,
    is_str,
    lenient,
    lenient_required,
    load_other,
    obj_of,
    optional,
    required,
    required_id,
    unknown_keys,
)

NOTETYPE_KEYS = [
    "id",
    "name",
    "type",
    "mod",
    "usn",
    "sortf",
    "did",
    "tmpls",
    "flds",
    "css",
    "latexPre",
    "latexPost",
    "latexsvg",
    "req",
    "originalStockKind",
    "originalId",
]
FIELD_KEYS = [
    "name",
    "ord",
    "sticky",
    "rtl",
    "plainText",
    "font",
    "size",
    "collapsed",
    "description",
    "excludeFromSearch",
    "id",
    "tag",
    "preventDeletion",
]
TEMPLATE_KEYS = ["name", "ord", "did", "qfmt", "afmt", "bqfmt", "bafmt", "bfont", "bsize", "id"]
REQ_KINDS = {"none": 0, "any": 1, "all": 2}
REQ_NAMES = {v: k for k, v in REQ_KINDS.items()}


@dataclass(frozen=True)
class NotetypeRows:
    id: int
    name: str
    mtime: int
    usn: int
    config: bytes
    fields: list[tuple[str, bytes]]  # (name, config) in ord order
    templates: list[tuple[str, bytes]]


def _is_opt_i64(v: Any) -> bool:
    return v is None or I64(v)


def _is_opt_u32(v: Any) -> bool:
    return v is None or U32(v)


def _reqs(value: Any) -> list[dict[str, Any]]:
    out = []
    for entry in value:
        if not (isinstance(entry, list) and len(entry) == 3):
            raise LegacyFormatError("bad req")
        card_ord, kind, ords = entry
        if not U32(card_ord) or kind not in REQ_KINDS or not isinstance(ords, list):
            raise LegacyFormatError("bad req")
        if not all(U32(o) for o in ords):
            raise LegacyFormatError("bad req")
        out.append({"card_ord": card_ord, "kind": REQ_KINDS[kind], "field_ords": list(ords)})
    return out


def notetype_from_legacy(value: Any) -> NotetypeRows:
    """Read one ``models`` entry; raises LegacyFormatError where the official client would fail."""
    obj = obj_of(value, "notetype")
    kind = required(obj, "type", in_range(0, 1))
    did = lenient_required(obj, "did", I64, 0)
    try:
        reqs = _reqs(obj.get("req", []))
    except (LegacyFormatError, TypeError):
        reqs = []
    config = {
        "kind": kind,
        "sort_field_idx": required(obj, "sortf", U16),
        "css": lenient_required(obj, "css", is_str, ""),
        "target_deck_id_unused": did or 0,
        "latex_pre": optional(obj, "latexPre", is_str, ""),
        "latex_post": optional(obj, "latexPost", is_str, ""),
        "latex_svg": lenient(obj, "latexsvg", is_bool, False),
        "reqs": reqs,
        "original_stock_kind": optional(obj, "originalStockKind", in_range(0, 1 << 31), 0),
        "original_id": optional(obj, "originalId", _is_opt_i64, None),
        "other": dump_other(unknown_keys(obj, NOTETYPE_KEYS)),
    }
    fields = required(obj, "flds", lambda v: isinstance(v, list))
    templates = required(obj, "tmpls", lambda v: isinstance(v, list))
    return NotetypeRows(
        id=required_id(obj, "id"),
        name=required(obj, "name", is_str),
        mtime=required(obj, "mod", I64),
        usn=required(obj, "usn", in_range(-(1 << 31), (1 << 31) - 1)),
        config=encode(schemas.NOTETYPE_CONFIG, config),
        fields=[_field_from_legacy(f) for f in fields],
        templates=[_template_from_legacy(t) for t in templates],
    )


def _field_from_legacy(value: Any) -> tuple[str, bytes]:
    obj = obj_of(value, "field")
    optional(obj, "ord", lambda v: v is None or is_int(v), None)
    config = {
        "sticky": boolish(required(obj, "sticky", is_boolish)),
        "rtl": boolish(required(obj, "rtl", is_boolish)),
        "font_name": required(obj, "font", is_str),
        "font_size": required(obj, "size", U16),
        "description": lenient(obj, "description", is_str, ""),
        "plain_text": lenient(obj, "plainText", is_bool, False),
        "collapsed": lenient(obj, "collapsed", is_bool, False),
        "exclude_from_search": lenient(obj, "excludeFromSearch", is_bool, False),
        "id": lenient(obj, "id", _is_opt_i64, None),
        "tag": lenient(obj, "tag", _is_opt_u32, None),
        "prevent_deletion": lenient(obj, "preventDeletion", is_bool, False),
        "other": dump_other(unknown_keys(obj, FIELD_KEYS)),
    }
    return required(obj, "name", is_str), encode(schemas.FIELD_CONFIG, config)


def _template_from_legacy(value: Any) -> tuple[str, bytes]:
    obj = obj_of(value, "template")
    optional(obj, "ord", lambda v: v is None or is_int(v), None)
    config = {
        "q_format": required(obj, "qfmt", is_str),
        "a_format": optional(obj, "afmt", is_str, ""),
        "q_format_browser": optional(obj, "bqfmt", is_str, ""),
        "a_format_browser": optional(obj, "bafmt", is_str, ""),
        "target_deck_id": lenient(obj, "did", _is_opt_i64, None) or 0,
        "browser_font_name": lenient(obj, "bfont", is_str, ""),
        "browser_font_size": lenient(obj, "bsize", in_range(0, 255), 0),
        "id": lenient(obj, "id", _is_opt_i64, None),
        "other": dump_other(unknown_keys(obj, TEMPLATE_KEYS)),
    }
    return required(obj, "name", is_str), encode(schemas.TEMPLATE_CONFIG, config)


def read_notetypes(con: sqlite3.Connection, query: str, *args: object) -> list[dict[str, Any]]:
    """Legacy JSON of the notetypes that ``query`` selects (id, name, mtime_secs, usn, config)."""
    out = []
    for row in con.execute(query, args).fetchall():
        fields = con.execute(
            "select name, config from fields where ntid = ? order by ord", (row[0],)
        ).fetchall()
        templates = con.execute(
            "select name, config from templates where ntid = ? order by ord", (row[0],)
        ).fetchall()
        out.append(notetype_to_legacy(row, fields, templates))
    return out


def notetype_to_legacy(
    row: tuple[int, str, int, int, bytes],
    fields: list[tuple[str, bytes]],
    templates: list[tuple[str, bytes]],
) -> dict[str, Any]:
    """Build the ``models`` entry for a notetype row and its field and template rows."""
    ntid, name, mtime, usn, blob = row
    c = decode(schemas.NOTETYPE_CONFIG, blob)
    out: dict[str, Any] = {
        "id": ntid,
        "name": name,
        "type": c["kind"],
        "mod": mtime,
        "usn": usn,
        "sortf": c["sort_field_idx"],
        "did": c["target_deck_id_unused"] or None,
        "tmpls": [_template_to_legacy(i, *t) for i, t in enumerate(templates)],
        "flds": [_field_to_legacy(i, *f) for i, f in enumerate(fields)],
        "css": c["css"],
        "latexPre": c["latex_pre"],
        "latexPost": c["latex_post"],
        "latexsvg": c["latex_svg"],
        "req": [
            [r["card_ord"], REQ_NAMES.get(r["kind"], "none"), r["field_ords"]] for r in c["reqs"]
        ],
    }
    if c["original_stock_kind"]:
        out["originalStockKind"] = c["original_stock_kind"]
    if c["original_id"] is not None:
        out["originalId"] = c["original_id"]
    out.update(load_other(c["other"], NOTETYPE_KEYS))
    return out


def _field_to_legacy(ord_: int, name: str, blob: bytes) -> dict[str, Any]:
    c = decode(schemas.FIELD_CONFIG, blob)
    out: dict[str, Any] = {
        "name": name,
        "ord": ord_,
        "sticky": c["sticky"],
        "rtl": c["rtl"],
        "font": c["font_name"],
        "size": c["font_size"],
        "description": c["description"],
        "plainText": c["plain_text"],
        "collapsed": c["collapsed"],
        "excludeFromSearch": c["exclude_from_search"],
        "id": c["id"],
        "tag": c["tag"],
        "preventDeletion": c["prevent_deletion"],
    }
    out.update(load_other(c["other"], FIELD_KEYS))
    return out


def _template_to_legacy(ord_: int, name: str, blob: bytes) -> dict[str, Any]:
    c = decode(schemas.TEMPLATE_CONFIG, blob)
    out: dict[str, Any] = {
        "name": name,
        "ord": ord_,
        "qfmt": c["q_format"],
        "afmt": c["a_format"],
        "bqfmt": c["q_format_browser"],
        "bafmt": c["a_format_browser"],
        "did": c["target_deck_id"] if c["target_deck_id"] > 0 else None,
        "bfont": c["browser_font_name"],
        "bsize": c["browser_font_size"],
        "id": c["id"],
    }
    out.update(load_other(c["other"], TEMPLATE_KEYS))
    return out
