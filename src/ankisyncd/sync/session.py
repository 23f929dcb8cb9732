"""The state of one normal sync, kept between requests, with its open transaction."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from ankisyncd.storage.sqlite import BUSY_TIMEOUT_MS, rollback_after


class Busy(Exception):
    """Another connection is writing the collection (only when told not to wait)."""


@dataclass
class SyncSession:
    """Everything from ``start`` to ``finish`` is one transaction on ``con``."""

    skey: str
    con: sqlite3.Connection
    server_usn: int
    client_usn: int
    client_is_newer: bool
    # Ids that ``chunk`` sends, taken on its first call: (table, id) in sending order.
    pending: list[tuple[str, int]] | None = None
    sent: int = 0
    failed_sanity_check: bool = False
    notetypes: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> fields, sortf

    @classmethod
    def begin(
        cls,
        con: sqlite3.Connection,
        skey: str,
        client_usn: int,
        client_is_newer: bool,
        *,
        wait: bool = True,
    ) -> SyncSession:
        """Open the write transaction; without ``wait``, raise Busy rather than wait for it."""
        if wait:
            con.execute("begin immediate")
        else:
            _begin_now(con)
        try:
            (usn,) = con.execute("select usn from col").fetchone()
        except BaseException:
            rollback_after(con)
            raise
        return cls(skey, con, usn, client_usn, client_is_newer)

    def commit(self) -> None:
        """Make everything since ``start`` durable (the commit waits for the disk)."""
        self.con.execute("commit")

    def rollback(self) -> None:
        """Undo everything since ``start``; the connection stays open for the next request."""
        rollback_after(self.con)
        self.release_memory()

    def release_memory(self) -> None:
        """Give back the page cache the sync filled (up to 2 MiB), so that the connections kept
        open hold memory only while their users sync."""
        self.con.execute("pragma shrink_memory")


def _begin_now(con: sqlite3.Connection) -> None:
    con.execute("pragma busy_timeout = 0")
    try:
        con.execute("begin immediate")
    except sqlite3.OperationalError as exc:
        if not con.in_transaction and "locked" in str(exc):
            raise Busy("collection locked by another connection") from exc
        raise
    finally:
        con.execute(f"pragma busy_timeout = {BUSY_TIMEOUT_MS}")
