"""A full or failing disk under the data root (a small tmpfs this module mounts; root only).

Clients must be told to try again later (the server's fault), never to check their database
or force a one-way sync; nothing stored may be lost, and the next sync after space is freed
converges. Reading needs no free space, so other users' no-op syncs keep working.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ankisyncd.storage.sqlite import connect
from tests.support.clients import LEGACY_V10, NEWEST, Device
from tests.support.media import server_media
from tests.support.server import ServerProcess

DISK_MEGS = 48
# What every client (2.1.50 .. 26.9.3) shows for a 500 or 503, exactly; for a 400 it shows
# "Please use the Check Database function, then sync again. If problems persist, please
# force a one-way sync in the preferences screen."
TRY_AGAIN = "AnkiWeb encountered a problem. Please try again in a few minutes."


class Disk:
    """A tmpfs of DISK_MEGS MiB; ``fill`` leaves only ``leave`` bytes free, ``free`` undoes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ballast = path / ".ballast"

    def fill(self, leave: int = 0) -> None:
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 20, 64 << 10, 4 << 10):  # the last pages in smaller pieces
                try:
                    while os.write(fd, b"\0" * size):
                        pass
                except OSError:
                    pass
            if leave:
                os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
        finally:
            os.close(fd)

    def free(self) -> None:
        self.ballast.unlink(missing_ok=True)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    mount = tmp_path / "data"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MEGS}m,mode=0755", "tmpfs", str(mount)],
        check=True,
    )
    try:
        yield Disk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def on_disk(disk: Disk) -> Iterator[ServerProcess]:
    """ankisyncd with its data root on ``disk``; its log lies outside it."""
    server = ServerProcess(disk.path, {"ANKISYNCD_LOW_SPACE_MEGS": "0"}).start()
    try:
        yield server
    finally:
        server.stop()


