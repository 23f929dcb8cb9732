"""Media sync with real anki clients: files reach every device byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import NEWEST, OLDER_V11, Device
from tests.support.media import server_media
from tests.support.server import ServerProcess

VERSIONS = [NEWEST, pytest.param(OLDER_V11, marks=pytest.mark.older_client)]


def ok(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    errors = [r for r in results if "error" in r]
    assert not errors, errors
    return results


def devices(server: ServerProcess, tmp_path: Path, version: str, *names: str) -> list[Device]:
    server.add_user("alice", "pw")
    out = []
    for name in names:
        device = Device(tmp_path / name, version)
        device.login("alice", "pw", server.url)
        out.append(device)
    return out


def downloads(server: ServerProcess) -> int:
    return server.log().count("msync/downloadFiles user=alice")


@pytest.mark.parametrize("version", VERSIONS)
def test_files_reach_other_devices_byte_identical(
    server: ServerProcess, tmp_path: Path, version: str
) -> None:
    a, b = devices(server, tmp_path, version, "a", "b")
    added = ok(
        a.run(
            {"op": "add_notes", "count": 1, "prefix": "x"},
            {"op": "full_upload"},
            {"op": "add_media", "name": "Ünïcödé façade.jpg", "text": "accents"},
            {"op": "add_media", "name": "日本語の音声.mp3", "size": 40_000},
            {"op": "add_media", "name": "lecture.bin", "size": 3_500_000},
            {"op": "add_media_batch", "count": 60, "size": 300, "prefix": "card"},
            {"op": "sync_media"},
        )
    )
    assert added[4]["name"] == "lecture.bin"
    ok(b.run({"op": "full_download"}, {"op": "sync_media"}))
    files_a, files_b = a.step("media_files"), b.step("media_files")
    assert len(files_a) == 63
    assert files_b == files_a
    assert server_media(server.data_root / "alice") == files_a
    assert server.log().count("msync/mediaSanity user=alice") >= 2


@pytest.mark.parametrize("version", VERSIONS)
def test_deletions_and_edits_flow_both_ways(
    server: ServerProcess, tmp_path: Path, version: str
) -> None:
    a, b = devices(server, tmp_path, version, "a", "b")
    ok(
        a.run(
            {"op": "add_notes", "count": 1, "prefix": "x"},
            {"op": "full_upload"},
            {"op": "add_media_batch", "count": 10, "size": 100, "prefix": "m"},
            {"op": "add_media", "name": "edit-me.txt", "text": "version 1"},
            {"op": "sync_media"},
        )
    )
    ok(b.run({"op": "full_download"}, {"op": "sync_media"}))
    ok(
        a.run(
            {"op": "delete_media", "names": ["m0000.bin", "m0001.bin"]},
            {"op": "modify_media", "name": "edit-me.txt", "text": "version 2 from a"},
            {"op": "sync_media"},
        )
    )
    ok(b.run({"op": "sync_media"}))
    files = b.step("media_files")
    assert "m0000.bin" not in files and "m0002.bin" in files
    assert files == a.step("media_files")
    ok(
        b.run(
            {"op": "delete_media", "names": ["m0005.bin"]},
            {"op": "add_media", "name": "from-b.txt", "text": "hello from b"},
            {"op": "sync_media"},
        )
    )
    ok(a.run({"op": "sync_media"}))
    assert a.step("media_files") == b.step("media_files")
    assert server_media(server.data_root / "alice") == a.step("media_files")


def test_server_copy_wins_when_both_changed_a_file(server: ServerProcess, tmp_path: Path) -> None:
    a, b = devices(server, tmp_path, NEWEST, "a", "b")
    ok(
        a.run(
            {"op": "add_notes", "count": 1, "prefix": "x"},
            {"op": "full_upload"},
            {"op": "add_media", "name": "both.txt", "text": "original"},
            {"op": "sync_media"},
        )
    )
    ok(b.run({"op": "full_download"}, {"op": "sync_media"}))
    ok(a.run({"op": "modify_media", "name": "both.txt", "text": "a's edit"}, {"op": "sync_media"}))
    ok(b.run({"op": "modify_media", "name": "both.txt", "text": "b's edit"}, {"op": "sync_media"}))
    ok(a.run({"op": "sync_media"}))
    assert a.step("media_files") == b.step("media_files")
    # The first change to reach the server wins; b's edit is overwritten, as with the
    # official client and server.
    winner = hashlib.sha1(b"a's edit").hexdigest()
    assert a.step("media_files")["both.txt"] == winner
    assert server_media(server.data_root / "alice")["both.txt"] == winner


def test_late_device_gets_everything_and_logging_in_again_downloads_nothing(
    server: ServerProcess, tmp_path: Path
) -> None:
    a, c = devices(server, tmp_path, NEWEST, "a", "c")
    ok(
        a.run(
            {"op": "add_notes", "count": 1, "prefix": "x"},
            {"op": "full_upload"},
            {"op": "add_media_batch", "count": 30, "size": 1000, "prefix": "p"},
            {"op": "sync_media"},
        )
    )
    ok(c.run({"op": "full_download"}, {"op": "sync_media"}))
    assert c.step("media_files") == a.step("media_files")
    before = downloads(server)
    c.login("alice", "pw", server.url)
    ok(c.run({"op": "sync_all"}, {"op": "sync_media"}))
    assert downloads(server) == before
