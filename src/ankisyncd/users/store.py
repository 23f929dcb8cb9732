"""The auth database: users with argon2id hashes, and the host keys issued to their devices.

``ankisyncd user ...`` in another process changes what a running server sees at once, with
no restart: SQLite's ``data_version`` tells the server when another process wrote.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ankisyncd.errors import UserError
from ankisyncd.storage.paths import check_new_username, check_username
from ankisyncd.storage.sqlite import Connection, connect, rollback_after, use_wal
from ankisyncd.users.hashing import hash_password
from ankisyncd.users.hostkey import key_digest

SCHEMA_VERSION = 1
_SCHEMA = """
create table if not exists users (
    name text primary key,
    password_hash text not null,
    created integer not null,
    modified integer not null
);
create table if not exists host_keys (
    digest text primary key,
    user text not null references users(name) on delete cascade,
    created integer not null
);
create index if not exists host_keys_user on host_keys(user);
"""


@dataclass(frozen=True)
class UserRecord:
    name: str
    created: int
    modified: int
    devices: int  # host keys currently valid


class UserStore:
    """Users and host keys in one SQLite file, through one connection used by one thread at
    a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._con: Connection | None = None
        self._lock = threading.Lock()

    @contextmanager
    def _db(self) -> Iterator[Connection]:
        with self._lock:
            if self._con is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                con = connect(self.path)
                con.execute("pragma foreign_keys = on")
                if con.execute("pragma user_version").fetchone()[0] != SCHEMA_VERSION:
                    use_wal(con)
                    con.executescript(_SCHEMA)
                    con.execute(f"pragma user_version = {SCHEMA_VERSION}")
                self._con = con
            try:
                yield self._con
            finally:
                if self._con.exclusive:  # opened on a full disk: lock nobody out
                    self._con.close()
                    self._con = None

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def data_version(self) -> int:
        """Changes whenever another connection (another process) has written."""
        with self._db() as con:
            return int(con.execute("pragma data_version").fetchone()[0])

    def add(self, name: str, password: str, reserved: Iterable[str] = ()) -> None:
        """Add a user; a name that folds to an existing user's or a ``reserved`` one (the
        ``SYNC_USERn`` names) is refused."""
        check_username(name)
        _check_password(password)
        password_hash = hash_password(password)
        now = int(time.time())
        with self._db() as con:
            con.execute("begin immediate")  # no other ``user add`` between check and insert
            try:
                names = [row[0] for row in con.execute("select name from users")]
                check_new_username(name, [*names, *reserved])
                con.execute(
                    "insert into users (name, password_hash, created, modified) values (?,?,?,?)",
                    (name, password_hash, now, now),
                )
                con.execute("commit")
            except BaseException:
                rollback_after(con)
                raise

    def set_password(self, name: str, password: str) -> None:
        """Change a password; every host key of the user stops working."""
        _check_password(password)
        password_hash = hash_password(password)
        with self._db() as con:
            con.execute("begin immediate")
            changed = con.execute(
                "update users set password_hash = ?, modified = ? where name = ?",
                (password_hash, int(time.time()), name),
            ).rowcount
            con.execute("delete from host_keys where user = ?", (name,))
            con.execute("commit")
        if not changed:
            raise UserError(f"no user {name!r}")

    def remove(self, name: str) -> None:
        """Delete a user and their host keys; their data folder is left alone."""
        with self._db() as con:
            if not con.execute("delete from users where name = ?", (name,)).rowcount:
                raise UserError(f"no user {name!r}")

    def list(self) -> list[UserRecord]:
        with self._db() as con:
            rows = con.execute(
                "select name, created, modified, "
                "(select count() from host_keys where user = name) from users order by name"
            ).fetchall()
        return [UserRecord(*row) for row in rows]

    def password_hash(self, name: str) -> str | None:
        with self._db() as con:
            row = con.execute("select password_hash from users where name = ?", (name,)).fetchone()
        return row[0] if row else None

    def remember_key(self, name: str, key: str) -> None:
        with self._db() as con:
            con.execute(
                "insert or ignore into host_keys (digest, user, created) values (?,?,?)",
                (key_digest(key), name, int(time.time())),
            )

    def user_for_key(self, key: str) -> str | None:
        with self._db() as con:
            row = con.execute(
                "select user from host_keys where digest = ?", (key_digest(key),)
            ).fetchone()
        return row[0] if row else None


def _check_password(password: str) -> None:
    if not password:
        raise UserError("the password is empty")
