"""The media store on real files: changes interrupted by a crash are finished on next open."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import pytest

from ankisyncd.media.db import MediaStore
from ankisyncd.media.download import FileGone, download_files
from ankisyncd.media.names import BadName, check_name
from ankisyncd.media.upload import upload_changes
from ankisyncd.media.zip import BadZip
from ankisyncd.storage.collection import open_temp_file, temp_file


def _zip(entries: list[tuple[str, bytes | None]]) -> io.BytesIO:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        meta = []
        for i, (name, data) in enumerate(entries):
            if data is not None:
                archive.writestr(str(i), data)
            meta.append([name, None if data is None else str(i)])
        archive.writestr("_meta", json.dumps(meta))
    out.seek(0)
    return out


def _upload(store: MediaStore, entries: list[tuple[str, bytes | None]]) -> tuple[int, int]:
    return upload_changes(store, _zip(entries), lambda: open_temp_file(store.folder, "m"), 1 << 30)


def test_upload_then_delete(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    assert _upload(store, [("a.txt", b"A"), ("b.txt", b"B")]) == (2, 2)
    assert (store.media_dir / "a.txt").read_bytes() == b"A"
    assert _upload(store, [("a.txt", None)]) == (1, 3)
    assert not (store.media_dir / "a.txt").exists()
    assert store.last_usn() == 3
    # No temporary file is left; the database stays open (with its WAL) until closed.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "media",
        "media.db",
        "media.db-shm",
        "media.db-wal",
    ]
    store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["media", "media.db"]


def test_a_database_replaced_behind_the_store_is_opened_anew(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    _upload(store, [("a.txt", b"A")])
    (tmp_path / "other").mkdir()
    other = MediaStore(tmp_path / "other")
    _upload(other, [("x.txt", b"X"), ("y.txt", b"Y")])
    other.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store.db_path}{suffix}").unlink(missing_ok=True)
    os.replace(other.db_path, store.db_path)
    assert store.last_usn() == 2


def test_a_committed_change_interrupted_by_a_crash_is_finished_on_open(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    _upload(store, [("old.txt", b"old"), ("doomed.txt", b"bye")])
    # The state a crash leaves between the commit and the renames:
    temp = temp_file(tmp_path, "m")
    temp.write_bytes(b"new")
    with store.open() as con:
        con.execute(
            "update media set csum = ?, usn = 3 where fname = 'old.txt'",
            (hashlib.sha1(b"new").digest(),),
        )
        con.execute("update media set size = 0, usn = 4 where fname = 'doomed.txt'")
        con.execute(
            "insert into ankisyncd_pending (fname, temp) values ('old.txt', ?)", (str(temp),)
        )
        con.execute("insert into ankisyncd_pending (fname, temp) values ('doomed.txt', null)")
        # Checking here would see the old files: the open() above ran before the records.
    assert (store.media_dir / "old.txt").read_bytes() == b"old"
    with store.open() as con:
        assert con.execute("select count() from ankisyncd_pending").fetchone() == (0,)
    assert (store.media_dir / "old.txt").read_bytes() == b"new"
    assert not (store.media_dir / "doomed.txt").exists()
    assert not temp.exists()


def test_rejected_zip_changes_nothing(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    _upload(store, [("keep.txt", b"keep")])
    with pytest.raises(BadName):
        _upload(store, [("fine.txt", b"x"), ("../evil", b"y")])
    with pytest.raises(BadZip):
        upload_changes(store, io.BytesIO(b"junk"), lambda: open_temp_file(tmp_path, "m"), 1 << 30)
    assert store.last_usn() == 1
    assert sorted(p.name for p in store.media_dir.iterdir()) == ["keep.txt"]
    assert not list(tmp_path.glob(".ankisyncd-tmp-*"))


def test_a_member_failing_its_crc_after_others_were_written_changes_nothing(
    tmp_path: Path,
) -> None:
    store = MediaStore(tmp_path)
    _upload(store, [("keep.txt", b"keep")])
    raw = bytearray(_zip([("first.txt", b"first file"), ("second.txt", b"SECOND FILE")]).read())
    at = raw.index(b"SECOND FILE")  # stored as is: the default zip method does not compress
    raw[at] ^= 0x20
    with pytest.raises(BadZip, match="CRC"):
        upload_changes(
            store, io.BytesIO(bytes(raw)), lambda: open_temp_file(tmp_path, "m"), 1 << 30
        )
    assert store.last_usn() == 1
    assert sorted(p.name for p in store.media_dir.iterdir()) == ["keep.txt"]
    assert not list(tmp_path.glob(".ankisyncd-tmp-*"))


def test_a_folder_in_the_way_does_not_block_other_changes(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    store.media_dir.mkdir()
    (store.media_dir / "dir.txt").mkdir()
    _upload(store, [("dir.txt", b"x"), ("ok.txt", b"ok")])
    assert (store.media_dir / "ok.txt").read_bytes() == b"ok"
    assert _upload(store, [("more.txt", b"m")])[0] == 1


@pytest.mark.parametrize("name", ["a\\b", "tab\there"])
def test_odd_names_can_be_deleted_but_not_added(name: str) -> None:
    assert check_name(name, deletion=True) == name
    with pytest.raises(BadName):
        check_name(name)


@pytest.mark.parametrize("replacement", ["symlink", "folder", "missing"])
def test_a_download_never_follows_a_file_replaced_on_disk(tmp_path: Path, replacement: str) -> None:
    """A stored file replaced by a symlink (to a secret), a folder or nothing is not sent;
    its record is forgotten without a deletion for clients, and other files still download."""
    store = MediaStore(tmp_path)
    _upload(store, [("a.txt", b"A"), ("b.txt", b"B")])
    secret = tmp_path / "secret"
    secret.write_bytes(b"secret")
    target = store.media_dir / "a.txt"
    target.unlink()
    if replacement == "symlink":
        target.symlink_to(secret)
    elif replacement == "folder":
        target.mkdir()
    with pytest.raises(FileGone, match="forgotten"):
        download_files(store, ["a.txt", "b.txt"])
    with store.open() as con:
        assert con.execute("select fname from media").fetchall() == [("b.txt",)]
    with zipfile.ZipFile(io.BytesIO(download_files(store, ["b.txt"]))) as archive:
        assert json.loads(archive.read("_meta")) == {"0": "b.txt"}
        assert archive.read("0") == b"B"
