"""Logging in and recognising host keys, over both kinds of users.

Users come from the auth database and, for drop-in use in place of the official server,
from ``SYNC_USERn`` variables. A name defined in both is taken from the variables.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ankisyncd.errors import ConfigError, UserError
from ankisyncd.storage.paths import check_new_username, check_username
from ankisyncd.users.hashing import (
    burn_verification,
    check_phc,
    hash_password,
    verify_password,
)
from ankisyncd.users.hostkey import key_digest, new_host_key, official_host_key
from ankisyncd.users.store import UserStore

log = logging.getLogger(__name__)
# How long a host key confirmed from the database is trusted without asking SQLite again.
RECHECK_SECONDS = 1.0
# A device's last use is written at most this often: not a write per request.
RECORD_USE_SECONDS = 60.0


@dataclass(frozen=True)
class EnvAccount:
    name: str
    password_hash: str
    host_key: str  # the key the official server issues, so switched devices stay logged in


class Accounts:
    """Answers "who is this?" for logins and for host keys."""

    def __init__(self, store: UserStore, env_accounts: dict[str, EnvAccount]) -> None:
        self.store = store
        self.env_accounts = env_accounts
        self._env_by_key = {key_digest(a.host_key): a.name for a in env_accounts.values()}
        # Host keys seen recently, dropped whenever the auth database changes underneath.
        self._known: dict[str, str] = {}
        self._version = -1
        self._stamp: tuple[object, ...] = ()
        self._checked_at = 0.0
        # Taken around each database lookup and cache update, so that a lookup that read the
        # database before a revocation cannot put the old key back after the cache was cleared.
        self._lookup = threading.Lock()
        # Last use of each key since the previous write: digest -> (time, client, address).
        self._uses: dict[str, tuple[int, str, str]] = {}
        self._written: dict[str, float] = {}  # digest -> when its use was last written

    @classmethod
    def build(cls, auth_db: Path, env_users: list[tuple[str, str, bool, str]]) -> Accounts:
        """Set up from the auth database path and ``(name, secret, hashed, source)`` rows."""
        accounts: dict[str, EnvAccount] = {}
        for name, secret, hashed, source in env_users:
            try:
                check_username(name)
                check_new_username(name, accounts)
                if hashed:
                    check_phc(secret)
            except (UserError, ValueError) as exc:
                raise ConfigError(f"{source} (env): {exc}") from None
            if not hashed and not secret:
                raise ConfigError(f"{source} (env): the password is empty")
            password_hash = secret if hashed else hash_password(secret)
            accounts[name] = EnvAccount(name, password_hash, official_host_key(f"{name}:{secret}"))
        store = UserStore(auth_db)
        if accounts and auth_db.exists():
            # A database user of the same name is shadowed (documented); a folded twin would
            # share its folder.
            for stored in store.list():
                try:
                    check_new_username(stored.name, [n for n in accounts if n != stored.name])
                except UserError as exc:
                    raise ConfigError(f"auth database and SYNC_USERn (env): {exc}") from None
        return cls(store, accounts)

    def login(self, name: str, password: str, client: str = "", address: str = "") -> str | None:
        """Return a host key for valid credentials, else None; equal work for unknown names."""
        env = self.env_accounts.get(name)
        if env is not None:
            return env.host_key if verify_password(env.password_hash, password) else None
        stored = self.store.password_hash(name)
        if stored is None:
            burn_verification(password)
            return None
        if not verify_password(stored, password):
            return None
        key = new_host_key()
        self.store.remember_key(name, key, client, address)
        return key

    def cached_user(self, key: str) -> str | None:
        """A recently confirmed user for ``key``, without touching SQLite (None: look it up).

        Cheap enough for the event loop. An entry is trusted while the database files are
        unchanged and for at most ``RECHECK_SECONDS`` after the last real check.
        """
        digest = key_digest(key)
        name = self._env_by_key.get(digest)
        if name is not None or not key:
            return name
        if time.monotonic() - self._checked_at > RECHECK_SECONDS:
            return None
        if self.store.change_stamp() != self._stamp:
            return None
        return self._known.get(digest)

    def user_for_key(self, key: str) -> str | None:
        """The user a host key belongs to, or None."""
        if not key:
            return None
        digest = key_digest(key)
        name = self._env_by_key.get(digest)
        if name is not None:
            return name
        with self._lookup:
            stamp = self.store.change_stamp()
            version = self.store.data_version()
            if version != self._version or stamp != self._stamp:
                self._known.clear()
                self._version, self._stamp = version, stamp
            self._checked_at = time.monotonic()
            name = self._known.get(digest)
            if name is None:
                name = self.store.user_for_key(key)
                if name is None or name in self.env_accounts:
                    return None  # the variables own such a name; database keys do not count
                self._known[digest] = name
            return name

    def note_use(self, key: str, client: str, address: str) -> None:
        """Remember that an accepted key was used now (cheap: memory only, for the loop)."""
        digest = key_digest(key)
        if digest not in self._env_by_key:
            self._uses[digest] = (int(time.time()), client, address)

    def write_uses(self) -> None:
        """Store the last use of keys not written for ``RECORD_USE_SECONDS``. Bookkeeping only:
        a failure (a read-only data root, say) is logged and never fails a request."""
        now = time.monotonic()
        uses = self._uses.copy()  # the event loop adds entries meanwhile
        due = [d for d in uses if now - self._written.get(d, -1e9) >= RECORD_USE_SECONDS]
        if not due:
            return
        batch = [(d, *self._uses.pop(d, uses[d])) for d in due]
        for digest in due:
            self._written[digest] = now
        for digest in [d for d, at in self._written.items() if now - at > RECORD_USE_SECONDS]:
            del self._written[digest]  # bounded: only keys used within the last minute stay
        try:
            self.store.record_use(batch)
        except (sqlite3.Error, OSError) as exc:
            log.warning("could not record when %d devices were last seen: %s", len(batch), exc)
