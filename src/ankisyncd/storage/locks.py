"""Per-user file locks shared by the server and the command line (separate processes).

The server takes a user's lock around each step that writes or replaces that user's files;
``snapshot restore``, ``backup`` and ``check --repair`` take it to change or copy them while the
server runs. ``flock`` locks are released by the kernel when their holder dies, so a crash
never leaves a user locked.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Not starting with the temporary-file prefix: start-up must not remove a lock in use.
COLLECTION_LOCK = ".ankisyncd-collection.lock"
MEDIA_LOCK = ".ankisyncd-media.lock"


def lock_path(folder: Path, name: str) -> str:
    """The lock file ``name`` of a user's ``folder``, as the functions below take it."""
    return os.path.join(folder, name)


def _open(path: str) -> int:
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o600)
    except FileNotFoundError:  # a new user's folder
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, flags, 0o600)


def try_lock(path: str) -> int | None:
    """Take the lock without waiting: its descriptor, or None when another process holds it."""
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def lock(path: str) -> int:
    """Wait for the lock and return its descriptor; ``unlock`` releases it."""
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


def unlock(fd: int) -> None:
    os.close(fd)  # closing the only descriptor releases the flock


@contextmanager
def user_lock(folder: Path, name: str = COLLECTION_LOCK) -> Iterator[None]:
    """Hold one of a user's locks (waiting for it) for the ``with`` block."""
    fd = lock(lock_path(folder, name))
    try:
        yield
    finally:
        unlock(fd)
