"""SyncRequest: what every wire format is decoded into before the server sees it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import NewType

HostKey = NewType("HostKey", str)
SessionKey = NewType("SessionKey", str)
UserName = NewType("UserName", str)


@dataclass(frozen=True)
class SyncRequest:
    """One request, whatever its framing (v11 header + zstd, or legacy multipart + gzip)."""

    method: str
    version: int
    host_key: HostKey
    session_key: SessionKey
    client_version: str


BodyStream = AsyncIterator[bytes]
"""Decompressed body bytes, for methods whose body is a file rather than JSON."""
