"""zstd bodies in both directions: a streaming decoder with a cap on its output (requests),
and compressors for answers and downloads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from io import BufferedReader
from typing import IO, cast

import zstandard

from ankisyncd.errors import BadRequest

# The client compresses at zstd's default level, whose frames declare a 2 MiB window at most;
# refusing larger ones bounds the decoder's memory.
MAX_WINDOW_BYTES = 1 << 23
FILE_CHUNK_BYTES = 1 << 20


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


def compress_file(fh: BufferedReader) -> Iterator[bytes]:
    """Compress an open file into one zstd frame, chunk by chunk; closes the file at the end.

    Chunks are read into one reused buffer: a new ``bytes`` per chunk costs an extra copy,
    ~10 % of the compression's CPU for a collection of 33 MB."""
    compressor = zstandard.ZstdCompressor().compressobj()
    buffer = bytearray(FILE_CHUNK_BYTES)
    view = memoryview(buffer)
    try:
        while size := fh.readinto(buffer):
            out = compressor.compress(view[:size])
            if out:
                yield out
        yield compressor.flush()
    finally:
        fh.close()
