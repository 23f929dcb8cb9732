"""``chunk`` and ``applyChunk``: review log, cards and notes, 250 rows at a time."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import cache, lru_cache
from operator import itemgetter
from typing import Any

from ankisyncd.protocol.normal import Chunk
from ankisyncd.protocol.rows import NoteRow
from ankisyncd.storage.legacy import schemas
from ankisyncd.storage.legacy.proto import decode
from ankisyncd.storage.sqlite import in_list
from ankisyncd.sync.changes import ApplyError
from ankisyncd.sync.notes import FIELD_SEPARATOR, clean_fields, sort_field_and_checksum
from ankisyncd.sync.session import SyncSession

CHUNK_SIZE = 250
_COLUMNS = {
    "revlog": "id, cid, usn, ease, ivl, lastIvl, factor, time, type",
    "cards": "id, nid, did, ord, mod, usn, type, queue, due, ivl, factor, reps, lapses, left,"
    " odue, odid, flags, data",
    "notes": "id, guid, mid, mod, usn, tags, flds",
}

_SENT = ("revlog", "cards", "notes")  # in sending order
# One statement instead of three (most syncs find nothing to send).
_PENDING = " union all ".join(
    f"select {kind}, id from {table} where usn >= ?1" for kind, table in enumerate(_SENT)
)


def next_chunk(session: SyncSession) -> Chunk:
    """The next rows changed on the server since the client's last sync."""
    con = session.con
    if session.pending is None:
        # Taken once, before the client pushes its own cards and notes; sorted by table only
        # (stable), as SQL does not promise a compound select's order.
        rows = con.execute(_PENDING, (session.client_usn,)).fetchall()
        rows.sort(key=itemgetter(0))
        session.pending = [(_SENT[kind], oid) for kind, oid in rows]
    batch = session.pending[session.sent : session.sent + CHUNK_SIZE]
    session.sent += len(batch)
    chunk = Chunk(done=len(batch) < CHUNK_SIZE)
    for table in _SENT:
        ids = [oid for t, oid in batch if t == table]
        rows = []
        for start in range(0, len(ids), 500):
            marks, part = in_list(ids[start : start + 500])
            rows += con.execute(
                f"select {_COLUMNS[table]} from {table} where id in ({marks})", part
            ).fetchall()
        getattr(chunk, table).extend(rows)
    return chunk


def apply_chunk(session: SyncSession, chunk: Chunk) -> None:
    """Store the client's rows: review log first, then cards, then notes."""
    con, usn = session.con, session.server_usn
    if chunk.revlog:
        con.executemany(_sql("revlog", "insert"), [_stamped(r, 2, usn) for r in chunk.revlog])
    stored = _stored(session, "cards", [c[0] for c in chunk.cards])
    cards = [_stamped(c, 5, usn) for c in chunk.cards if _wins(session, stored, c[0], c[4])]
    _write(con, "cards", cards, stored)
    stored = _stored(session, "notes", [n[0] for n in chunk.notes])
    notes = [_prepare_note(session, n) for n in chunk.notes if _wins(session, stored, n[0], n[3])]
    _write(con, "notes", notes, stored)


def _stamped(row: Sequence[Any], usn_index: int, usn: int) -> tuple[Any, ...]:
    """The row with the server's usn in place of the client's."""
    return (*row[:usn_index], usn, *row[usn_index + 1 :])


# The rows as stamped (review log, cards) or prepared (notes) with the server's usn, bound by
# position; the statements put in a note's flags and data, which are always 0 and "".
_ROW_COLUMNS = {
    "revlog": _COLUMNS["revlog"].split(", "),
    "cards": _COLUMNS["cards"].split(", "),
    "notes": [*_COLUMNS["notes"].split(", "), "sfld", "csum"],
}
_FIXED = {"notes": {"flags": "0", "data": "''"}}
# Indexed columns that rarely change. SQLite rewrites the index entries of every indexed
# column an UPDATE sets, changed or not, so rows that keep them are updated without them:
# updating 5,000 notes and 5,000 cards took ~20 % less.
_STEADY = {"cards": ("nid", "did", "odid"), "notes": ("mid",)}
_steady_of = {t: itemgetter(*(_ROW_COLUMNS[t].index(c) for c in cs)) for t, cs in _STEADY.items()}
# A statement must use the row's last value, or sqlite3 refuses the row's length.
assert all(_ROW_COLUMNS[t][-1] not in cs for t, cs in _STEADY.items())


