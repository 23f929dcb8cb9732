"""``downloadFiles``: the first files of a request, about 2.5 MiB at a time."""

from __future__ import annotations

import errno
import os
import stat

from ankisyncd.media.db import MediaStore, store_totals
from ankisyncd.media.names import media_path
from ankisyncd.media.zip import write_download
from ankisyncd.storage.sqlite import in_list

BATCH_BYTES = 2_621_440  # stop after the file that crosses 2.5 MiB
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
# What opening a name that is not (or no longer) a regular file fails with.
_NOT_A_FILE = {errno.ENOENT, errno.ELOOP, errno.ENOTDIR}


class FileGone(LookupError):
    """A requested file is deleted or missing: the client must fetch changes again (409)."""


def download_files(store: MediaStore, names: list[str]) -> bytes:
    """A zip with the first N >= 1 requested files, in request order (protocol/media.py
    limits how many names a request may carry)."""
    chosen = []
    with store.open() as con:
        marks, padded = in_list(names)
        sizes: dict[str, int] = dict(
            con.execute(f"select fname, size from media where fname in ({marks})", padded)
        )
        total = 0
        for name in names:
            size = sizes.get(name, 0)
            if size == 0:
                raise FileGone(f"{name!r} is not on the server")
            data = _read_regular_file(media_path(store.media_dir, name))
            if data is None:
                # Forget it quietly rather than spread a deletion the user never made.
                con.execute("delete from media where fname = ?", (name,))
                store_totals(con)
                raise FileGone(f"{name!r} is missing on disk; forgotten")
            chosen.append((name, data))
            total += size
            if total > BATCH_BYTES:
                break
    return write_download(chosen)


def _read_regular_file(path: str) -> bytes | None:
    """The file's content; None if it is missing, a symlink or not a regular file."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        if exc.errno in _NOT_A_FILE:
            return None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with open(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)
