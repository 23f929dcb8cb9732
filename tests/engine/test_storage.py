"""Stored collections on real SQLite files: creation, upload checks, swaps, downloads."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ankisyncd.storage.collection import (
    TEMPLATE,
    CollectionConnection,
    day_start,
    ensure_collection,
    prepare_download,
    read_state,
    remove_database,
)
from ankisyncd.storage.sqlite import connect, copy_main_file, in_list
from ankisyncd.storage.upload import InvalidCollection, check_upload, install_upload
from ankisyncd.sync.session import Busy, SyncSession
from tests.support.locks import shared_lock_held


def test_new_collection_is_the_stock_one_with_fresh_times(tmp_path: Path) -> None:
    path = tmp_path / "u" / "collection.anki2"
    ensure_collection(path)
    con = connect(path)
    crt, mod, scm, ver, usn, ls = con.execute(
        "select crt, mod, scm, ver, usn, ls from col"
    ).fetchone()
    assert (mod, ver, usn, ls) == (0, 18, 0, 0)
    assert crt == day_start(datetime.now().astimezone())
    assert abs(scm - time.time() * 1000) < 60_000
    assert con.execute("pragma integrity_check").fetchone() == ("ok",)
    assert con.execute("select val from config where key = 'creationOffset'").fetchone() == (
        b"null",
    )
    con.close()
    assert sorted(p.name for p in path.parent.iterdir()) == ["collection.anki2"]
    db = CollectionConnection(path)
    state = db.state()
    db.close()
    assert state.empty and state.sched_ver == 2 and not state.has_creation_offset


@pytest.fixture(scope="module")
def stock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, sqlite3.Connection]]:
    path = tmp_path_factory.mktemp("stock") / "collection.anki2"
    ensure_collection(path)
    con = connect(path)
    yield path, con
    con.close()


def _as_json_loads_reads(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return None


@given(st.binary(max_size=8) | st.builds(lambda v: json.dumps(v).encode(), st.integers()))
@example(b"2")
@example(b"true")  # a bool is an int to Python: scheduler True, as json.loads reads it
@example(b"NaN")  # json.loads only
@example("2".encode("utf-16-le"))  # json.loads only: it detects UTF-16 and UTF-32
@example(b"1e400")
@example(b"\xef\xbb\xbf2")  # a byte order mark: refused by both
@example(b'"\\ud800"')
def test_scheduler_facts_are_read_as_json_loads_reads_them(
    stock: tuple[Path, sqlite3.Connection], raw: bytes
) -> None:
    path, con = stock
    con.execute("update config set val = ? where key in ('schedVer', 'creationOffset')", (raw,))
    state = read_state(path, con)
    value = _as_json_loads_reads(raw)
    assert state.sched_ver == (value if isinstance(value, int) else 1)
    assert state.has_creation_offset == (isinstance(value, int) and not isinstance(value, bool))


def test_day_start_is_the_last_4am() -> None:
    at = datetime(2026, 3, 1, 3, 59).astimezone()
    assert datetime.fromtimestamp(day_start(at)).astimezone().hour == 4
    assert day_start(at) < at.timestamp() < day_start(at) + 86400


def test_upload_check_clears_pending_usns_but_not_config(tmp_path: Path) -> None:
    path = tmp_path / "c.anki2"
    shutil.copyfile(TEMPLATE, path)
    con = connect(path)
    con.execute("update decks set usn = -1")
    con.execute("update config set usn = -1 where key = 'curDeck'")
    con.close()
    check_upload(path)
    con = connect(path)
    assert con.execute("select usn from decks").fetchall() == [(0,)]
    assert con.execute("select usn from config where key = 'curDeck'").fetchone() == (-1,)
    con.close()


def test_upload_check_refuses_schema_11(tmp_path: Path) -> None:
    path = tmp_path / "c.anki2"
    shutil.copyfile(TEMPLATE, path)
    con = connect(path)
    con.execute("update col set ver = 11")
    con.close()
    with pytest.raises(InvalidCollection, match="schema version 11"):
        check_upload(path)


def test_swap_drops_a_stale_wal_of_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "collection.anki2"
    shutil.copyfile(TEMPLATE, target)
    # A crashed writer leaves a -wal that belongs to the old file.
    writer = sqlite3.connect(target)
    writer.execute("pragma journal_mode = wal")
    writer.execute("pragma wal_autocheckpoint = 0")
    writer.execute("update col set usn = 77")
    writer.commit()
    shutil.copyfile(target.with_name("collection.anki2-wal"), tmp_path / "saved-wal")
    writer.close()
    shutil.copyfile(tmp_path / "saved-wal", target.with_name("collection.anki2-wal"))

    staged = tmp_path / "upload.tmp"
    shutil.copyfile(TEMPLATE, staged)
    con = connect(staged)
    con.execute("update col set usn = 5")
    con.close()
    install_upload(staged, target)
    assert not target.with_name("collection.anki2-wal").exists()
    con = connect(target)
    assert con.execute("select usn from col").fetchone() == (5,)
    assert con.execute("pragma integrity_check").fetchone() == ("ok",)
    con.close()


def test_download_bumps_usn_and_gives_a_self_contained_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "collection.anki2"
    ensure_collection(path)
    fh, size = prepare_download(path)
    data = fh.read()
    fh.close()
    assert len(data) == size and data[18:20] == b"\x02\x02"
    copy = tmp_path / "copy.anki2"
    copy.write_bytes(data)
    con = connect(copy)
    usn, mod = con.execute("select usn, mod from col").fetchone()
    con.close()
    assert usn == 1 and abs(mod - time.time() * 1000) < 60_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["collection.anki2", "copy.anki2"]


def _downloaded(path: Path, to: Path) -> sqlite3.Connection:
    """A full download's bytes written to ``to`` and opened, after an integrity check."""
    fh, size = prepare_download(path)
    to.write_bytes(fh.read())
    fh.close()
    assert to.stat().st_size == size
    con = connect(to)
    assert con.execute("pragma integrity_check").fetchone() == ("ok",)
    return con


