"""``applyChanges``: swap notetypes, decks, deck configs, tags and (from the newer side) config."""

from __future__ import annotations

import json
import sqlite3
import time
import unicodedata
from typing import Any, NamedTuple

from ankisyncd.errors import BadRequest
from ankisyncd.protocol.normal import UnchunkedChanges
from ankisyncd.protocol.wirejson import encode_json
from ankisyncd.storage.legacy.deck import DeckRow, deck_from_legacy, deck_to_legacy
from ankisyncd.storage.legacy.deckconfig import (
    DeckConfigRow,
    deck_config_from_legacy,
    deck_config_to_legacy,
)
from ankisyncd.storage.legacy.notetype import NotetypeRows, notetype_from_legacy, read_notetypes
from ankisyncd.storage.legacy.values import LegacyFormatError
from ankisyncd.sync.session import SyncSession


class ApplyError(Exception):
    """Client data that cannot be applied; the session is dropped (400)."""


class ParsedChanges(NamedTuple):  # one per applyChanges: cheaper to build than a dataclass
    notetypes: list[NotetypeRows]
    decks: list[DeckRow]
    deck_configs: list[DeckConfigRow]
    tags: list[str]
    config: dict[str, Any] | None
    crt: int | None


def parse_changes(changes: UnchunkedChanges) -> ParsedChanges:
    """Read the legacy objects into rows; a 400 here keeps the session (the body is unreadable)."""
    try:
        return ParsedChanges(
            [notetype_from_legacy(n) for n in changes.notetypes],
            [deck_from_legacy(d) for d in changes.decks],
            [deck_config_from_legacy(c) for c in changes.deck_configs],
            changes.tags,
            changes.config,
            changes.crt,
        )
    except LegacyFormatError as exc:
        raise BadRequest(f"invalid json: {exc}") from exc


def apply_changes(session: SyncSession, incoming: ParsedChanges) -> UnchunkedChanges:
    """Collect the server's changes first, then apply the client's; return the server's."""
    ours = collect_changes(session)
    _apply_notetypes(session, incoming.notetypes)
    _apply_decks(session, incoming.decks)
    _apply_deck_configs(session, incoming.deck_configs)
    _register_tags(session, incoming.tags)
    if incoming.crt is not None:
        session.con.execute("update col set crt = ?", (incoming.crt,))
    if incoming.config is not None:
        _replace_config(session, incoming.config)
    session.notetypes.clear()
    return ours


# Which tables hold changes: most syncs have none, found by one statement instead of four.
_CHANGED = "select " + ", ".join(
    f"exists (select 1 from {t} where usn >= ?1)"
    for t in ("notetypes", "decks", "deck_config", "tags")
)


def collect_changes(session: SyncSession) -> UnchunkedChanges:
    con, since = session.con, session.client_usn
    changes = UnchunkedChanges([], [], [], [])
    notetypes, decks, deck_configs, tags = con.execute(_CHANGED, (since,)).fetchone()
    if notetypes:
        changes.notetypes = read_notetypes(
            con, "select id, name, mtime_secs, usn, config from notetypes where usn >= ?", since
        )
    if decks:
        changes.decks = [deck_to_legacy(r) for r in _since(con, "decks", "common, kind", since)]
    if deck_configs:
        changes.deck_configs = [
            deck_config_to_legacy(r) for r in _since(con, "deck_config", "config", since)
        ]
    if tags:
        changes.tags = [t for (t,) in con.execute("select tag from tags where usn >= ?", (since,))]
    if not session.client_is_newer:
        changes.config = {
            key: json.loads(val) for key, val in con.execute("select KEY, val from config")
        }
        (changes.crt,) = con.execute("select crt from col").fetchone()
    return changes


def _since(con: sqlite3.Connection, table: str, columns: str, usn: int) -> sqlite3.Cursor:
    """Rows of ``table`` with a usn of at least ``usn``: id, name, mtime_secs, usn, ``columns``."""
    return con.execute(
        f"select id, name, mtime_secs, usn, {columns} from {table} where usn >= ?", (usn,)
    )


def _unique_name(
    session: SyncSession, table: str, oid: int, name: str, mtime: int
) -> tuple[str, int]:
    """Append ``+`` until no other row of ``table`` has the name (case-insensitively); a
    renamed object counts as modified now."""
    unique = name
    while session.con.execute(
        f"select 1 from {table} where name = ? and id != ?", (unique, oid)
    ).fetchone():
        unique += "+"
    return (name, mtime) if unique == name else (unique, int(time.time()))


