"""Reading a database's size from its SQLite header, and writing an upload only if it fits."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from ankisyncd.storage.space import RoomWriter, declared_database_size


def database(tmp_path: Path, rows: int, page_size: int = 4096) -> bytes:
    path = tmp_path / "db.sqlite"
    con = sqlite3.connect(path)
    con.execute(f"pragma page_size = {page_size}")
    con.execute("create table t (x)")
    con.executemany("insert into t values (?)", [("x" * 100,)] * rows)
    con.commit()
    con.close()
    return path.read_bytes()


@pytest.mark.parametrize("page_size", [512, 4096, 65536])
def test_the_header_gives_the_file_size(tmp_path: Path, page_size: int) -> None:
    data = database(tmp_path, 2000, page_size)
    assert declared_database_size(data[:100]) == len(data)


def test_no_size_from_other_bytes_or_a_stale_size_field(tmp_path: Path) -> None:
    data = bytearray(database(tmp_path, 10))
    assert declared_database_size(bytes(data[:99])) is None
    assert declared_database_size(b"PK\x03\x04" + bytes(96)) is None
    data[95] ^= 1  # "version-valid-for" no longer matches the change counter
    assert declared_database_size(bytes(data[:100])) is None


def feed(writer: RoomWriter, data: bytes, piece: int) -> None:
    for at in range(0, len(data), piece):
        writer.write(data[at : at + piece])
    writer.close()


@pytest.mark.parametrize("piece", [7, 100, 1 << 16])
def test_an_upload_that_fits_is_written_whole(tmp_path: Path, piece: int) -> None:
    data, out = database(tmp_path, 500), io.BytesIO()
    writer = RoomWriter(out, len(data))
    feed(writer, data, piece)
    assert out.getvalue() == data
    assert not writer.refused and not writer.overflowed


@pytest.mark.parametrize("piece", [7, 100, 1 << 16])
def test_a_database_larger_than_the_room_is_refused_before_any_byte(
    tmp_path: Path, piece: int
) -> None:
    data, out = database(tmp_path, 500), io.BytesIO()
    writer = RoomWriter(out, len(data) - 1)
    feed(writer, data, piece)
    assert writer.refused and writer.declared == len(data)
    assert out.getvalue() == b""


def test_without_a_size_writing_stops_at_the_room() -> None:
    out = io.BytesIO()
    writer = RoomWriter(out, 250)
    feed(writer, b"not a database " * 40, 100)
    assert writer.overflowed and not writer.refused
    assert len(out.getvalue()) <= 250


def test_a_body_shorter_than_a_header_is_still_written() -> None:
    out = io.BytesIO()
    writer = RoomWriter(out, 1000)
    feed(writer, b"tiny", 2)
    assert out.getvalue() == b"tiny"
