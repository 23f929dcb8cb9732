"""200 answers: zstd with ``anki-original-size`` for v11, plain for the legacy versions.

Large answers are encoded and compressed in a worker thread, so the event loop only moves bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from io import BufferedReader

from starlette.responses import Response, StreamingResponse

from ankisyncd.http.framing import ORIGINAL_SIZE_HEADER
from ankisyncd.http.zstd import FILE_CHUNK_BYTES, compress, compress_file
from ankisyncd.protocol.versions import SYNC_VERSION_11_DIRECT_POST
from ankisyncd.threads import in_thread

# Answers up to this size are compressed on the event loop (tens of microseconds).
INLINE_REPLY_BYTES = 64 * 1024


_ORIGINAL_SIZE = ORIGINAL_SIZE_HEADER.encode()
_OCTET_STREAM = (b"content-type", b"application/octet-stream")


class Reply(Response):
    """A 200 answer whose header list is built directly: the same headers, in the same order,
    as ``Response(body, headers=...)`` gives, without its mapping and checks (~5% of a
    ``meta``'s instructions went to building and sending the answer)."""

    def __init__(self, body: bytes, first: tuple[bytes, bytes] | None = None) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        length = (b"content-length", str(len(body)).encode())
        self.raw_headers = [first, length] if first is not None else [length, _OCTET_STREAM]


def reply_now(body: bytes, version: int) -> Response:
    """Answer ``body``, compressing it on the calling thread."""
    if version < SYNC_VERSION_11_DIRECT_POST:
        return Reply(body)  # plain, typed as a stream of bytes
    return Reply(compress(body), (_ORIGINAL_SIZE, str(len(body)).encode()))


async def reply(body: bytes, version: int) -> Response:
    """Answer ``body``; a large one is compressed off the event loop."""
    if len(body) <= INLINE_REPLY_BYTES:
        return reply_now(body, version)
    return await in_thread(reply_now, body, version)


async def reply_encoded(encode: Callable[[], bytes], version: int) -> Response:
    """Answer what ``encode`` returns; compressed off the loop when large. Encoding stays on
    the loop: answers are at most one chunk of 250 rows, and a thread hop costs more CPU than
    encoding a usual one (server CPU per small sync, bench M)."""
    return await reply(encode(), version)


def file_reply(fh: BufferedReader, size: int, version: int) -> Response:
    """A whole collection file: zstd-streamed for v11, raw with a length for legacy clients."""
    if version < SYNC_VERSION_11_DIRECT_POST:
        return StreamingResponse(
            _chunks(fh),
            media_type="application/octet-stream",
            headers={"content-length": str(size)},
        )
    # Starlette iterates a plain iterator in a worker thread: compression stays off the loop.
    return StreamingResponse(compress_file(fh), headers={ORIGINAL_SIZE_HEADER: str(size)})


def _chunks(fh: BufferedReader) -> Iterator[bytes]:
    try:
        while chunk := fh.read(FILE_CHUNK_BYTES):
            yield chunk
    finally:
        fh.close()
