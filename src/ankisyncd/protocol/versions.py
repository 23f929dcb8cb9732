"""Sync protocol versions, as clients send them in the ``anki-sync`` header or ``meta`` body."""

from __future__ import annotations

from ankisyncd.errors import BadRequest

# 2013: the first version still accepted; multipart form + gzip.
SYNC_VERSION_08_SESSIONKEY = 8
# 2018: same wire format; the client understands the v2 scheduler.
SYNC_VERSION_09_V2_SCHEDULER = 9
# 2020: same wire format; the client understands the new timezone handling.
SYNC_VERSION_10_V2_TIMEZONE = 10
# Jan 2023 (desktop 2.1.57, AnkiDroid 2.16): anki-sync header + zstd, schema-18 full syncs.
SYNC_VERSION_11_DIRECT_POST = 11

SYNC_VERSION_MIN = SYNC_VERSION_08_SESSIONKEY
SYNC_VERSION_MAX = SYNC_VERSION_11_DIRECT_POST

# Requests without an anki-sync header are taken as this version.
LEGACY_WIRE_VERSION = SYNC_VERSION_10_V2_TIMEZONE


def is_supported(version: int) -> bool:
    return SYNC_VERSION_MIN <= version <= SYNC_VERSION_MAX


def ensure_supported(version: int) -> int:
    """Return ``version`` or raise BadRequest, as for a bad ``v`` in the anki-sync header."""
    if not is_supported(version):
        raise BadRequest(f"unsupported sync version {version}")
    return version


def collection_schema(version: int) -> int:
    """The schema of full-sync files that clients of ``version`` expect."""
    return 18 if version >= SYNC_VERSION_11_DIRECT_POST else 11
