"""``start`` (and ``applyGraves``): begin a normal sync and exchange deletions."""

from __future__ import annotations

from ankisyncd.protocol.normal import Graves, StartRequest
from ankisyncd.storage.collection import CollectionConnection
from ankisyncd.sync.session import SyncSession

GRAVE_CARD, GRAVE_NOTE, GRAVE_DECK = 0, 1, 2


def start(
    collection: CollectionConnection, skey: str, req: StartRequest, *, wait: bool = True
) -> tuple[SyncSession, Graves]:
    """Open the session's transaction; return it and the server's deletions for the client.

    Without ``wait``, raise ``Busy`` instead of waiting for another connection's write."""
    session = SyncSession.begin(
        collection.get(), skey, req.client_usn, req.local_is_newer, wait=wait
    )
    try:
        rows = session.con.execute(
            "select oid, type from graves where usn >= ? order by type, oid", (req.client_usn,)
        ).fetchall()
        graves = Graves(
            cards=[oid for oid, kind in rows if kind == GRAVE_CARD],
            notes=[oid for oid, kind in rows if kind == GRAVE_NOTE],
            decks=[oid for oid, kind in rows if kind == GRAVE_DECK],
        )
        if req.graves is not None:
            apply_graves(session, req.graves)
    except BaseException:
        session.rollback()
        raise
    return session, graves


def apply_graves(session: SyncSession, graves: Graves) -> None:
    """Delete what the client deleted and remember each deletion for other devices."""
    con, usn = session.con, session.server_usn
    for table, kind, ids in (
        ("notes", GRAVE_NOTE, graves.notes),
        ("cards", GRAVE_CARD, graves.cards),
        ("decks", GRAVE_DECK, graves.decks),
    ):
        con.executemany(f"delete from {table} where id = ?", ((i,) for i in ids))
        con.executemany(
            "insert or ignore into graves (oid, type, usn) values (?, ?, ?)",
            ((i, kind, usn) for i in ids),
        )
