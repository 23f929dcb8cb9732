"""``begin`` and ``mediaChanges``: what changed on the server since the client's last usn."""

from __future__ import annotations

from ankisyncd.media.db import MediaStore

MAX_CHANGES = 1000


def media_changes(store: MediaStore, last_usn: int) -> list[tuple[str, int, str]]:
    """Up to 1000 ``[name, usn, sha1 or ""]`` rows after ``last_usn``, in usn order."""
    with store.open() as con:
        return [
            (name, usn, sha1)
            for name, usn, sha1 in con.execute(
                "select fname, usn, case when size > 0 then lower(hex(csum)) else '' end"
                " from media where usn > ? order by usn limit ?",
                (last_usn, MAX_CHANGES),
            )
        ]
