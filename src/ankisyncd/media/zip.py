"""The zip archives of media sync: reading uploads safely, writing downloads."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ankisyncd.errors import StorageFault, storage_fault
from ankisyncd.media.names import check_name
from ankisyncd.protocol.limits import MAX_MEDIA_FILES

MAX_META_BYTES = 50 * 1024
MAX_FILE_BYTES = 100 * 1024 * 1024
# Clients send at most MAX_MEDIA_FILES members plus ``_meta``; twice that leaves a margin. A
# central-directory record is 46 bytes plus its name, extra field and comment: a 255-byte name
# with the usual extras (zip64, timestamps, a Unicode path) stays well under 1 KiB.
MAX_ZIP_ENTRIES = 2 * MAX_MEDIA_FILES + 8
MAX_ZIP_RECORD_BYTES = 1024
COPY_CHUNK = 1 << 20
SYNC_THREADS = 4
_syncer = ThreadPoolExecutor(max_workers=SYNC_THREADS, thread_name_prefix="media-fsync")


class BadZip(ValueError):
    """The upload is not a zip the protocol allows; nothing has been written."""


@dataclass(frozen=True)
class UploadEntry:
    name: str
    temp: Path | None  # the received content, or None for a deletion
    sha1: bytes
    size: int


TempMaker = Callable[[], tuple[BinaryIO, Path]]

_END = struct.Struct("<4s4H2LH")  # end of central directory, without its comment
_END_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"  # 20 bytes long, just before the end record


def read_upload(
    source: BinaryIO, make_temp: TempMaker, max_total: int, free: int | None = None
) -> list[UploadEntry]:
    """Check an upload zip and copy each added file to a temporary file.

    Raises BadZip (or BadName), or StorageFault when its files need more than ``free`` bytes,
    before anything is stored. The caller removes the temporary files of the returned
    entries that it does not move into place.
    """
    entries: list[UploadEntry] = []
    written: list[tuple[BinaryIO, Path]] = []  # kept open until synced: no second open
    try:
        _check_end_record(source)
        with zipfile.ZipFile(source) as archive:
            plan = [
                (name, None if member is None else _member(archive, member))
                for name, member in _read_meta(archive)
            ]
            total = sum(info.file_size for _, info in plan if info is not None)
            if total > max_total:
                raise BadZip("upload exceeds the size limit")
            if free is not None and total > free:
                raise StorageFault(f"media upload needs {total} bytes; {free} are free")
            for name, info in plan:
                if info is None:
                    entries.append(UploadEntry(name, None, b"", 0))
                    continue
                # One thread creates the files: creations in one folder wait on its lock.
                dst, temp = make_temp()
                written.append((dst, temp))
                entries.append(UploadEntry(name, temp, *_extract(archive, info, dst)))
        _sync_all([fh for fh, _ in written])
    except BaseException as exc:
        _discard(written)
        if storage_fault(exc) is None and isinstance(
            exc, (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError)
        ):
            raise BadZip(f"bad zip: {exc}") from exc
        raise
    for fh, _ in written:
        fh.close()
    return entries


def _check_end_record(source: BinaryIO) -> None:
    """Refuse a central directory larger than an upload's, before zipfile reads it.

    zipfile builds a ZipInfo for every record with no limit: a 13 KB zstd request of millions
    of records cost over 1 GiB and 12 s. The record is found where zipfile looks for it.
    """
    position = source.tell()
    try:
        size = source.seek(0, os.SEEK_END)
        first = max(size - _END.size - (1 << 16) - 20, 0)  # 20: room for a zip64 locator
        source.seek(first)
        tail = source.read()
    finally:
        source.seek(position)
    at = len(tail) - _END.size
    if not (at >= 0 and tail.startswith(_END_SIGNATURE, at) and tail.endswith(b"\0\0")):
        at = tail.rfind(_END_SIGNATURE, max(size - _END.size - (1 << 16), 0) - first)
    if at < 0 or at + _END.size > len(tail):
        raise BadZip("no end of central directory record")
    _, _, _, here, total, cd_size, cd_offset, _ = _END.unpack_from(tail, at)
    # The official client writes zip64 only past 65,535 entries or 4 GiB (zip crate, ZipWriter);
    # an upload has at most 26 entries and 25 files of at most 100 MiB each.
    if (
        0xFFFF in (here, total)
        or 0xFFFFFFFF in (cd_size, cd_offset)
        or (at >= 20 and tail.startswith(_ZIP64_LOCATOR_SIGNATURE, at - 20))
    ):
        raise BadZip("zip64 is not used for media uploads")
    entries = max(here, total)
    if entries > MAX_ZIP_ENTRIES:
        raise BadZip(f"the zip lists {entries} entries; at most {MAX_ZIP_ENTRIES} are allowed")
    if cd_size > entries * MAX_ZIP_RECORD_BYTES:
        raise BadZip(f"the central directory of {entries} entries takes {cd_size} bytes")


def _sync_all(files: list[BinaryIO]) -> None:
    """fsync files in a few parallel groups: the file system writes them out together, and
    a thread hand-off per file would cost more than it saves."""
    groups = [files[i::SYNC_THREADS] for i in range(min(SYNC_THREADS, len(files)))]
    list(_syncer.map(_sync_group, groups))


def _sync_group(files: list[BinaryIO]) -> None:
    for fh in files:
        os.fsync(fh.fileno())


def _discard(written: list[tuple[BinaryIO, Path]]) -> None:
    for fh, temp in written:
        fh.close()
        temp.unlink(missing_ok=True)


def _read_meta(archive: zipfile.ZipFile) -> list[tuple[str, str | None]]:
    try:
        info = archive.getinfo("_meta")
    except KeyError:
        raise BadZip("no _meta in the zip") from None
    if info.file_size > MAX_META_BYTES:
        raise BadZip("_meta is too large")
    with archive.open(info) as fh:
        raw = fh.read(MAX_META_BYTES + 1)
    try:
        meta = json.loads(raw.decode("utf-8"))  # as text: bytes would let a BOM through
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadZip("_meta is not JSON") from exc
    if not isinstance(meta, list):
        raise BadZip("_meta must be an array")
    if len(meta) > MAX_MEDIA_FILES:
        raise BadZip(f"more than {MAX_MEDIA_FILES} entries")
    plan: list[tuple[str, str | None]] = []
    for item in meta:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise BadZip("_meta entries must be [name, member]")
        name, member = item
        if member is None or member == "":
            plan.append((check_name(name, deletion=True), None))
        elif isinstance(member, str):
            plan.append((check_name(name), member))
        else:
            raise BadZip("_meta member names must be strings or null")
    return plan


def _member(archive: zipfile.ZipFile, member: str) -> zipfile.ZipInfo:
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise BadZip(f"member {member!r} is missing") from None
    if info.is_dir() or info.flag_bits & 0x1:
        raise BadZip(f"member {member!r} is a folder or encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise BadZip(f"member {member!r} uses an unsupported compression")
    if info.file_size == 0 or info.file_size > MAX_FILE_BYTES:
        raise BadZip(f"member {member!r} is empty or larger than 100 MiB")
    return info


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dst: BinaryIO) -> tuple[bytes, int]:
    """Copy a member to ``dst`` (flushed, left open); returns its SHA-1 and size."""
    digest, size = hashlib.sha1(), 0
    # Reading to the end makes zipfile check the member's CRC-32.
    with archive.open(info) as src:
        while chunk := src.read(COPY_CHUNK):
            size += len(chunk)
            if size > info.file_size:
                raise BadZip("member is larger than it says")
            digest.update(chunk)
            dst.write(chunk)
    if size != info.file_size:
        raise BadZip("member is shorter than it says")
    dst.flush()
    return digest.digest(), size


def write_download(files: list[tuple[str, bytes]]) -> bytes:
    """A zip of ``files`` as members "0".."N-1" plus ``_meta`` mapping them to real names."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for index, (_name, data) in enumerate(files):
            archive.writestr(str(index), data)
        meta = {str(i): name for i, (name, _data) in enumerate(files)}
        archive.writestr("_meta", json.dumps(meta, ensure_ascii=False))
    return out.getvalue()


def zip_entries(data: bytes) -> int:
    """The number of members of a zip that ``write_download`` made (no comment, no zip64):
    read from its end-of-central-directory record, without parsing the archive."""
    return int.from_bytes(data[-12:-10], "little")
