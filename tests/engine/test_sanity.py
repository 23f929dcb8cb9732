"""sanityCheck2 on a real collection: the server's counts, and rows still waiting for a usn."""

from __future__ import annotations

from pathlib import Path

import pytest

from ankisyncd.protocol.normal import Chunk
from ankisyncd.storage.upload import USN_CHECKED_TABLES
from ankisyncd.sync.chunks import apply_chunk
from ankisyncd.sync.sanity import sanity_check
from ankisyncd.sync.session import SyncSession
from tests.support.stock import notetype_id, stock_collection

NID, CID, RID = 1_700_000_000_001, 1_700_000_000_002, 1_700_000_000_003


def _session(tmp_path: Path) -> SyncSession:
    """A session on a collection with a row in every table the check looks at."""
    con = stock_collection(tmp_path)
    basic = notetype_id(con, "Basic")
    session = SyncSession.begin(con, "skey", 0, False)
    card = (CID, NID, 1, 0, 100, -1, 2, 2, 5, 3, 2500, 4, 0, 0, 0, 0, 0, "{}")
    revlog = (RID, CID, -1, 3, 10, 5, 2500, 6000, 1)
    note = (NID, "guid", basic, 100, -1, "", "front\x1fback")
    apply_chunk(session, Chunk(True, [revlog], [card], [note]))
    con.execute("insert into graves (oid, type, usn) values (9, 0, 0), (9, 1, 0)")
    con.execute("insert into tags (tag, usn, collapsed, config) values ('t', 0, 1, null)")
    return session


def _counts(session: SyncSession) -> tuple[int, ...]:
    tables = ("cards", "notes", "revlog", "graves", "notetypes", "decks", "deck_config")
    return tuple(session.con.execute(f"select count() from {t}").fetchone()[0] for t in tables)


def test_equal_counts_pass_and_graves_are_not_compared(tmp_path: Path) -> None:
    session = _session(tmp_path)
    counts = _counts(session)
    assert counts[:4] == (1, 1, 1, 2)
    client = (*counts[:3], 0, *counts[4:])  # a client holding no graves
    response = sanity_check(session, client)
    assert response.ok and response.server == client
    assert session.con.in_transaction and not session.failed_sanity_check
    session.rollback()


def test_a_different_count_fails_and_undoes_the_session(tmp_path: Path) -> None:
    session = _session(tmp_path)
    counts = _counts(session)
    response = sanity_check(session, (*counts[:5], counts[5] + 1, counts[6]))
    assert not response.ok and response.server == (*counts[:3], 0, *counts[4:])
    assert session.failed_sanity_check and not session.con.in_transaction
    assert session.con.execute("select count() from notes").fetchone() == (0,)


@pytest.mark.parametrize("table", USN_CHECKED_TABLES)
def test_a_row_waiting_for_a_usn_fails_the_check(tmp_path: Path, table: str) -> None:
    session = _session(tmp_path)
    counts = _counts(session)
    session.con.execute(f"update {table} set usn = -1")
    response = sanity_check(session, counts)
    assert not response.ok and response.server is None
    assert session.failed_sanity_check and not session.con.in_transaction
