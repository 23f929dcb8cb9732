"""Version 11 framing: the ``anki-sync`` header, and request bodies read from ASGI ``receive``
and decoded (``http/zstd.py``) within their limits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

import msgspec
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive

from ankisyncd.errors import BadRequest
from ankisyncd.http.zstd import ZstdBody
from ankisyncd.protocol.envelope import BodyStream, HostKey, SessionKey
from ankisyncd.protocol.limits import raw_limit
from ankisyncd.protocol.versions import ensure_supported
from ankisyncd.threads import in_thread

SYNC_HEADER = "anki-sync"
ORIGINAL_SIZE_HEADER = "anki-original-size"
# Bodies allowed to decode to at most this are decoded on the event loop (well under 1 ms);
# larger ones are decoded in a worker thread, this much compressed input at a time.
INLINE_DECODE_BYTES = 1 << 20
DECODE_BATCH_BYTES = 1 << 20
INLINE_RAW_BYTES = 16 * 1024  # a whole body this small is decoded on the loop whatever its cap


class BodyTooLarge(BadRequest):
    """A body over its limit: answered at once, and the rest of it is not read."""


class SyncHeader(NamedTuple):
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


async def body_chunks(receive: Receive, first: Message | None = None) -> AsyncIterator[bytes]:
    """A request's body pieces as ASGI ``receive`` gives them (after ``first``, a message
    received already): ``request.stream()`` without its final empty piece and flags; a
    disconnect before the end is a ClientDisconnect."""
    while True:
        message, first = first or await receive(), None
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


BodyOpener = Callable[[int], AsyncIterator[bytes]]
BodyCopier = Callable[[Callable[[bytes], object], int], Awaitable[int]]
BodyReader = Callable[[int], Awaitable[bytes]]


class Incoming(NamedTuple):
    """A request decoded from either wire format; the body is decoded only when opened.

    Named tuples, this and SyncHeader: built for every request, they cost a third of what
    frozen dataclasses did (bench/request_cpu.py)."""

    version: int
    host_key: HostKey
    session_key: SessionKey
    client_version: str
    legacy: bool
    open_body: BodyOpener  # (cap on decoded bytes) -> decoded pieces, stopping at the cap
    copy_body: BodyCopier | None = None  # (write, cap) -> size; None: from open_body
    read_body: BodyReader | None = None  # (cap) -> the whole body; None: from open_body

    def stream(self, cap: int) -> BodyStream:
        """The body as a file-like stream for the server, decoded up to ``cap`` bytes."""
        return _Stream(self, cap)

    async def read(self, cap: int) -> bytes:
        """The whole decoded body; over ``cap`` bytes is a 400, without reading the rest.

        Pieces are gathered in a bytearray, which every parser takes as bytes: growing it
        in place holds the body once, where joining pieces would hold it twice."""
        if self.read_body is not None:
            return await self.read_body(cap)
        return await gather(self.open_body, cap)


async def gather(open_body: BodyOpener, cap: int) -> bytes:
    """The whole body ``open_body`` decodes; over ``cap`` bytes is a BodyTooLarge."""
    body = bytearray()
    async for part in open_body(cap + 1):
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
            await in_thread(write, piece)
        return size


def v11_request(header: SyncHeader, receive: Receive) -> Incoming:
    """A version-11 request: header fields plus a zstd body, read from ASGI ``receive``."""
    first: list[Message] = []  # a message ``read_body`` received and left to the others

    def chunks() -> AsyncIterator[bytes]:
        return body_chunks(receive, first.pop() if first else None)

    async def read_body(cap: int) -> bytes:
        # Nearly every body comes whole in its first message: it is decoded at once, without
        # the two async generators of the pieces' path (same checks, same results).
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            data = message.get("body", b"")
            if cap <= INLINE_DECODE_BYTES or len(data) <= INLINE_RAW_BYTES:
                return _decode_whole(data, cap)
        first.append(message)
        return await gather(open_body, cap)

    async def open_body(cap: int) -> AsyncIterator[bytes]:
        body, raw, most = ZstdBody(cap), 0, raw_limit(cap)
        try:
            inline = cap <= INLINE_DECODE_BYTES
            batch: list[bytes] = []
            batched = 0
            async for data in chunks():
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
                    out = await in_thread(body.feed, b"".join(batch))
                    batch.clear()
                    batched = 0
                for piece in out:
                    yield piece
            if batch and not body.capped:
                rest = b"".join(batch)
                # A small body (all of most requests) is decoded here: a thread hop would cost
                # more CPU than its decoding.
                small = raw <= INLINE_RAW_BYTES
                pieces = body.feed(rest) if small else await in_thread(body.feed, rest)
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
            async for data in chunks():
                raw += len(data)
                if raw > most:
                    raise BodyTooLarge("request body exceeds the size limit")
                if body.capped:
                    continue  # read the rest, up to ``most``, so the client still gets its answer
                batch.append(data)
                batched += len(data)
                if batched >= DECODE_BATCH_BYTES:
                    await in_thread(body.feed, b"".join(batch))
                    batch, batched = [], 0
            if batch and not body.capped:
                await in_thread(body.feed, b"".join(batch))
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
        read_body,
    )


def _decode_whole(data: bytes, cap: int) -> bytes:
    """A body received whole, decoded as ``gather(open_body, cap)`` would decode it."""
    if len(data) > raw_limit(cap + 1):
        raise BodyTooLarge("request body exceeds the size limit")
    body = ZstdBody(cap + 1)
    try:
        pieces = body.feed(data)
    finally:
        body.release()
    if body.size > cap:
        raise BodyTooLarge("request body exceeds the size limit")
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)
