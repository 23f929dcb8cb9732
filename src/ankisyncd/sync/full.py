"""Full sync: replace the stored collection with an upload, or hand out the whole file."""

from __future__ import annotations

import logging
from io import BufferedReader
from pathlib import Path

from ankisyncd.errors import storage_fault
from ankisyncd.protocol.messages import UPLOAD_CORRUPT, UPLOAD_OK, UPLOAD_TOO_LARGE
from ankisyncd.protocol.versions import collection_schema
from ankisyncd.storage.collection import ensure_collection, prepare_download
from ankisyncd.storage.schema11 import downgrade, upgrade
from ankisyncd.storage.upload import InvalidCollection, check_upload, install_upload, schema_version

log = logging.getLogger(__name__)


def check_received_upload(
    staged: Path, size: int, max_bytes: int, scratch: Path
) -> tuple[str | None, Path]:
    """Check an upload written to ``staged``.

    Returns (None, file to store) when it may be stored, else (the client's text, staged).
    A schema-11 upload from a legacy client is upgraded into ``scratch`` first.
    """
    if size >= max_bytes:
        return UPLOAD_TOO_LARGE, staged
    try:
        if schema_version(staged) == 11:
            upgrade(staged, scratch)
            staged = scratch
        check_upload(staged)
    except InvalidCollection as exc:
        fault = storage_fault(exc)
        if fault is not None:  # our disk failed, not the client's file
            raise fault from exc
        log.info("upload refused: %s", exc)
        return UPLOAD_CORRUPT, staged
    return None, staged


def store_upload(staged: Path, target: Path) -> str:
    """Swap a checked upload in place of the stored collection; the caller holds the user lock."""
    target.parent.mkdir(parents=True, exist_ok=True)
    install_upload(staged, target)
    return UPLOAD_OK


def download(target: Path, version: int) -> tuple[BufferedReader, int]:
    """Bump usn and mod, then return the collection's bytes in the schema ``version`` expects."""
    ensure_collection(target)
    return prepare_download(target, downgrade if collection_schema(version) == 11 else None)