# Fixed texts, whatever the sync: each connection prepares them once and keeps them.
@cache
def _sql(table: str, kind: str) -> str:
    """``insert`` (``or ignore`` for the review log), ``update``, or ``update steady`` (leaving
    out the steady columns) of a row bound by position."""
    columns = _ROW_COLUMNS[table]
    values = {c: f"?{i}" for i, c in enumerate(columns, 1)} | _FIXED.get(table, {})
    if kind == "insert":
        verb = "insert or ignore" if table == "revlog" else "insert"
        return f"{verb} into {table} ({', '.join(values)}) values ({', '.join(values.values())})"
    skip = {"id", *(_STEADY[table] if kind == "update steady" else ())}
    assignments = ", ".join(f"{c} = {v}" for c, v in values.items() if c not in skip)
    return f"update {table} set {assignments} where id = ?1"


def _write(
    con: sqlite3.Connection,
    table: str,
    rows: Sequence[tuple[Any, ...]],
    stored: dict[int, tuple[int, int, object]],
) -> None:
    """Update the rows that exist (cheaper than replacing: only changed indexes are touched)
    and insert the others."""
    new, steady, moved = [], [], []
    steady_of = _steady_of[table]
    # The same id twice (no client sends it): all in one statement, so the last row wins.
    every = len({row[0] for row in rows}) < len(rows)
    for row in rows:
        ours = stored.get(row[0])
        if ours is None:
            new.append(row)
        elif not every and ours[2] == steady_of(row):
            steady.append(row)
        else:
            moved.append(row)
    for kind, batch in (("update steady", steady), ("update", moved), ("insert", new)):
        if batch:
            con.executemany(_sql(table, kind), batch)


def _stored(session: SyncSession, table: str, ids: list[int]) -> dict[int, tuple[int, int, object]]:
    """usn, mod and the steady columns of the rows of ``table`` with these ids."""
    columns = ", ".join(_STEADY[table])
    steady_of = itemgetter(*range(3, 3 + len(_STEADY[table])))
    found: dict[int, tuple[int, int, object]] = {}
    for start in range(0, len(ids), 500):
        marks, part = in_list(ids[start : start + 500])
        for row in session.con.execute(
            f"select id, usn, mod, {columns} from {table} where id in ({marks})", part
        ):
            found[row[0]] = (row[1], row[2], steady_of(row))
    return found


def _wins(
    session: SyncSession, stored: dict[int, tuple[int, int, object]], oid: int, mod: int
) -> bool:
    """An incoming row replaces ours unless ours changed since the client's last sync and is
    at least as new (on a tie, each side keeps its own copy, as the official server does)."""
    ours = stored.get(oid)
    return ours is None or ours[0] < session.client_usn or ours[1] < mod


def _notetype(session: SyncSession, ntid: int) -> tuple[int, int]:
    cached = session.notetypes.get(ntid)
    if cached is None:
        row = session.con.execute(
            "select config, (select count() from fields where ntid = id) from notetypes"
            " where id = ?",
            (ntid,),
        ).fetchone()
        if row is None:
            raise ApplyError(f"note refers to missing notetype {ntid}")
        cached = session.notetypes[ntid] = (max(row[1], 1), _sort_field_idx(row[0]))
    return cached


# Keyed by the notetype's whole config, so a changed notetype, or another user's, can never
# get a stale index; decoding the config was a tenth of a one-note sync's applyChunk.
@lru_cache(maxsize=128)
def _sort_field_idx(config: bytes) -> int:
    """The sort field's index in a notetype's protobuf config."""
    index: int = decode(schemas.NOTETYPE_CONFIG, config)["sort_field_idx"]
    return index


def _prepare_note(session: SyncSession, note: NoteRow) -> tuple[object, ...]:
    nid, guid, mid, mod, _usn, tags, flds = note
    field_count, sort_idx = _notetype(session, mid)
    flds = clean_fields(flds)
    fields = flds.split(FIELD_SEPARATOR)
    if len(fields) != field_count:
        raise ApplyError(f"note {nid} has {len(fields)} fields, its notetype {field_count}")
    sort_field, checksum = sort_field_and_checksum(fields, sort_idx)
    return (nid, guid, mid, mod, session.server_usn, tags, flds, sort_field, checksum)
