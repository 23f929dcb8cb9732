"""``sanityCheck2``: both sides count their rows; a difference forces a full sync."""

from __future__ import annotations

from ankisyncd.protocol.normal import Counts, SanityCheckResponse
from ankisyncd.storage.upload import USN_CHECKED_TABLES
from ankisyncd.sync.session import SyncSession

COUNTED = ("cards", "notes", "revlog", "graves", "notetypes", "decks", "deck_config")
GRAVES = COUNTED.index("graves")


def sanity_check(session: SyncSession, client: Counts) -> SanityCheckResponse:
    """Compare counts inside the open transaction; on a mismatch, undo the session's work."""
    con = session.con
    client = _without_graves(client)
    if any(
        con.execute(f"select 1 from {table} where usn = -1 limit 1").fetchone()
        for table in USN_CHECKED_TABLES
    ):
        response = SanityCheckResponse(False, client, None)
    else:
        counts = tuple(con.execute(f"select count() from {t}").fetchone()[0] for t in COUNTED)
        server = _without_graves(counts)
        response = SanityCheckResponse(server == client, client, server)
    if not response.ok:
        session.failed_sanity_check = True
        con.execute("rollback")
    return response


def _without_graves(counts: Counts) -> Counts:
    # Old clients may hold duplicate graves, so graves are not compared.
    return (*counts[:GRAVES], 0, *counts[GRAVES + 1 :])
