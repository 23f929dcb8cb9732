"""applyChunk on a real collection: inserts, updates with and without their indexed columns."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, cast

from ankisyncd.protocol.normal import Chunk
from ankisyncd.storage.legacy import schemas
from ankisyncd.storage.legacy.proto import decode, encode
from ankisyncd.sync.chunks import apply_chunk, next_chunk
from ankisyncd.sync.notes import field_checksum
from ankisyncd.sync.session import SyncSession
from tests.support.stock import notetype_id, stock_collection

NID, CID1, CID2, RID = 1_700_000_000_001, 1_700_000_000_002, 1_700_000_000_003, 1_700_000_000_004
CARD_COLUMNS = "id, nid, did, ord, mod, usn, type, queue, due, ivl, factor, reps, lapses, left,"
CARD_COLUMNS += " odue, odid, flags, data"


def _card(cid: int, did: int, mod: int, due: int, odid: int = 0) -> tuple[object, ...]:
    return (cid, NID, did, 0, mod, -1, 2, 2, due, 3, 2500, 4, 0, 0, 0, odid, 0, "{}")


def test_rows_are_inserted_then_updated_whichever_columns_changed(tmp_path: Path) -> None:
    con = stock_collection(tmp_path)
    con.execute("update col set usn = 7")
    basic, two_sided = notetype_id(con, "Basic"), notetype_id(con, "Basic (and reversed card)")
    session = SyncSession.begin(con, "skey", 0, False)
    note = (NID, "guid", basic, 100, -1, " t ", "<b>front</b>\x1fback")
    apply_chunk(session, Chunk(False, [], [_card(CID1, 1, 100, 5), _card(CID2, 1, 100, 5)], [note]))
    # Card 1 moves to a filtered deck (did and odid change), card 2 is only rescheduled; the
    # note changes notetype (same field count) and its first field.
    moved, rescheduled = _card(CID1, 9, 200, 6, odid=1), _card(CID2, 1, 200, 8)
    note = (NID, "guid2", two_sided, 200, -1, "", "changed &amp; more\x1fback")
    revlog = (RID, CID2, -1, 3, 10, 5, 2500, 6000, 1)
    apply_chunk(session, Chunk(True, [revlog], [moved, rescheduled], [note]))
    con.execute("commit")

    cards = con.execute(f"select {CARD_COLUMNS} from cards order by id").fetchall()
    assert cards == [(*c[:5], 7, *c[6:]) for c in (moved, rescheduled)]
    notes = con.execute("select * from notes").fetchall()
    sort_field = "changed & more"
    assert notes == [
        (
            NID,
            "guid2",
            two_sided,
            200,
            7,
            "",
            note[6],
            sort_field,
            field_checksum(sort_field),
            0,
            "",
        )
    ]
    assert con.execute("select * from revlog").fetchall() == [(*revlog[:2], 7, *revlog[3:])]
    # The indexes agree with the rows (a left-out column would leave stale entries).
    assert con.execute("pragma integrity_check").fetchone() == ("ok",)
    assert con.execute("select id from cards where did = 9 and odid = 1").fetchall() == [(CID1,)]
    assert con.execute("select id from notes where mid = ?", (two_sided,)).fetchall() == [(NID,)]
    con.close()


def test_an_edit_keeping_the_first_field_and_a_repeated_id(tmp_path: Path) -> None:
    con = stock_collection(tmp_path)
    basic = notetype_id(con, "Basic")
    session = SyncSession.begin(con, "skey", 0, False)
    other = NID + 10
    first = [
        (NID, "g", basic, 100, -1, "", "front\x1fback"),
        (other, "h", basic, 100, -1, "", "x\x1fy"),
    ]
    apply_chunk(session, Chunk(False, cards=[_card(CID1, 1, 100, 5)], notes=first))
    # Note 1: tags and second field only (same checksum); the card rescheduled.
    note = (NID, "g", basic, 200, -1, " new ", "front\x1fnew back")
    apply_chunk(session, Chunk(False, cards=[_card(CID1, 1, 200, 4)], notes=[note]))
    # Note 2 and the card twice in one chunk: the last row wins, as when applied one by one.
    twice = [(other, "h", basic, m, -1, "", f"v{m}\x1fy") for m in (300, 400)]
    cards = [_card(CID1, 3, 300, 5), _card(CID1, 1, 400, 6)]  # moved, then back
    apply_chunk(session, Chunk(True, cards=cards, notes=twice))
    con.execute("commit")
    notes = con.execute("select id, mod, tags, flds, sfld, csum from notes order by id").fetchall()
    assert notes == [
        (NID, 200, " new ", "front\x1fnew back", "front", field_checksum("front")),
        (other, 400, "", "v400\x1fy", "v400", field_checksum("v400")),
    ]
    assert con.execute("select did, due from cards").fetchall() == [(1, 6)]
    assert con.execute("pragma integrity_check").fetchone() == ("ok",)
    con.close()


def test_a_changed_sort_field_is_used_at_once(tmp_path: Path) -> None:
    """The sort field's index is cached by the notetype's config: a notetype changed in
    place (same id and mtime) is never read from a stale entry."""
    con = stock_collection(tmp_path)
    (basic, blob) = con.execute("select id, config from notetypes where name = 'Basic'").fetchone()
    sort_fields = []
    for mod, index in enumerate((0, 1, 0), 100):
        config = encode(
            schemas.NOTETYPE_CONFIG,
            decode(schemas.NOTETYPE_CONFIG, blob) | {"sort_field_idx": index},
        )
        con.execute("update notetypes set config = ? where id = ?", (config, basic))
        session = SyncSession.begin(con, "skey", 0, False)
        note = (NID, "g", basic, mod, -1, "", "front\x1fback")
        apply_chunk(session, Chunk(True, notes=[note]))
        con.execute("commit")
        sort_fields += con.execute("select sfld from notes").fetchone()
    assert sort_fields == ["front", "back", "front"]
    con.close()


class _Recording:
    """A connection that notes the text of every statement it is given."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con, self.texts = con, set[str]()

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self.texts.add(sql)
        return self.con.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self.texts.add(sql)
        return self.con.executemany(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)


