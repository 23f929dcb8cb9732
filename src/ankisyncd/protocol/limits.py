"""What each method's request body may hold: decoded bytes and JSON values.

The figures come from what the official clients send (ankitects/anki ``rslib/src/sync``), with a
wide margin; docs/security.md gives the reason for each. A body is refused while it is being
decompressed (bytes) and before it is parsed (values), so no request can build large objects.
"""

from __future__ import annotations

from dataclasses import dataclass

from ankisyncd.protocol.methods import MediaSyncMethod, SyncMethod

KiB, MiB = 1 << 10, 1 << 20
# Rows (or graves) per chunk the client sends: ``CHUNK_SIZE`` in collection/chunks.rs.
CLIENT_CHUNK_ROWS = 250
# Files per media batch, both ways: ``MAX_MEDIA_FILES_IN_ZIP`` in media/mod.rs.
MAX_MEDIA_FILES = 25


@dataclass(frozen=True)
class BodyLimit:
    """At most ``size`` bytes once decompressed, holding at most ``values`` JSON values.

    ``size`` None: the ``max_json_megs`` setting, for the bodies whose size real clients do
    not bound (note fields and note types have no size limit in the client)."""

    size: int | None
    values: int


SMALL = BodyLimit(64 * KiB, 64)  # a few keys: login, meta, empty inputs, media requests
_CHUNK_VALUES = 64 * 1024  # 250 rows of at most 19 values each is under 5,000

BODY_LIMITS: dict[SyncMethod | MediaSyncMethod, BodyLimit] = {
    SyncMethod.HOST_KEY: SMALL,
    SyncMethod.META: SMALL,
    # Clients before 2.1.28 and AnkiDroid before 2.16 send all their deletions here at once.
    SyncMethod.START: BodyLimit(None, 1 << 20),
    SyncMethod.APPLY_GRAVES: BodyLimit(1 * MiB, _CHUNK_VALUES),
    # Every changed note type, deck, deck config and tag at once (all of them on a first sync).
    SyncMethod.APPLY_CHANGES: BodyLimit(None, 1 << 20),
    SyncMethod.CHUNK: SMALL,
    # 250 rows; typical notes take 1 KiB or so, but the client bounds none of them.
    SyncMethod.APPLY_CHUNK: BodyLimit(None, _CHUNK_VALUES),
    SyncMethod.SANITY_CHECK: SMALL,
    SyncMethod.FINISH: SMALL,
    SyncMethod.ABORT: SMALL,
    SyncMethod.DOWNLOAD: SMALL,
    MediaSyncMethod.BEGIN: SMALL,
    MediaSyncMethod.MEDIA_CHANGES: SMALL,
    MediaSyncMethod.DOWNLOAD_FILES: BodyLimit(64 * KiB, 2 * MAX_MEDIA_FILES + 8),
    MediaSyncMethod.MEDIA_SANITY: SMALL,
}
"""JSON bodies. ``upload`` and ``uploadChanges`` are files, limited by max_sync_payload_megs."""


def raw_limit(decoded: int) -> int:
    """The most compressed bytes a body of ``decoded`` bytes can take, with room to spare.

    zstd and gzip add a few bytes per 128 KiB block to incompressible data; more than this is
    padding (zstd skippable frames decode to nothing) and is refused.
    """
    return decoded + decoded // 256 + 64 * KiB
