"""Version 11 framing: the ``anki-sync`` header and zstd bodies in both directions."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, BinaryIO, cast

import anyio.to_thread
import msgspec
import zstandard
from starlette.requests import ClientDisconnect
from starlette.types import Receive

from ankisyncd.errors import BadRequest
from ankisyncd.protocol.envelope import BodyStream, HostKey, SessionKey
from ankisyncd.protocol.limits import raw_limit
from ankisyncd.protocol.versions import ensure_supported

SYNC_HEADER = "anki-sync"
ORIGINAL_SIZE_HEADER = "anki-original-size"
# The client compresses at zstd's default level, whose frames declare a 2 MiB window at most;
# refusing larger ones bounds the decoder's memory.
MAX_WINDOW_BYTES = 1 << 23
FILE_CHUNK_BYTES = 1 << 20
# Bodies allowed to decode to at most this are decoded on the event loop (well under 1 ms);
# larger ones are decoded in a worker thread, this much compressed input at a time.
INLINE_DECODE_BYTES = 1 << 20
DECODE_BATCH_BYTES = 1 << 20
INLINE_RAW_BYTES = 16 * 1024  # a whole body this small is decoded on the loop whatever its cap


class BodyTooLarge(BadRequest):
    """A body over its limit: answered at once, and the rest of it is not read."""


@dataclass(frozen=True)
class SyncHeader:
    version: int
    host_key: HostKey
    session_key: SessionKey
    client_version: str


_SYNC_HEADER_NAME = SYNC_HEADER.encode()


def raw_sync_header(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The first ``anki-sync`` header of an ASGI scope's (lowercased) headers, as Starlette's
    ``request.headers.get`` finds it, without building its Headers object."""
    for name, value in headers:
        if name == _SYNC_HEADER_NAME:
            return value.decode("latin-1")
    return None


async def body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """A request's body pieces as ASGI ``receive`` gives them: ``request.stream()`` without
    its final empty piece and flags; a disconnect before the end is a ClientDisconnect."""
    while True:
        message = await receive()
        if message["type"] == "http.request":
            body = message.get("body", b"")
            if body:
                yield body
            if not message.get("more_body", False):
                return
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


class _WireHeader(msgspec.Struct):
    v: int
    k: str
    c: str
    s: str


# Typed decoding in one pass: ~0.2 us, where json.loads and checks took ~3.5 us per request.
_decode_header = msgspec.json.Decoder(_WireHeader).decode


def parse_sync_header(raw: str) -> SyncHeader:
    """Read the ``anki-sync`` header: compact JSON with v, k, c and s, all required (other keys
    are ignored). ``v`` must be an integer (not a boolean or 11.0), the others strings."""
    try:
        header = _decode_header(raw)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid anki-sync header: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise BadRequest("invalid anki-sync header") from exc
    version = ensure_supported(header.v)
    return SyncHeader(version, HostKey(header.k), SessionKey(header.s), header.c)


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

    def __init__(self, cap: int, out: Callable[[bytes], object] | None = None) -> None:
        """Output is kept for ``feed`` to return, or given to ``out`` as it is produced."""
        self.capped = False
        self._pending: list[bytes] = []
        self._sink = _Sink(cap, out or self._pending.append)
        # A new decoder costs ~17 us (its context and buffers), decoding a small body ~1 us:
        # decoders are reused, each by one body at a time (they are not safe to share).
        self._decoder: zstandard.ZstdDecompressor | None = _take_decoder()
        self._writer = self._decoder.stream_writer(
            cast(IO[bytes], self._sink), write_return_read=True, closefd=False
        )

    def release(self) -> None:
        """Give the decoder back for another body; this one is not fed again."""
        # Only after a small body: the decoder keeps the pages its output touched.
        small = self._sink.size <= REUSED_DECODER_BYTES
        if self._decoder is not None and small and len(_free_decoders) < MAX_FREE_DECODERS:
            _free_decoders.append(self._decoder)
        self._decoder = None

    def feed(self, data: bytes) -> list[bytes]:
        """Decode one piece of the body; returns the output it produced, in pieces (joining
        them would hold the output twice)."""
        if data and not self.capped:
            if self._decoder is None:
                raise RuntimeError("body decoder already released")
            try:
                self._writer.write(data)
            except _CapReached:
                self.capped = True
            except zstandard.ZstdError as exc:
                raise BadRequest("invalid zstd body") from exc
        out, self._pending[:] = self._pending[:], []
        return out

    @property
    def size(self) -> int:
        """Bytes decoded so far."""
        return self._sink.size


# Free decoders: taking one and giving it back are single list operations, atomic in CPython.
_free_decoders: list[zstandard.ZstdDecompressor] = []
MAX_FREE_DECODERS = 8
REUSED_DECODER_BYTES = 256 * 1024


def _take_decoder() -> zstandard.ZstdDecompressor:
    try:
        return _free_decoders.pop()
    except IndexError:
        return zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW_BYTES)


