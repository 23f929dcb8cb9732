"""``mediaSanity``: does the client hold as many files as the server?"""

from __future__ import annotations

from ankisyncd.media.db import MediaStore


def media_sanity(store: MediaStore, local: int) -> str:
    """``"OK"`` when the counts of present files agree, else ``"mediaSanity"``."""
    with store.open() as con:
        (count,) = con.execute("select count() from media where size > 0").fetchone()
    return "OK" if count == local else "mediaSanity"
