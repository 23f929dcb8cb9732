"""Host keys under concurrent lookups, and the auth database's upgrade."""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ankisyncd.users.accounts import Accounts
from ankisyncd.users.hostkey import key_digest, new_host_key
from ankisyncd.users.store import UserStore


@pytest.fixture
def fast_switching() -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave the threads as finely as possible
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def test_a_revoked_key_is_never_accepted_again(tmp_path: Path, fast_switching: None) -> None:
    """Lookups that read the database just before ``user passwd`` (which revokes every key)
    must not put the old key back, nor miss the change."""
    db = tmp_path / "auth.db"
    cli = UserStore(db)  # the ``ankisyncd user`` process: its own connection
    cli.add("alice", "pw")
    accounts = Accounts(UserStore(db), {})
    accepted_after_revoke: list[int] = []

    def look(key: str, revoked: threading.Event, stop: threading.Event, round_: int) -> None:
        while not stop.is_set():
            after = revoked.is_set()
            name = accounts.cached_user(key) or accounts.user_for_key(key)
            if after and name is not None:
                accepted_after_revoke.append(round_)

    for round_ in range(25):
        key = new_host_key()
        cli.remember_key("alice", key)
        revoked, stop = threading.Event(), threading.Event()
        threads = [
            threading.Thread(target=look, args=(key, revoked, stop, round_)) for _ in range(6)
        ]
        for t in threads:
            t.start()
        cli.set_password("alice", f"pw{round_}")
        revoked.set()
        stop.wait(0.02)
        stop.set()
        for t in threads:
            t.join()
    assert accepted_after_revoke == []


def test_version_1_auth_databases_keep_their_devices(tmp_path: Path) -> None:
    db = tmp_path / "auth.db"
    con = sqlite3.connect(db)
    con.executescript(
        """
        create table users (name text primary key, password_hash text not null,
                            created integer not null, modified integer not null);
        create table host_keys (digest text primary key,
                                user text not null references users(name) on delete cascade,
                                created integer not null);
        pragma user_version = 1;
        """
    )
    key = new_host_key()
    con.execute("insert into users values ('bo', 'x', 1, 1)")
    con.execute("insert into host_keys values (?, 'bo', 5)", (key_digest(key),))
    con.commit()
    con.close()
    store = UserStore(db)
    assert store.user_for_key(key) == "bo"
    [device] = store.devices("bo")
    assert (device.created, device.last_seen) == (5, None)
    assert store.revoke("bo", device.id) == 1 and store.user_for_key(key) is None
