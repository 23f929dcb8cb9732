"""The auth database: users with argon2id hashes, and the host keys issued to their devices.

``ankisyncd user ...`` in another process changes what a running server sees at once, with
no restart: SQLite's ``data_version`` tells the server when another process wrote.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ankisyncd.errors import UserError
from ankisyncd.storage.paths import check_new_username, check_username
from ankisyncd.storage.sqlite import Connection, connect, file_stamp, rollback_after, use_wal
from ankisyncd.users.hashing import hash_password
from ankisyncd.users.hostkey import key_digest

SCHEMA_VERSION = 2
_SCHEMA = """
create table if not exists users (
    name text primary key,
    password_hash text not null,
    created integer not null,
    modified integer not null
);
create table if not exists devices (
    id integer primary key autoincrement,  -- never reused: a revoked id stays revoked
    digest text not null unique,
    user text not null references users(name) on delete cascade,
    created integer not null,
    last_seen integer,
    client text,
    address text
);
create index if not exists devices_user on devices(user);
"""
# Version 1 kept host keys without an id or last use.
_FROM_V1 = """
insert or ignore into devices (digest, user, created) select digest, user, created from host_keys
order by created;
drop table host_keys;
"""


@dataclass(frozen=True)
class DeviceRecord:
    """One host key issued at a login; ``last_*`` are None until the key is first used."""

    id: int
    created: int
    last_seen: int | None
    client: str | None
    address: str | None


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
        self.marker = path.with_name(path.name + "-keys-removed")
        self._con: Connection | None = None
        self._lock = threading.Lock()

    @contextmanager
    def _db(self) -> Iterator[Connection]:
        with self._lock:
            try:
                yield self._open()
            finally:
                self._close_exclusive()

    @contextmanager
    def _reader(self) -> Iterator[Connection | None]:
        """The connection, or None while there is no database: lookups on behalf of
        unauthenticated requests never create the file."""
        with self._lock:
            try:
                yield self._open() if self._con is not None or self.path.exists() else None
            finally:
                self._close_exclusive()

    def _close_exclusive(self) -> None:
        if self._con is not None and self._con.exclusive:  # opened on a full disk
            self._con.close()  # lock nobody out
            self._con = None

    def _open(self) -> Connection:
        if self._con is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = connect(self.path)
            try:
                con.execute("pragma foreign_keys = on")
                version = con.execute("pragma user_version").fetchone()[0]
                if version != SCHEMA_VERSION:
                    _migrate(con, version)
            except BaseException:
                con.close()
                raise
            self._con = con
        return self._con

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def data_version(self) -> int:
        """Changes whenever another connection (another process) has written."""
        with self._reader() as con:
            return -1 if con is None else int(con.execute("pragma data_version").fetchone()[0])

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
            con.execute("delete from devices where user = ?", (name,))
            con.execute("commit")
        self._keys_changed()
        if not changed:
            raise UserError(f"no user {name!r}")

    def remove(self, name: str) -> None:
        """Delete a user and their host keys; their data folder is left alone."""
        with self._db() as con:
            removed = con.execute("delete from users where name = ?", (name,)).rowcount
        self._keys_changed()
        if not removed:
            raise UserError(f"no user {name!r}")

    def list(self) -> list[UserRecord]:
        with self._reader() as con:
            if con is None:
                return []
            rows = con.execute(
                "select name, created, modified, "
                "(select count() from devices where user = name) from users order by name"
            ).fetchall()
        return [UserRecord(*row) for row in rows]

    def password_hash(self, name: str) -> str | None:
        with self._reader() as con:
            if con is None:
                return None
            row = con.execute("select password_hash from users where name = ?", (name,)).fetchone()
        return row[0] if row else None

    def remember_key(self, name: str, key: str, client: str = "", address: str = "") -> None:
        """Record a key issued at a login from ``address`` by client ``client``."""
        now = int(time.time())
        with self._db() as con:
            con.execute(
                "insert or ignore into devices (digest, user, created, last_seen, client, address)"
                " values (?,?,?,?,?,?)",
                (key_digest(key), name, now, now, client or None, address or None),
            )

    def user_for_key(self, key: str) -> str | None:
        with self._reader() as con:
            if con is None:
                return None
            row = con.execute(
                "select user from devices where digest = ?", (key_digest(key),)
            ).fetchone()
        return row[0] if row else None

    def devices(self, name: str) -> builtins.list[DeviceRecord]:
        """The keys a user's devices hold, oldest first."""
        with self._db() as con:
            self._require_user(con, name)
            rows = con.execute(
                "select id, created, last_seen, client, address from devices where user = ?"
                " order by id",
                (name,),
            ).fetchall()
        return [DeviceRecord(*row) for row in rows]

    def revoke(self, name: str, device_id: int | None) -> int:
        """Delete one device's key (all of them when ``device_id`` is None); returns how many."""
        with self._db() as con:
            self._require_user(con, name)
            if device_id is None:
                removed = con.execute("delete from devices where user = ?", (name,)).rowcount
            else:
                removed = con.execute(
                    "delete from devices where user = ? and id = ?", (name, device_id)
                ).rowcount
        self._keys_changed()
        if not removed and device_id is not None:
            raise UserError(f"user {name!r} has no device {device_id}")
        return int(removed)

    def change_stamp(self) -> tuple[object, ...]:
        """Changes whenever another process may have revoked a key (see ``_keys_changed``)."""
        try:
            st = os.stat(self.marker)
            marker: object = (st.st_ino, st.st_mtime_ns)
        except OSError:
            marker = None
        return (*file_stamp(self.path), marker)

    def _keys_changed(self) -> None:
        """Replace the marker file after keys were removed: a running server sees its new inode
        even when the database files look unchanged (``storage.sqlite.file_stamp``)."""
        staged = self.marker.with_name(f"{self.marker.name}-{os.getpid()}")
        staged.write_bytes(b"")
        os.replace(staged, self.marker)

    def record_use(self, uses: builtins.list[tuple[str, int, str, str]]) -> None:
        """Store (key digest, time, client, address) of recent requests, in one transaction."""
        with self._db() as con:
            con.execute("begin immediate")
            try:
                con.executemany(
                    "update devices set last_seen = ?, client = coalesce(nullif(?, ''), client),"
                    " address = coalesce(nullif(?, ''), address) where digest = ?",
                    [(seen, client, address, digest) for digest, seen, client, address in uses],
                )
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise

    @staticmethod
    def _require_user(con: sqlite3.Connection, name: str) -> None:
        if con.execute("select 1 from users where name = ?", (name,)).fetchone() is None:
            raise UserError(f"no user {name!r}")


def _migrate(con: sqlite3.Connection, version: int) -> None:
    """Create the schema, or bring a version-1 database up to date, in one transaction."""
    if version > SCHEMA_VERSION:
        raise UserError(f"auth database version {version} is newer than this ankisyncd")
    if version == 0:
        use_wal(con)
    script = _SCHEMA + (_FROM_V1 if version == 1 else "")
    con.executescript(f"begin immediate; {script} pragma user_version = {SCHEMA_VERSION}; commit;")


def _check_password(password: str) -> None:
    if not password:
        raise UserError("the password is empty")