def test_the_file_copy_holds_every_commit_and_keeps_this_process_locks(tmp_path: Path) -> None:
    """The snapshot's fast path: the WAL folded in, the main file copied in a child process,
    so the SHARED lock of the connection this process keeps open is still held after it."""
    path = tmp_path / "collection.anki2"
    ensure_collection(path)
    kept = connect(path)
    try:
        kept.execute("update col set mod = 42")  # committed to the WAL
        assert os.stat(f"{path}-wal").st_size > 0 and shared_lock_held(path)
        con = connect(path)
        target = tmp_path / "copy.anki2"
        target.touch()
        try:
            assert copy_main_file(con, path, target)
        finally:
            con.close()
        assert shared_lock_held(path)
        assert os.stat(f"{path}-wal").st_size == 0
        copy = connect(target)
        assert copy.execute("select mod from col").fetchone() == (42,)
        assert copy.execute("pragma integrity_check").fetchone() == ("ok",)
        copy.close()
        fh, _ = prepare_download(path)
        fh.close()
        assert shared_lock_held(path)
    finally:
        kept.close()
    assert not shared_lock_held(path)


def test_a_reader_in_the_wal_sends_the_download_through_the_backup(tmp_path: Path) -> None:
    """While a read transaction keeps commits in the WAL, the main file is not complete: the
    file copy declines (leaving its target empty) and the download still holds every commit."""
    path = tmp_path / "collection.anki2"
    ensure_collection(path)
    reader, writer = connect(path), connect(path)
    try:
        writer.execute("update col set ls = 1")
        reader.execute("begin")
        assert reader.execute("select ls from col").fetchone() == (1,)
        writer.execute("update col set ls = 2")
        con = connect(path)
        target = tmp_path / "copy.anki2"
        target.touch()
        try:
            assert not copy_main_file(con, path, target)
        finally:
            con.close()
        assert target.stat().st_size == 0
        con = _downloaded(path, tmp_path / "download.anki2")
        assert con.execute("select ls, usn from col").fetchone() == (2, 1)
        con.close()
        assert reader.execute("select ls from col").fetchone() == (1,)
    finally:
        reader.close()
        writer.close()


