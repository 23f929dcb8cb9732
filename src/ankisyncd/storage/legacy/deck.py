"""Decks: legacy JSON (normal and filtered) <-> ``decks`` rows."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Any

from ankisyncd.storage.legacy import schemas
from ankisyncd.storage.legacy.proto import decode, encode
from ankisyncd.storage.legacy.values import (
    I32,
    I64,
    U8,
    U32,
    LegacyFormatError,
    boolish,
    dump_other,
    f32,
    is_bool,
    is_boolish,
    is_int,
    is_number,
    is_str,
    lenient,
    load_other,
    num_or_str,
    obj_of,
    optional,
    required,
    required_id,
    short_f32,
    unknown_keys,
)

COMMON_KEYS = [
    "id",
    "mod",
    "name",
    "usn",
    "dyn",
    "collapsed",
    "browserCollapsed",
    "desc",
    "lrnToday",
    "revToday",
    "newToday",
    "timeToday",
    "conf",
    "extendNew",
    "extendRev",
    "reviewLimit",
    "newLimit",
    "reviewLimitToday",
    "newLimitToday",
    "desiredRetention",
]
# Written by us for every deck, so never taken from ``other`` (``return`` is obsolete).
WRITTEN_KEYS = [
    *COMMON_KEYS,
    "md",
    "resched",
    "terms",
    "separate",
    "delays",
    "previewDelay",
    "previewAgainSecs",
    "previewHardSecs",
    "previewGoodSecs",
]
DISCARDED_KEYS = ["return"]
TODAY_KEYS = ("lrnToday", "revToday", "newToday", "timeToday")


@dataclass(frozen=True)
class DeckRow:
    id: int
    name: str  # components joined by U+001F
    mtime: int
    usn: int
    common: bytes
    kind: bytes


def native_deck_name(name: str) -> str:
    """``A::B`` -> the stored form: normalised components joined by U+001F."""
    parts = []
    for part in name.split("::"):
        part = unicodedata.normalize("NFC", part)
        part = "".join(ch for ch in part if not (ord(ch) < 0x20 or ord(ch) == 0x7F))
        part = part.strip().strip(":").strip()
        parts.append(part or "blank")
    return "\x1f".join(parts)


def legacy_deck_name(name: str) -> str:
    return name.replace("\x1f", "::")


def _today(obj: dict[str, Any], key: str) -> tuple[int, int]:
    if key not in obj:
        raise LegacyFormatError(f"missing key {key!r}")
    value = obj[key]
    items = value if isinstance(value, list) else []
    day = items[0] if len(items) > 0 and U32(items[0]) else 0
    amount = items[1] if len(items) > 1 and I32(items[1]) else 0
    return day, amount


def _is_uint_or_none(v: Any) -> bool:
    return v is None or U32(v)


def _day_limit(v: Any) -> dict[str, int] | None:
    if isinstance(v, dict) and U32(v.get("limit")) and U32(v.get("today")):
        return {"limit": v["limit"], "today": v["today"]}
    return None


def _dyn(obj: dict[str, Any]) -> bool:
    value = required(obj, "dyn", lambda v: is_bool(v) or U8(v))
    return value is True or (is_int(value) and value == 1)


def deck_from_legacy(value: Any) -> DeckRow:
    """Read one deck; raises LegacyFormatError where the official client would fail."""
    obj = obj_of(value, "deck")
    filtered = _dyn(obj)
    days = {key: _today(obj, key) for key in TODAY_KEYS}
    last_day = max(days["timeToday"][0], days["newToday"][0], days["revToday"][0])

    def studied(key: str) -> int:
        day, amount = days[key]
        return amount if day == last_day else 0

    common = {
        "study_collapsed": required(obj, "collapsed", is_bool),
        "browser_collapsed": optional(obj, "browserCollapsed", is_bool, False),
        "last_day_studied": last_day,
        "new_studied": studied("newToday"),
        "review_studied": studied("revToday"),
        "learning_studied": studied("lrnToday"),
        "milliseconds_studied": days["timeToday"][1],
        "other": dump_other(unknown_keys(obj, [*WRITTEN_KEYS, *DISCARDED_KEYS])),
    }
    description = optional(obj, "desc", is_str, "")
    markdown = optional(obj, "md", is_bool, False)
    kind = (
        {"filtered": _filtered(obj)}
        if filtered
        else {"normal": _normal(obj, description, markdown)}
    )
    mtime = num_or_str(obj["mod"]) if "mod" in obj else 0
    return DeckRow(
        id=required_id(obj, "id"),
        name=native_deck_name(required(obj, "name", is_str)),
        mtime=mtime,
        usn=required(obj, "usn", I32),
        common=encode(schemas.DECK_COMMON, common),
        kind=encode(schemas.DECK_KIND, kind),
    )


def _normal(obj: dict[str, Any], description: str, markdown: bool) -> dict[str, Any]:
    retention = lenient(obj, "desiredRetention", lambda v: v is None or U32(v), None)
    return {
        "config_id": required_id(obj, "conf"),
        "extend_new": max(0, lenient(obj, "extendNew", I64, 0)) & 0xFFFF_FFFF,
        "extend_review": max(0, lenient(obj, "extendRev", I64, 0)) & 0xFFFF_FFFF,
        "description": description,
        "markdown_description": markdown,
        "review_limit": lenient(obj, "reviewLimit", _is_uint_or_none, None),
        "new_limit": lenient(obj, "newLimit", _is_uint_or_none, None),
        "review_limit_today": _day_limit(obj.get("reviewLimitToday")),
        "new_limit_today": _day_limit(obj.get("newLimitToday")),
        "desired_retention": None if retention is None else f32(retention / 100),
    }


def _filtered(obj: dict[str, Any]) -> dict[str, Any]:
    terms = required(obj, "terms", lambda v: isinstance(v, list))
    search_terms = []
    for term in terms:
        if not (isinstance(term, list) and len(term) == 3 and is_str(term[0])):
            raise LegacyFormatError("bad filtered deck term")
        limit = num_or_str(term[1])
        if not (is_int(term[2]) and 0 <= term[2] < (1 << 31)):
            raise LegacyFormatError("bad filtered deck order")
        search_terms.append(
            {"search": term[0], "limit": min(max(limit, 0), 0xFFFF_FFFF), "order": term[2]}
        )
    delays = lenient(
        obj,
        "delays",
        lambda v: v is None or (isinstance(v, list) and all(is_number(d) for d in v)),
        None,
    )
    return {
        "reschedule": boolish(required(obj, "resched", is_boolish)),
        "search_terms": search_terms,
        "delays": [f32(d) for d in delays or []],
        "preview_delay": optional(obj, "previewDelay", U32, 0),
        "preview_again_secs": optional(obj, "previewAgainSecs", U32, 0),
        "preview_hard_secs": optional(obj, "previewHardSecs", U32, 0),
        "preview_good_secs": optional(obj, "previewGoodSecs", U32, 0),
    }


def deck_to_legacy(row: tuple[int, str, int, int, bytes, bytes]) -> dict[str, Any]:
    """Build the legacy JSON of a ``decks`` row."""
    did, name, mtime, usn, common_blob, kind_blob = row
    common = decode(schemas.DECK_COMMON, common_blob)
    kind = decode(schemas.DECK_KIND, kind_blob)
    last = common["last_day_studied"]
    out: dict[str, Any] = {
        "id": did,
        "mod": mtime,
        "name": legacy_deck_name(name),
        "usn": usn,
        "lrnToday": [last, common["learning_studied"]],
        "revToday": [last, common["review_studied"]],
        "newToday": [last, common["new_studied"]],
        "timeToday": [last, common["milliseconds_studied"]],
        "collapsed": common["study_collapsed"],
        "browserCollapsed": common["browser_collapsed"],
    }
    filtered = kind["filtered"]
    if filtered is not None:
        delays = [short_f32(d) for d in filtered["delays"]]
        out.update(
            {
                "desc": "",
                "dyn": 1,
                "resched": filtered["reschedule"],
                "terms": [[t["search"], t["limit"], t["order"]] for t in filtered["search_terms"]],
                "separate": True,
                "delays": delays or None,
                "previewDelay": filtered["preview_delay"],
                "previewAgainSecs": filtered["preview_again_secs"],
                "previewHardSecs": filtered["preview_hard_secs"],
                "previewGoodSecs": filtered["preview_good_secs"],
            }
        )
    else:
        normal = kind["normal"] or schemas.DECK_NORMAL.default()
        retention = normal["desired_retention"]
        out.update(
            {
                "desc": normal["description"],
                "dyn": 0,
                "conf": normal["config_id"],
                "extendNew": normal["extend_new"],
                "extendRev": normal["extend_review"],
                "reviewLimit": normal["review_limit"],
                "newLimit": normal["new_limit"],
                "reviewLimitToday": normal["review_limit_today"],
                "newLimitToday": normal["new_limit_today"],
                "desiredRetention": None
                if retention is None or not math.isfinite(retention)
                else int(f32(f32(retention) * 100)),
            }
        )
        if normal["markdown_description"]:
            out["md"] = True
    out.update(load_other(common["other"], WRITTEN_KEYS))
    return out