def _apply_notetypes(session: SyncSession, notetypes: list[NotetypeRows]) -> None:
    con = session.con
    for nt in notetypes:
        stored = con.execute("select mtime_secs from notetypes where id = ?", (nt.id,)).fetchone()
        if stored is not None:
            if stored[0] > nt.mtime:
                continue
            counts = con.execute(
                "select (select count() from fields where ntid = ?),"
                " (select count() from templates where ntid = ?)",
                (nt.id, nt.id),
            ).fetchone()
            if counts != (len(nt.fields), len(nt.templates)):
                raise ApplyError(f"notetype {nt.id}: schema changed; a full sync is required")
        name, mtime = _unique_name(session, "notetypes", nt.id, nt.name, nt.mtime)
        con.execute(
            "insert into notetypes (id, name, mtime_secs, usn, config) values (?,?,?,?,?)"
            " on conflict(id) do update set name = excluded.name,"
            " mtime_secs = excluded.mtime_secs, usn = excluded.usn, config = excluded.config",
            (nt.id, name, mtime, session.server_usn, nt.config),
        )
        con.execute("delete from fields where ntid = ?", (nt.id,))
        con.execute("delete from templates where ntid = ?", (nt.id,))
        con.executemany(
            "insert into fields (ntid, ord, name, config) values (?,?,?,?)",
            [(nt.id, i, fname, cfg) for i, (fname, cfg) in enumerate(nt.fields)],
        )
        con.executemany(
            "insert into templates (ntid, ord, name, mtime_secs, usn, config) values (?,?,?,0,0,?)",
            [(nt.id, i, tname, cfg) for i, (tname, cfg) in enumerate(nt.templates)],
        )


def _apply_decks(session: SyncSession, decks: list[DeckRow]) -> None:
    con = session.con
    for deck in decks:
        stored = con.execute("select mtime_secs from decks where id = ?", (deck.id,)).fetchone()
        if stored is not None and stored[0] > deck.mtime:
            continue
        name, mtime = _unique_name(session, "decks", deck.id, deck.name, deck.mtime)
        con.execute(
            "insert into decks (id, name, mtime_secs, usn, common, kind) values (?,?,?,?,?,?)"
            " on conflict(id) do update set name = excluded.name,"
            " mtime_secs = excluded.mtime_secs, usn = excluded.usn, common = excluded.common,"
            " kind = excluded.kind",
            (deck.id, name, mtime, session.server_usn, deck.common, deck.kind),
        )


def _apply_deck_configs(session: SyncSession, configs: list[DeckConfigRow]) -> None:
    con = session.con
    for dc in configs:
        stored = con.execute("select mtime_secs from deck_config where id = ?", (dc.id,)).fetchone()
        if stored is not None and stored[0] > dc.mtime:
            continue
        con.execute(
            "insert or replace into deck_config (id, name, mtime_secs, usn, config)"
            " values (?,?,?,?,?)",
            (dc.id, dc.name, dc.mtime, session.server_usn, dc.config),
        )


def normalize_tag(name: str) -> str:
    parts = []
    for part in name.split("::"):
        part = unicodedata.normalize("NFC", part)
        part = "".join(
            ch for ch in part if not (ord(ch) < 0x20 or ord(ch) == 0x7F or ch in " \u3000")
        ).strip()
        parts.append(part or "blank")
    return "::".join(parts)


def _register_tags(session: SyncSession, tags: list[str]) -> None:
    con = session.con
    for raw in tags:
        name = normalize_tag(raw)
        if not name or con.execute("select 1 from tags where tag = ?", (name,)).fetchone():
            continue
        # Adopt the spelling of existing parents: "Parent::new" under an existing "parent".
        parts = name.split("::")
        for i in range(1, len(parts)):
            parent = con.execute(
                "select tag from tags where tag = ?", ("::".join(parts[:i]),)
            ).fetchone()
            if parent:
                parts[:i] = parent[0].split("::")
        con.execute(
            "insert into tags (tag, usn, collapsed, config) values (?, ?, 1, null)",
            ("::".join(parts), session.server_usn),
        )


def _replace_config(session: SyncSession, config: dict[str, Any]) -> None:
    now = int(time.time())
    session.con.execute("delete from config")
    session.con.executemany(
        "insert into config (KEY, usn, mtime_secs, val) values (?,?,?,?)",
        [
            (
                key,
                session.server_usn,
                now,
                encode_json(value),
            )
            for key, value in config.items()
        ],
    )
