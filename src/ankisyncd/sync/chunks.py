"""``chunk`` and ``applyChunk``: review log, cards and notes, 250 rows at a time."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ankisyncd.protocol.normal import Chunk
from ankisyncd.protocol.rows import NoteRow
from ankisyncd.storage.legacy import schemas
from ankisyncd.storage.legacy.proto import decode
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


def next_chunk(session: SyncSession) -> Chunk:
    """The next rows changed on the server since the client's last sync."""
    con = session.con
    if session.pending is None:
        # Taken once, before the client pushes its own cards and notes.
        session.pending = [
            (table, oid)
            for table in ("revlog", "cards", "notes")
            for (oid,) in con.execute(
                f"select id from {table} where usn >= ?", (session.client_usn,)
            )
        ]
    batch = session.pending[session.sent : session.sent + CHUNK_SIZE]
    session.sent += len(batch)
    chunk = Chunk(done=len(batch) < CHUNK_SIZE)
    for table in ("revlog", "cards", "notes"):
        ids = [oid for t, oid in batch if t == table]
        rows = []
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            rows += con.execute(
                f"select {_COLUMNS[table]} from {table} where id in ({','.join('?' * len(part))})",
                part,
            ).fetchall()
        getattr(chunk, table).extend(tuple(r) for r in rows)
    return chunk


def apply_chunk(session: SyncSession, chunk: Chunk) -> None:
    """Store the client's rows: review log first, then cards, then notes."""
    con, usn = session.con, session.server_usn
    con.executemany(
        "insert or ignore into revlog (id, cid, usn, ease, ivl, lastIvl, factor, time, type)"
        " values (?,?,?,?,?,?,?,?,?)",
        [(r[0], r[1], usn, *r[3:]) for r in chunk.revlog],
    )
    stored = _stored(session, "cards", [c[0] for c in chunk.cards])
    cards = [(*c[:5], usn, *c[6:]) for c in chunk.cards if _wins(session, stored, c[0], c[4])]
    _upsert(con, "cards", _COLUMNS["cards"].split(", "), cards, stored)
    stored = _stored(session, "notes", [n[0] for n in chunk.notes])
    notes = [_prepare_note(session, n) for n in chunk.notes if _wins(session, stored, n[0], n[3])]
    _upsert(con, "notes", _NOTE_COLUMNS, notes, stored)


_NOTE_COLUMNS = ["id", "guid", "mid", "mod", "usn", "tags", "flds", "sfld", "csum", "flags", "data"]


def _upsert(
    con: sqlite3.Connection,
    table: str,
    columns: list[str],
    rows: Sequence[tuple[object, ...]],
    stored: dict[int, tuple[int, int]],
) -> None:
    """Update the rows that exist (cheaper than replacing: only changed indexes are touched)
    and insert the others."""
    if table == "notes":
        rows = [(*r, 0, "") for r in rows]  # flags and data are always 0 and ""
    existing = [(*r[1:], r[0]) for r in rows if r[0] in stored]
    new = [r for r in rows if r[0] not in stored]
    assignments = ", ".join(f"{c} = ?" for c in columns[1:])
    con.executemany(f"update {table} set {assignments} where id = ?", existing)
    con.executemany(
        f"insert into {table} ({', '.join(columns)}) values ({','.join('?' * len(columns))})",
        new,
    )


def _stored(session: SyncSession, table: str, ids: list[int]) -> dict[int, tuple[int, int]]:
    """usn and mod of the rows of ``table`` with these ids."""
    found: dict[int, tuple[int, int]] = {}
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        for oid, usn, mod in session.con.execute(
            f"select id, usn, mod from {table} where id in ({','.join('?' * len(part))})", part
        ):
            found[oid] = (usn, mod)
    return found


def _wins(session: SyncSession, stored: dict[int, tuple[int, int]], oid: int, mod: int) -> bool:
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
        config = decode(schemas.NOTETYPE_CONFIG, row[0])
        cached = session.notetypes[ntid] = (max(row[1], 1), config["sort_field_idx"])
    return cached


def _prepare_note(session: SyncSession, note: NoteRow) -> tuple[object, ...]:
    nid, guid, mid, mod, _usn, tags, flds = note
    field_count, sort_idx = _notetype(session, mid)
    flds = clean_fields(flds)
    fields = flds.split(FIELD_SEPARATOR)
    if len(fields) != field_count:
        raise ApplyError(f"note {nid} has {len(fields)} fields, its notetype {field_count}")
    sort_field, checksum = sort_field_and_checksum(fields, sort_idx)
    return (nid, guid, mid, mod, session.server_usn, tags, flds, sort_field, checksum)
