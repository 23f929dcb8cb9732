"""``finish``: stamp the collection; the answer is the new ``mod``.

The stamp is one row, written as the other small steps are (on the event loop); the session's
commit, which waits for the disk, follows in a worker thread (``server/collection.py``).
"""

from __future__ import annotations

from ankisyncd.storage.collection import now_ms
from ankisyncd.sync.session import SyncSession


def finish(session: SyncSession) -> int:
    """Stamp ls, usn and mod (``SyncSession.commit`` follows), and return exactly the mod
    stored."""
    now = now_ms()
    session.con.execute(
        "update col set ls = ?, usn = ?, mod = ?", (now, session.server_usn + 1, now)
    )
    return now
