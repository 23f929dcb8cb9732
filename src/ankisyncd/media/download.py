"""``downloadFiles``: the first files of a request, about 2.5 MiB at a time."""

from __future__ import annotations

from ankisyncd.media.db import MediaStore
from ankisyncd.media.names import media_path
from ankisyncd.media.zip import MAX_ENTRIES, write_download

BATCH_BYTES = 2_621_440  # stop after the file that crosses 2.5 MiB


class FileGone(LookupError):
    """A requested file is deleted or missing: the client must fetch changes again (409)."""


class TooManyFiles(ValueError):
    pass


def download_files(store: MediaStore, names: list[str]) -> bytes:
    """A zip with the first N >= 1 requested files, in request order."""
    if len(names) > MAX_ENTRIES:
        raise TooManyFiles(f"more than {MAX_ENTRIES} files requested")
    chosen = []
    with store.open() as con:
        total = 0
        for name in names:
            row = con.execute("select size from media where fname = ?", (name,)).fetchone()
            if row is None or row[0] == 0:
                raise FileGone(f"{name!r} is not on the server")
            path = media_path(store.media_dir, name)
            if not path.is_file() or path.is_symlink():
                # Forget it quietly rather than spread a deletion the user never made.
                con.execute("delete from media where fname = ?", (name,))
                con.execute(
                    "update meta set total_bytes = (select coalesce(sum(size), 0) from media),"
                    " total_nonempty_files = (select count() from media where size > 0)"
                )
                raise FileGone(f"{name!r} is missing on disk; forgotten")
            chosen.append((name, path))
            total += row[0]
            if total > BATCH_BYTES:
                break
    return write_download(chosen)
