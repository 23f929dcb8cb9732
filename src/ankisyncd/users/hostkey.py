"""Host keys: the only credential a client sends after logging in."""

from __future__ import annotations

import functools
import hashlib
import secrets


def new_host_key() -> str:
    """A fresh random key, 40 hex digits like the official server's."""
    return secrets.token_hex(20)


def official_host_key(user_line: str) -> str:
    """The key the official server issues: SHA-1 of the whole ``SYNC_USERn`` value."""
    return hashlib.sha1(user_line.encode()).hexdigest()


@functools.lru_cache(maxsize=4096)  # every request looks its key up, some twice
def key_digest(key: str) -> str:
    """What we store and look up instead of the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()