def ok(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    errors = [r for r in results if "error" in r]
    assert not errors, errors
    return results


def told_to_retry(result: dict[str, Any]) -> None:
    assert result.get("error") == "SyncError" and result["message"] == TRY_AGAIN, result


def stored_notes(server: ServerProcess, user: str = "alice") -> int:
    con = connect(server.data_root / user / "collection.anki2")
    try:
        return int(con.execute("select count() from notes").fetchone()[0])
    finally:
        con.close()


def fault_lines(server: ServerProcess) -> list[str]:
    log = server.log()
    assert "Traceback" not in log, log[-3000:]
    return [line for line in log.splitlines() if "server storage fault" in line]


def paired(server: ServerProcess, tmp_path: Path, version: str = NEWEST) -> tuple[Device, Device]:
    server.add_user("alice", "pw")
    a, b = Device(tmp_path / "a", version), Device(tmp_path / "b")
    a.login("alice", "pw", server.url)
    b.login("alice", "pw", server.url)
    ok(a.run({"op": "add_notes", "count": 5, "prefix": "base"}, {"op": "full_upload"}))
    ok(b.run({"op": "full_download"}))
    return a, b


def run_out_of_space(
    server: ServerProcess, disk: Disk, device: Device, op: str, leave: int
) -> None:
    """Run ``op`` with only ``leave`` bytes free: the client is told to retry, the server's
    collection still holds its 5 notes and the log says why. Then free the space."""
    disk.fill(leave=leave)
    told_to_retry(device.step(op))
    assert stored_notes(server) == 5
    assert fault_lines(server)
    disk.free()


def test_full_upload_out_of_space_is_retried_and_loses_nothing(
    on_disk: ServerProcess, disk: Disk, tmp_path: Path
) -> None:
    """Room for the received file, not for what storing it takes too (its check, the snapshot
    of the collection it replaces)."""
    a, b = paired(on_disk, tmp_path)
    ok(a.run({"op": "add_notes", "count": 3000, "prefix": "big"}))
    upload = (a.folder / "collection.anki2").stat().st_size
    run_out_of_space(on_disk, disk, a, "full_upload", leave=upload + (16 << 10))
    ok(a.run({"op": "full_upload"}))
    ok(b.run({"op": "full_download"}))
    assert len(b.dump()["notes"]) == 3005


class FreeSpaceLow:
    """Samples the free space of ``disk`` in a thread: ``lowest`` is the least seen."""

    def __init__(self, disk: Disk) -> None:
        self.path, self.lowest = disk.path, disk_free(disk)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.0005):
            self.lowest = min(self.lowest, disk_free_at(self.path))

    def __enter__(self) -> FreeSpaceLow:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def disk_free_at(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def disk_free(disk: Disk) -> int:
    return disk_free_at(disk.path)


@pytest.mark.parametrize(
    "version", [NEWEST, pytest.param(LEGACY_V10, marks=pytest.mark.older_client)]
)
def test_full_upload_that_cannot_fit_is_refused_before_writing(
    on_disk: ServerProcess, disk: Disk, tmp_path: Path, version: str
) -> None:
    """The upload's compressed size alone is more than the free space: refused on its
    Content-Length, so the free space never drops while the client sends it."""
    a, b = paired(on_disk, tmp_path, version)
    ok(a.run({"op": "add_notes", "count": 3000, "prefix": "big"}))
    disk.fill(leave=32 << 10)  # the upload's compressed body is ~180 KB
    before = disk_free(disk)
    with FreeSpaceLow(disk) as watch:
        told_to_retry(a.step("full_upload"))
    assert before - watch.lowest < 16 << 10, (before, watch.lowest)
    assert "refused before writing" in fault_lines(on_disk)[-1]
    assert stored_notes(on_disk) == 5
    disk.free()
    ok(a.run({"op": "full_upload"}))
    ok(b.run({"op": "full_download"}))
    assert len(b.dump()["notes"]) == 3005


@pytest.mark.parametrize(
    "version", [NEWEST, pytest.param(LEGACY_V10, marks=pytest.mark.older_client)]
)
def test_normal_sync_out_of_space_is_retried_and_converges(
    on_disk: ServerProcess, disk: Disk, tmp_path: Path, version: str
) -> None:
    a, b = paired(on_disk, tmp_path, version)
    ok(a.run({"op": "sync"}))
    ok(a.run({"op": "add_notes", "count": 3000, "prefix": "big"}))
    run_out_of_space(on_disk, disk, a, "sync", leave=128 << 10)
    ok(a.run({"op": "sync"}))
    ok(b.run({"op": "sync"}))
    assert len(b.dump()["notes"]) == 3005
    assert b.step("check_database") == {"integrity": "ok"}


MEDIA_BATCH = 8 * 300_000  # one upload batch: fewer than 25 files and 2.5 MB


@pytest.mark.parametrize(
    "leave",
    [
        pytest.param(512 << 10, id="refused-before-writing"),
        # The files fit by their sizes, but not in whole pages: the disk fills while writing.
        pytest.param(MEDIA_BATCH + (8 << 10), id="runs-out-while-writing"),
    ],
)
def test_media_upload_out_of_space_is_retried_and_converges(
    on_disk: ServerProcess, disk: Disk, tmp_path: Path, leave: int
) -> None:
    a, b = paired(on_disk, tmp_path)
    ok(a.run({"op": "add_media", "name": "first.txt", "text": "fits"}, {"op": "sync_media"}))
    before = server_media(on_disk.data_root / "alice")
    ok(a.run({"op": "add_media_batch", "count": 8, "size": 300_000, "prefix": "big"}))
    disk.fill(leave=leave)
    told_to_retry(a.step("sync_media"))
    assert server_media(on_disk.data_root / "alice") == before
    assert fault_lines(on_disk)
    disk.free()
    ok(a.run({"op": "sync_media"}))
    ok(b.run({"op": "sync_media"}))
    files = b.step("media_files")
    assert len(files) == 9 and files == a.step("media_files")
    assert server_media(on_disk.data_root / "alice") == files


def test_other_users_no_op_syncs_work_with_no_space_left(disk: Disk, tmp_path: Path) -> None:
    """bob's databases are closed (the server restarts) before the disk fills up entirely."""
    server = ServerProcess(disk.path, {"ANKISYNCD_LOW_SPACE_MEGS": "0"}).start()
    try:
        server.add_user("bob", "pw")
        bob = Device(tmp_path / "bob")
        bob.login("bob", "pw", server.url)
        ok(
            bob.run(
                {"op": "add_notes", "count": 5, "prefix": "b"},
                {"op": "full_upload"},
                {"op": "add_media", "name": "bob.txt", "text": "bob's"},
                {"op": "sync_media"},
                {"op": "sync"},
            )
        )
        server.stop()
        disk.fill()
        server.start()
        assert health(server)["free_bytes"] == 0
        assert bob.run({"op": "sync"}, {"op": "sync_media"}) == [
            {"required": 0, "server_message": ""},
            {},
        ]
        assert list(bob.step("media_files")) == ["bob.txt"]
    finally:
        server.stop()
    disk.free()
    server.start()  # once there is room, the same syncs still work the usual way
    try:
        assert bob.sync() == {"required": 0, "server_message": ""}
        assert server_media(server.data_root / "bob") == bob.step("media_files")
    finally:
        server.stop()


def health(server: ServerProcess) -> dict[str, Any]:
    with urllib.request.urlopen(server.url + "health", timeout=10) as resp:
        assert resp.status == 200
        return dict(json.loads(resp.read()))


def test_low_space_is_warned_about_once_and_shown_by_health(disk: Disk) -> None:
    server = ServerProcess(disk.path, {"ANKISYNCD_LOW_SPACE_MEGS": str(DISK_MEGS // 2)}).start()
    try:
        assert health(server)["low_space"] is False
        disk.fill(leave=4 << 20)
        for _ in range(3):
            report = health(server)
            assert report["low_space"] is True and 0 < report["free_bytes"] <= 4 << 20
        metrics = httpx.get(server.url + "metrics", timeout=30).text
        free = [line for line in metrics.splitlines() if line.startswith("ankisyncd_data_root_f")]
        assert len(free) == 1 and 0 < float(free[0].split()[1]) <= 4 << 20, free
        disk.free()
        assert health(server)["low_space"] is False
    finally:
        server.stop()
    lines = server.log().splitlines()
    assert len([line for line in lines if "low disk space" in line]) == 1
    assert len([line for line in lines if "disk space recovered" in line]) == 1


def test_full_download_on_a_full_disk_reports_the_first_error(
    on_disk: ServerProcess, disk: Disk, tmp_path: Path
) -> None:
    """The download bumps usn and mod first; the failed write, not the rollback after it
    ("cannot rollback - no transaction is active"), is what the log tells."""
    a, b = paired(on_disk, tmp_path)
    ok(a.run({"op": "add_notes", "count": 3000, "prefix": "big"}, {"op": "full_upload"}))
    # A reader (a backup, say) keeps WAL's index open, so the server's write gets as far as
    # the commit.
    reader = connect(on_disk.data_root / "alice" / "collection.anki2")
    try:
        assert reader.execute("select count() from notes").fetchone() == (3005,)
        disk.fill()
        told_to_retry(b.step("full_download"))
    finally:
        reader.close()
    lines = fault_lines(on_disk)
    assert lines and all("cannot rollback" not in line for line in lines), lines
    disk.free()
    ok(b.run({"op": "full_download"}))
    assert len(b.dump()["notes"]) == 3005
