"""Messages of the normal (incremental) sync: start, graves, changes, chunks, sanity check.

Legacy notetype, deck and deck-config objects stay JSON objects here; the engine converts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ankisyncd.errors import BadRequest
from ankisyncd.protocol.limits import BODY_LIMITS
from ankisyncd.protocol.methods import SyncMethod
from ankisyncd.protocol.rows import U32, CardRow, NoteRow, RevlogRow, check_chunk, decode_chunk
from ankisyncd.protocol.wirejson import (
    I32,
    I64,
    count_is_within,
    encode_json,
    encode_plain,
    parse_json,
)
from ankisyncd.protocol.wirejson import expect_int as _int
from ankisyncd.protocol.wirejson import expect_list as _list
from ankisyncd.protocol.wirejson import expect_object as _obj
from ankisyncd.protocol.wirejson import expect_str as _str


def _body(body: bytes, method: SyncMethod) -> dict[str, Any]:
    """The request's JSON object; its value count is checked before any of it is built."""
    return _obj(parse_json(body, BODY_LIMITS[method].values), method.value)


def _id(value: Any, what: str) -> int:
    """An id, which very old clients send as a numeric string."""
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise BadRequest(f"invalid json: {what} must be an id") from None
    return _int(value, I64, what)


class Graves(NamedTuple):
    cards: list[int]
    notes: list[int]
    decks: list[int]

    @classmethod
    def from_json(cls, value: Any) -> Graves:
        obj = _obj(value, "graves")
        lists = [
            [_id(i, f"graves.{k}") for i in _list(obj.get(k), f"graves.{k}")]
            for k in ("cards", "notes", "decks")
        ]
        return cls(*lists)

    def to_json(self) -> dict[str, list[int]]:
        return {"cards": self.cards, "notes": self.notes, "decks": self.decks}


class StartRequest(NamedTuple):
    client_usn: int
    local_is_newer: bool
    graves: Graves | None  # legacy clients send their deletions here

    @classmethod
    def from_wire(cls, body: bytes) -> StartRequest:
        obj = _body(body, SyncMethod.START)
        newer = obj.get("lnewer")
        if not isinstance(newer, bool):
            raise BadRequest("invalid json: lnewer must be a bool")
        graves = obj.get("graves")
        return cls(
            _int(obj.get("minUsn"), I32, "minUsn"),
            newer,
            None if graves is None else Graves.from_json(graves),
        )


def parse_apply_graves(body: bytes) -> Graves:
    return Graves.from_json(_body(body, SyncMethod.APPLY_GRAVES).get("chunk"))


@dataclass
class UnchunkedChanges:
    notetypes: list[Any]
    decks: list[Any]
    deck_configs: list[Any]
    tags: list[str]
    config: dict[str, Any] | None = None
    crt: int | None = None

    @classmethod
    def from_wire(cls, body: bytes) -> UnchunkedChanges:
        obj = _obj(_body(body, SyncMethod.APPLY_CHANGES).get("changes"), "changes")
        decks = _list(obj.get("decks"), "decks")
        if len(decks) != 2:
            raise BadRequest("invalid json: decks must be [decks, deck configs]")
        config = obj.get("conf")
        crt = obj.get("crt")
        return cls(
            notetypes=_list(obj.get("models"), "models"),
            decks=_list(decks[0], "decks[0]"),
            deck_configs=_list(decks[1], "decks[1]"),
            tags=[_str(t, "tag") for t in _list(obj.get("tags"), "tags")],
            config=None if config is None else _obj(config, "conf"),
            crt=None if crt is None else _int(crt, I64, "crt"),
        )

    def to_wire(self) -> bytes:
        out: dict[str, Any] = {
            "models": self.notetypes,
            "decks": [self.decks, self.deck_configs],
            "tags": self.tags,
        }
        if self.config is not None:
            out["conf"] = self.config
        if self.crt is not None:
            out["crt"] = self.crt
        return encode_json(out)


@dataclass
class Chunk:
    done: bool
    revlog: list[RevlogRow] = field(default_factory=list)
    cards: list[CardRow] = field(default_factory=list)
    notes: list[NoteRow] = field(default_factory=list)

    @classmethod
    def from_json(cls, value: Any) -> Chunk:
        return cls(*check_chunk(value))

    def to_wire(self) -> bytes:
        out: dict[str, Any] = {"done": self.done}
        if self.revlog:
            out["revlog"] = self.revlog
        if self.cards:
            out["cards"] = self.cards
        if self.notes:
            # The receiver works out sfld and csum itself; they must be strings on the wire.
            out["notes"] = [[*n, "", "", 0, ""] for n in self.notes]
        return encode_plain(out)


def parse_apply_chunk(body: bytes) -> Chunk:
    """The chunk, decoded in one pass when its rows need no conversion (protocol/rows.py)."""
    if count_is_within(body, BODY_LIMITS[SyncMethod.APPLY_CHUNK].values):
        rows = decode_chunk(body)
        if rows is not None:
            return Chunk(*rows)
    return Chunk.from_json(_body(body, SyncMethod.APPLY_CHUNK).get("chunk"))


Counts = tuple[int, ...]  # cards, notes, revlog, graves, notetypes, decks, deck configs


def parse_sanity_check(body: bytes) -> Counts:
    value = _list(_body(body, SyncMethod.SANITY_CHECK).get("client"), "client")
    if len(value) != 8:
        raise BadRequest("invalid json: client counts must have 8 elements")
    _list(value[0], "due counts")
    return tuple(_int(v, U32, "count") for v in value[1:])


class SanityCheckResponse(NamedTuple):
    ok: bool
    client: Counts
    server: Counts | None

    def to_wire(self) -> bytes:
        def wire(c: Counts | None) -> list[Any] | None:
            return None if c is None else [[0, 0, 0], *c]

        return encode_plain(
            {"status": "ok" if self.ok else "bad", "c": wire(self.client), "s": wire(self.server)}
        )