def test_syncs_reuse_a_few_statement_texts(tmp_path: Path) -> None:
    """A kept connection caches its 128 latest statements, one per text: texts that change
    with the usn or the number of rows would fill it with statements used once."""
    con = stock_collection(tmp_path)
    basic = notetype_id(con, "Basic")
    recording = _Recording(con)
    first_half: set[str] = set()
    for sync in range(1, 41):
        if sync == 21:
            first_half = set(recording.texts)
        con.execute("update col set usn = ?", (sync,))
        session = SyncSession.begin(cast(sqlite3.Connection, recording), "skey", sync - 1, False)
        count = sync % 13 + 1  # new rows, and as many of the last sync's again
        ids = [NID + 100 * sync + i for i in range(count)]
        again = [NID + 100 * (sync - 1) + i for i in range((sync - 1) % 13 + 1)] if sync > 1 else []
        notes = [(i, f"g{i}", basic, sync, -1, "", f"{sync}\x1fb") for i in ids + again]
        cards = [(n[0] + 50, n[0], *_card(0, 1, sync, sync)[2:]) for n in notes]
        revlog = [(i + 70, i + 50, -1, 3, 10, 5, 2500, 6000, 1) for i in ids]
        while not next_chunk(session).done:
            pass
        apply_chunk(session, Chunk(True, revlog, cards, notes))
        con.execute("commit")
    (changed,) = con.execute("select count() from notes where usn = 40").fetchone()
    assert changed == 40 % 13 + 1 + 39 % 13 + 1
    # The same texts again, whatever the usn: none used by one sync only.
    assert recording.texts == first_half
    # Five lookups by id (cards, notes and review log sent; cards and notes stored) of 1 to 27
    # ids, padded to the powers of two up to 32: six texts each at most.
    assert len([t for t in recording.texts if " in (" in t]) <= 5 * 6
    con.close()