_WRITER = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    con.execute("update col set ls = ls + 1")
    time.sleep(0.001)  # a tight loop would starve the other writer's busy handler
"""


def test_downloads_while_another_process_commits_hold_every_earlier_commit(
    tmp_path: Path,
) -> None:
    """Another process commits all the time (each commit adds 1 to ``ls``): whichever way each
    snapshot is taken, it is a sound database holding every commit made before it began."""
    path = tmp_path / "collection.anki2"
    ensure_collection(path)
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), "60"])
    try:
        probe = connect(path)
        deadline = time.monotonic() + 30
        while probe.execute("select ls from col").fetchone() == (0,):  # until it writes
            assert time.monotonic() < deadline
            time.sleep(0.01)
        seen = []
        for _ in range(40):
            before = probe.execute("select ls from col").fetchone()[0]
            con = _downloaded(path, tmp_path / "download.anki2")
            (ls,) = con.execute("select ls from col").fetchone()
            con.close()
            remove_database(tmp_path / "download.anki2")
            assert ls >= before
            seen.append(ls)
        probe.close()
        assert writer.poll() is None  # still writing: the downloads raced it throughout
        assert seen[-1] > seen[0]
    finally:
        writer.kill()
        writer.wait()


def test_many_opens_and_downloads_leak_no_file_descriptors(tmp_path: Path) -> None:
    path = tmp_path / "collection.anki2"
    ensure_collection(path)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        db = CollectionConnection(path)
        db.state()
        db.close()
        fh, _ = prepare_download(path)
        fh.close()
    assert len(os.listdir("/proc/self/fd")) <= before


def test_the_kept_connection_follows_a_collection_replaced_on_disk(tmp_path: Path) -> None:
    """Whatever replaces the file (a restore from backup), reads and the next sync's
    transaction go to the new file, never to the replaced one."""
    path = tmp_path / "collection.anki2"
    db = CollectionConnection(path)
    assert db.state().usn == 0
    replacement = tmp_path / "restored.anki2"
    shutil.copyfile(TEMPLATE, replacement)
    con = connect(replacement)
    con.execute("update col set usn = 42")
    con.close()
    os.replace(replacement, path)
    assert db.state().usn == 42
    kept = db.get()
    kept.execute("update col set usn = 43")
    db.close()
    con = connect(path)
    assert con.execute("select usn from col").fetchone() == (43,)
    con.close()


def test_a_session_told_not_to_wait_reports_another_writer(tmp_path: Path) -> None:
    path = tmp_path / "collection.anki2"
    ensure_collection(path)
    writer, con = connect(path), connect(path)
    writer.execute("begin immediate")
    started = time.monotonic()
    with pytest.raises(Busy):
        SyncSession.begin(con, "skey", 0, False, wait=False)
    assert time.monotonic() - started < 10  # no wait for the 30 s busy timeout
    assert not con.in_transaction
    assert con.execute("pragma busy_timeout").fetchone() == (30_000,)  # restored
    writer.execute("rollback")
    session = SyncSession.begin(con, "skey", 0, False, wait=False)
    assert con.in_transaction and session.server_usn == 0
    session.rollback()
    writer.close()
    con.close()


@given(st.lists(st.integers(-(1 << 63), (1 << 63) - 1), max_size=600))
def test_an_in_list_selects_the_same_rows_in_fewer_lengths(values: list[int]) -> None:
    marks, bound = in_list(values)
    assert set(bound) == set(values)
    assert len(bound) == marks.count("?") >= len(values)
    assert len(bound) == 0 or len(bound) & (len(bound) - 1) == 0  # a power of two
    con = sqlite3.connect(":memory:")
    con.execute("create table t (v integer)")
    con.executemany("insert into t values (?)", [(v,) for v in range(-3, 4)])
    found = con.execute(f"select v from t where v in ({marks}) order by v", bound).fetchall()
    assert found == [(v,) for v in sorted(set(values) & set(range(-3, 4)))]
    con.close()
