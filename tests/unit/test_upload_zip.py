"""Upload zips: a central directory larger than a client's is refused before zipfile reads it."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

from ankisyncd.media.zip import MAX_ZIP_ENTRIES, BadZip, UploadEntry, read_upload
from ankisyncd.protocol.limits import MAX_MEDIA_FILES
from ankisyncd.storage.collection import open_temp_file

END_RECORD = 22  # bytes, without a comment


def _client_zip(files: list[tuple[str, bytes]], extra_members: int = 0) -> bytearray:
    """The shape the official client sends (rslib sync/media/zip.rs): stored members "0",
    "1", ..., then ``_meta``; ``extra_members`` adds tiny members that ``_meta`` ignores."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for i, (_name, data) in enumerate(files):
            archive.writestr(str(i), data)
        for i in range(extra_members):
            archive.writestr(f"x{i}", b"")
        archive.writestr("_meta", json.dumps([[name, str(i)] for i, (name, _) in enumerate(files)]))
    return bytearray(out.getvalue())


class _Temps:
    """A make_temp that records each temporary file it makes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.made: list[Path] = []

    def __call__(self) -> tuple[BinaryIO, Path]:
        fh, path = open_temp_file(self.folder, "m")
        self.made.append(path)
        return fh, path


def _read(data: bytes, temps: _Temps) -> list[UploadEntry]:
    return read_upload(io.BytesIO(data), temps, 1 << 30)


def test_a_zip_of_many_tiny_members_is_refused_before_a_file_is_written(tmp_path: Path) -> None:
    temps = _Temps(tmp_path)
    data = _client_zip([("a.txt", b"A")], extra_members=10_000)
    with pytest.raises(BadZip, match="10002 entries"):
        _read(data, temps)
    assert temps.made == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("field", [8, 10], ids=["this disk", "total"])
def test_an_end_record_listing_too_many_entries_is_refused(tmp_path: Path, field: int) -> None:
    temps = _Temps(tmp_path)
    data = _client_zip([("a.txt", b"A")])
    struct.pack_into("<H", data, len(data) - END_RECORD + field, MAX_ZIP_ENTRIES + 1)
    with pytest.raises(BadZip, match="entries"):
        _read(data, temps)
    assert temps.made == []


def test_a_central_directory_larger_than_its_entries_need_is_refused(tmp_path: Path) -> None:
    temps = _Temps(tmp_path)
    data = _client_zip([("a.txt", b"A")], extra_members=10_000)
    struct.pack_into("<2H", data, len(data) - END_RECORD + 8, 2, 2)  # the count lies
    with pytest.raises(BadZip, match="central directory of 2 entries"):
        _read(data, temps)
    assert temps.made == []


def _with_zip64_end(data: bytearray) -> bytearray:
    """``data`` with a zip64 end record and locator that agree with its classic end record."""
    at = len(data) - END_RECORD
    count, cd_size, cd_offset = struct.unpack_from("<H2L", data, at + 10)
    record = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, cd_size, cd_offset
    )
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, at, 1)
    return data[:at] + record + locator + data[at:]


def _with_counts_ffff(data: bytearray) -> bytearray:
    struct.pack_into("<2H", data, len(data) - END_RECORD + 8, 0xFFFF, 0xFFFF)
    return data


@pytest.mark.parametrize("make_zip64", [_with_zip64_end, _with_counts_ffff])
def test_a_zip64_end_record_is_refused(
    tmp_path: Path, make_zip64: Callable[[bytearray], bytearray]
) -> None:
    temps = _Temps(tmp_path)
    with pytest.raises(BadZip, match="zip64"):
        _read(make_zip64(_client_zip([("a.txt", b"A")])), temps)
    assert temps.made == []


@pytest.mark.parametrize("cut", [END_RECORD, 10], ids=["no record", "half a record"])
def test_a_zip_without_an_end_record_is_refused(tmp_path: Path, cut: int) -> None:
    temps = _Temps(tmp_path)
    data = _client_zip([("a.txt", b"A")])[:-cut]
    with pytest.raises(BadZip, match="no end of central directory record"):
        _read(data, temps)
    assert temps.made == []


@pytest.mark.parametrize("comment", [b"", b"a comment"])
def test_a_client_zip_of_the_most_files_a_batch_holds_is_read(
    tmp_path: Path, comment: bytes
) -> None:
    files = [(f"{i:03d}-{'é' * 120}.jpg", f"file {i}".encode()) for i in range(MAX_MEDIA_FILES)]
    data = _client_zip(files)
    data[-2:] = struct.pack("<H", len(comment))
    data += comment
    temps = _Temps(tmp_path)
    entries = _read(data, temps)
    assert [(e.name, e.sha1, e.size) for e in entries] == [
        (name, hashlib.sha1(content).digest(), len(content)) for name, content in files
    ]
    assert [e.temp for e in entries] == temps.made
    assert [p.read_bytes() for p in temps.made] == [content for _, content in files]
