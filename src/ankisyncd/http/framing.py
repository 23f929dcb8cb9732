"""Version 11 framing: the ``anki-sync`` header and zstd bodies in both directions."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import IO, BinaryIO, cast

import zstandard

from ankisyncd.errors import BadRequest
from ankisyncd.protocol.envelope import HostKey, SessionKey
from ankisyncd.protocol.versions import ensure_supported

SYNC_HEADER = "anki-sync"
ORIGINAL_SIZE_HEADER = "anki-original-size"
# Frames from clients declare small windows; refusing huge ones bounds decoder memory.
MAX_WINDOW_BYTES = 1 << 27
UNAUTHENTICATED_MAX_WINDOW_BYTES = 1 << 23
FILE_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class SyncHeader:
    version: int
    host_key: HostKey
    session_key: SessionKey
    client_version: str


def parse_sync_header(raw: str) -> SyncHeader:
    """Read the ``anki-sync`` header: compact JSON with v, k, c and s, all required."""
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        raise BadRequest("invalid anki-sync header") from exc
    if not isinstance(obj, dict):
        raise BadRequest("invalid anki-sync header")
    version, key, client, session = obj.get("v"), obj.get("k"), obj.get("c"), obj.get("s")
    if isinstance(version, bool) or not isinstance(version, int):
        raise BadRequest("invalid anki-sync header: v")
    if not (isinstance(key, str) and isinstance(client, str) and isinstance(session, str)):
        raise BadRequest("invalid anki-sync header: k, c and s must be strings")
    return SyncHeader(ensure_supported(version), HostKey(key), SessionKey(session), client)


class _CapReached(Exception):
    pass


class _Sink:
    """Receives decoder output; stops the decoder once ``cap`` bytes have come out."""

    def __init__(self, cap: int, out: Callable[[bytes], object]) -> None:
        self.cap, self.out, self.size = cap, out, 0

    def write(self, data: bytes) -> int:
        room = self.cap - self.size
        if len(data) > room:
            self.out(data[:room])
            self.size = self.cap
            raise _CapReached
        self.out(data)
        self.size += len(data)
        return len(data)


class ZstdBody:
    """Decode a streamed zstd request body with a cap on the output.

    Clients write frames without a content size, so a one-shot decoder cannot be used. At the
    cap, decoding stops quietly (as the official server does); ``capped`` tells the caller.
    """

    def __init__(self, cap: int, *, max_window: int = MAX_WINDOW_BYTES) -> None:
        self.capped = False
        self._pending: list[bytes] = []
        self._sink = _Sink(cap, self._pending.append)
        decoder = zstandard.ZstdDecompressor(max_window_size=max_window)
        self._writer = decoder.stream_writer(
            cast(IO[bytes], self._sink), write_return_read=True, closefd=False
        )

    def feed(self, data: bytes) -> bytes:
        """Decode one piece of the body; returns the output it produced."""
        if data and not self.capped:
            try:
                self._writer.write(data)
            except _CapReached:
                self.capped = True
            except zstandard.ZstdError as exc:
                raise BadRequest("invalid zstd body") from exc
        out = b"".join(self._pending)
        self._pending.clear()
        return out


_per_thread = threading.local()  # a compressor is not safe to share between threads


def compress(body: bytes) -> bytes:
    """One zstd frame holding ``body``."""
    compressor = getattr(_per_thread, "compressor", None)
    if compressor is None:
        compressor = _per_thread.compressor = zstandard.ZstdCompressor()
    return cast(bytes, compressor.compress(body))


def compress_file(fh: BinaryIO) -> Iterator[bytes]:
    """Compress an open file into one zstd frame, chunk by chunk; closes the file at the end."""
    compressor = zstandard.ZstdCompressor().compressobj()
    try:
        while chunk := fh.read(FILE_CHUNK_BYTES):
            out = compressor.compress(chunk)
            if out:
                yield out
        yield compressor.flush()
    finally:
        fh.close()


BodyOpener = Callable[[int, int], AsyncIterator[bytes]]


@dataclass(frozen=True)
class Incoming:
    """A request decoded from either wire format; the body is decoded only when opened."""

    version: int
    host_key: HostKey
    session_key: SessionKey
    client_version: str
    legacy: bool
    open_body: BodyOpener  # (cap on decoded bytes, cap on the zstd window) -> decoded pieces

    async def read(self, cap: int, max_window: int = MAX_WINDOW_BYTES) -> bytes:
        """The whole decoded body; over ``cap`` bytes is a 400."""
        parts, size = [], 0
        async for part in self.open_body(cap + 1, max_window):
            size += len(part)
            if size > cap:
                raise BadRequest("request body exceeds the size limit")
            parts.append(part)
        return b"".join(parts)


def v11_request(header: SyncHeader, chunks: AsyncIterator[bytes]) -> Incoming:
    """A version-11 request: header fields plus a zstd body."""

    async def open_body(cap: int, max_window: int) -> AsyncIterator[bytes]:
        body = ZstdBody(cap, max_window=max_window)
        async for data in chunks:
            out = body.feed(data)
            if out:
                yield out
            if body.capped:
                break
        # Read what is left of a body we stopped decoding, so the client still gets an answer.
        async for _ in chunks:
            pass

    return Incoming(
        header.version, header.host_key, header.session_key, header.client_version, False, open_body
    )
