"""``meta``: compare collection state; the first call of every sync."""

from __future__ import annotations

import time

from ankisyncd.errors import ClientTooOld
from ankisyncd.protocol.messages import MetaRequest, MetaResponse
from ankisyncd.protocol.versions import (
    SYNC_VERSION_09_V2_SCHEDULER,
    SYNC_VERSION_10_V2_TIMEZONE,
    is_supported,
)
from ankisyncd.storage.collection import CollectionState, now_ms

# Refusals the official server sends to clients too old for the stored collection.
NO_V2_SCHEDULER = "Your client does not support the v2 scheduler"
NO_NEW_TIMEZONE = "Your client does not support the new timezone handling."


def meta(
    state: CollectionState, req: MetaRequest, media_usn: int, max_collection_bytes: int
) -> MetaResponse:
    """Build the ``meta`` answer for a stored collection."""
    if not is_supported(req.version):
        # Deliberately 501: old clients read it as "please upgrade".
        raise ClientTooOld(f"sync version {req.version} is not supported")
    message, cont = "", True
    if req.version < SYNC_VERSION_09_V2_SCHEDULER and state.sched_ver >= 2:
        message, cont = NO_V2_SCHEDULER, False
    elif req.version < SYNC_VERSION_10_V2_TIMEZONE and state.has_creation_offset:
        message, cont = NO_NEW_TIMEZONE, False
    # A collection over the size limit reports a fresh scm: every client must then do a
    # one-way sync instead of growing it further.
    too_big = state.file_size > max_collection_bytes
    return MetaResponse(
        modified=state.modified,
        schema_modified=now_ms() if too_big else state.schema_modified,
        usn=state.usn,
        server_time=int(time.time()),
        message=message,
        should_continue=cont,
        host_number=0,
        empty=state.empty,
        media_usn=media_usn,
    )