_per_thread = threading.local()  # a compressor is not safe to share between threads


# Answers up to this size are compressed at a fast level: zstd's default level spends ~6 us
# building entropy tables for a 140-byte meta answer, level -1 ~1.7 us (10% larger output).
SMALL_ANSWER_BYTES = 1024
FAST_LEVEL = -1


def compress(body: bytes) -> bytes:
    """One zstd frame holding ``body``."""
    small = len(body) <= SMALL_ANSWER_BYTES
    name = "fast" if small else "compressor"
    compressor = getattr(_per_thread, name, None)
    if compressor is None:
        compressor = zstandard.ZstdCompressor(level=FAST_LEVEL if small else 3)
        setattr(_per_thread, name, compressor)
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


BodyOpener = Callable[[int], AsyncIterator[bytes]]
BodyCopier = Callable[[Callable[[bytes], object], int], Awaitable[int]]


@dataclass(frozen=True)
class Incoming:
    """A request decoded from either wire format; the body is decoded only when opened."""

    version: int
    host_key: HostKey
    session_key: SessionKey
    client_version: str
    legacy: bool
    open_body: BodyOpener  # (cap on decoded bytes) -> decoded pieces, stopping at the cap
    copy_body: BodyCopier | None = None  # (write, cap) -> size; None: from open_body

    def stream(self, cap: int) -> BodyStream:
        """The body as a file-like stream for the server, decoded up to ``cap`` bytes."""
        return _Stream(self, cap)

    async def read(self, cap: int) -> bytes:
        """The whole decoded body; over ``cap`` bytes is a 400, without reading the rest.

        A bytearray, which every parser takes as bytes: growing it in place holds the body
        once, where joining pieces would hold it twice."""
        body = bytearray()
        async for part in self.open_body(cap + 1):
            if len(body) + len(part) > cap:
                raise BodyTooLarge("request body exceeds the size limit")
            body += part
        return body  # type: ignore[return-value]


@dataclass(frozen=True)
class _Stream:
    incoming: Incoming
    cap: int

    async def copy_to(self, write: Callable[[bytes], object]) -> int:
        if self.incoming.copy_body is not None:
            return await self.incoming.copy_body(write, self.cap)
        size = 0
        async for piece in self.incoming.open_body(self.cap):
            size += len(piece)
            await anyio.to_thread.run_sync(write, piece)
        return size


def v11_request(header: SyncHeader, chunks: AsyncIterator[bytes]) -> Incoming:
    """A version-11 request: header fields plus a zstd body."""

    async def open_body(cap: int) -> AsyncIterator[bytes]:
        body, raw, most = ZstdBody(cap), 0, raw_limit(cap)
        try:
            inline = cap <= INLINE_DECODE_BYTES
            batch: list[bytes] = []
            batched = 0
            async for data in chunks:
                raw += len(data)
                if raw > most:  # padding (skippable frames) or a drain without end
                    raise BodyTooLarge("request body exceeds the size limit")
                if body.capped:
                    continue  # read the rest, up to ``most``, so the client still gets its answer
                if inline:
                    out = body.feed(data)
                else:
                    batch.append(data)
                    batched += len(data)
                    if batched < DECODE_BATCH_BYTES:
                        continue
                    out = await anyio.to_thread.run_sync(body.feed, b"".join(batch))
                    batch.clear()
                    batched = 0
                for piece in out:
                    yield piece
            if batch and not body.capped:
                rest = b"".join(batch)
                # A small body (all of most requests) is decoded here: a thread hop would cost
                # more CPU than its decoding.
                small = raw <= INLINE_RAW_BYTES
                pieces = (
                    body.feed(rest) if small else await anyio.to_thread.run_sync(body.feed, rest)
                )
                for piece in pieces:
                    yield piece
        finally:
            body.release()

    async def copy_body(write: Callable[[bytes], object], cap: int) -> int:
        # Output goes to ``write`` as the decoder produces it (128 KiB at a time), in the
        # worker thread: a body that decodes to much more than it weighs is never held whole.
        body, raw, most = ZstdBody(cap, write), 0, raw_limit(cap)
        try:
            batch: list[bytes] = []
            batched = 0
            async for data in chunks:
                raw += len(data)
                if raw > most:
                    raise BodyTooLarge("request body exceeds the size limit")
                if body.capped:
                    continue  # read the rest, up to ``most``, so the client still gets its answer
                batch.append(data)
                batched += len(data)
                if batched >= DECODE_BATCH_BYTES:
                    await anyio.to_thread.run_sync(body.feed, b"".join(batch))
                    batch, batched = [], 0
            if batch and not body.capped:
                await anyio.to_thread.run_sync(body.feed, b"".join(batch))
            return body.size
        finally:
            body.release()

    return Incoming(
        header.version,
        header.host_key,
        header.session_key,
        header.client_version,
        False,
        open_body,
        copy_body,
    )
