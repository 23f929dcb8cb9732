"""``finish``: commit the session; the answer is the collection's new ``mod``."""

from __future__ import annotations

from ankisyncd.storage.collection import now_ms
from ankisyncd.sync.session import SyncSession


def finish(session: SyncSession) -> int:
    """Stamp ls, usn and mod, commit, and return exactly the mod stored."""
    now = now_ms()
    session.con.execute(
        "update col set ls = ?, usn = ?, mod = ?", (now, session.server_usn + 1, now)
    )
    session.con.execute("commit")
    session.release_memory()
    return now
