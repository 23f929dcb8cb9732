"""Media uploads across a crash between their commit and their renames, and into a media
folder on a file system of its own: the uploaded content is what the server ends up serving."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from tests.integration.test_media_protocol import msync, ok_json, upload, upload_zip
from tests.support.media import server_media
from tests.support.server import ServerProcess, serving
from tests.support.wire import RawClient, unzstd

# Runs upload_changes as the server does, and dies (as a killed process would: no clean-up)
# right after the commit, before the renames carry it out. Its new content is written in the
# media folder, as today, or in the user folder, as versions before 2026-11-30 did (what a
# crash under those left must survive an upgrade).
CRASHING_UPLOAD = """
import os, sys
from pathlib import Path
from ankisyncd.media.db import MediaStore
from ankisyncd.media.upload import upload_changes
from ankisyncd.storage.collection import open_temp_file

calls = []
finish = MediaStore.finish_pending

def finish_or_die(self, con):
    calls.append(None)
    if len(calls) == 2:  # the first ran when the store was opened, before the upload
        os._exit(0)
    finish(self, con)

MediaStore.finish_pending = finish_or_die
store = MediaStore(Path(sys.argv[1]))
temps = store.media_dir if sys.argv[3] == "media" else store.folder
with open(sys.argv[2], "rb") as fh:
    upload_changes(store, fh, lambda: open_temp_file(temps, "media"), 1 << 30)
sys.exit(3)
"""


def crash_after_commit(folder: Path, entries: list[tuple[str, bytes | None]], temps: str) -> None:
    zipped = folder.parent / "upload.zip"
    zipped.write_bytes(upload_zip(entries))
    args = [sys.executable, "-c", CRASHING_UPLOAD, str(folder), str(zipped), temps]
    done = subprocess.run(args)
    assert done.returncode == 0
    con = sqlite3.connect(folder / "media.db")
    try:
        assert con.execute("select fname from ankisyncd_pending").fetchall() == [("a.txt",)]
    finally:
        con.close()
    assert (folder / "media" / "a.txt").read_bytes() == b"version one"  # not yet renamed


def served(server: ServerProcess, name: str) -> tuple[str, bytes]:
    """(sha1 the server lists for ``name``, the bytes it sends for it)."""
    raw = RawClient(server.url)
    try:
        raw.login("alice", "pw")
        listed = ok_json(msync(raw, "mediaChanges", b'{"lastUsn":0}'))
        [sha1] = [csum for fname, _usn, csum in listed if fname == name]
        resp = msync(raw, "downloadFiles", json.dumps({"files": [name]}).encode())
        assert resp.status_code == 200
        with zipfile.ZipFile(io.BytesIO(unzstd(resp.content))) as archive:
            names = json.loads(archive.read("_meta"))
            [member] = [m for m, fname in names.items() if fname == name]
            return sha1, archive.read(member)
    finally:
        raw.close()


def uploaded_then_crashed(tmp_path: Path, temps: str) -> Path:
    """alice's folder after v1 of a.txt went up, and an upload of v2 crashed after its commit."""
    with serving(tmp_path / "data", users={"alice": "pw"}) as server:
        raw = RawClient(server.url)
        raw.login("alice", "pw")
        ok_json(upload(raw, [("a.txt", b"version one")]))
        raw.close()
    folder = tmp_path / "data" / "alice"
    crash_after_commit(folder, [("a.txt", b"version two")], temps)
    return folder


def no_temp_files(folder: Path) -> bool:
    return not [*folder.glob(".ankisyncd-tmp-*"), *(folder / "media").glob(".ankisyncd-tmp-*")]


@pytest.mark.parametrize("temps", ["media", "user folder"])
def test_a_new_server_finishes_an_upload_a_crash_interrupted(tmp_path: Path, temps: str) -> None:
    folder = uploaded_then_crashed(tmp_path, temps)
    with serving(tmp_path / "data") as server:  # its start-up sweep must not take the file
        sha1, content = served(server, "a.txt")
    assert content == b"version two"
    assert sha1 == hashlib.sha1(b"version two").hexdigest()
    assert server_media(folder) == {"a.txt": sha1}
    assert no_temp_files(folder)


@pytest.mark.parametrize("temps", ["media", "user folder"])
def test_check_repair_finishes_an_upload_a_crash_interrupted(tmp_path: Path, temps: str) -> None:
    folder = uploaded_then_crashed(tmp_path, temps)
    server = ServerProcess(tmp_path / "data")
    result = server.cli("check", "--repair")
    assert "re-hashed" not in result.stdout, result.stdout
    assert (folder / "media" / "a.txt").read_bytes() == b"version two"
    assert server_media(folder) == {"a.txt": hashlib.sha1(b"version two").hexdigest()}
    assert no_temp_files(folder)
    with serving(tmp_path / "data") as server:
        assert served(server, "a.txt")[1] == b"version two"


def test_uploads_into_a_media_folder_on_another_file_system(tmp_path: Path) -> None:
    elsewhere = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        assert os.stat(elsewhere).st_dev != os.stat(tmp_path).st_dev
        folder = tmp_path / "data" / "alice"
        folder.mkdir(parents=True)
        (folder / "media").symlink_to(elsewhere)
        with serving(tmp_path / "data", users={"alice": "pw"}) as server:
            raw = RawClient(server.url)
            raw.login("alice", "pw")
            ok_json(upload(raw, [("a.txt", b"version one"), ("b.txt", b"bee")]))
            raw.close()
            assert served(server, "a.txt")[1] == b"version one"
        assert sorted(p.name for p in elsewhere.iterdir()) == ["a.txt", "b.txt"]
        assert no_temp_files(folder)
    finally:
        for p in elsewhere.iterdir():
            p.unlink()
        elsewhere.rmdir()


def test_names_of_the_servers_temporary_files_are_refused(tmp_path: Path) -> None:
    with serving(tmp_path / "data", users={"alice": "pw"}) as server:
        raw = RawClient(server.url)
        raw.login("alice", "pw")
        for entries in ([(".ankisyncd-tmp-media-1-0", b"x")], [(".ankisyncd-tmp-media-1-0", None)]):
            assert upload(raw, entries).status_code == 400
        raw.close()
