"""Connection limits uvicorn lacks: a header read deadline, a header size cap, a body stall limit.

uvicorn closes idle keep-alive connections and caps concurrent ones (503 beyond the cap), but
a connection that sends half a request line, or full headers and no body, is kept forever.
This subclass of uvicorn's httptools protocol adds one timer per connection for those cases,
moved only when it fires; its per-request cost is a few attribute writes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ankisyncd.http.writes import OneWriteHttpToolsProtocol

# Request line and headers of real clients are well under 2 KiB (the anki-sync header ~200 B).
MAX_HEADER_BYTES = 64 * 1024

_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
    b"content-length: 3\r\nconnection: close\r\n\r\n408"
)
_TOO_LARGE_ANSWER = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
    b"content-length: 3\r\nconnection: close\r\n\r\n431"
)


@dataclass(frozen=True)
class ConnectionLimits:
    """Seconds allowed for a request's line and headers, and for a body to make progress."""

    header_timeout: float
    body_timeout: float


def guarded_protocol(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with ``limits`` applied to every connection."""

    class Guarded(GuardedHttpToolsProtocol):
        header_timeout = limits.header_timeout
        body_timeout = limits.body_timeout

    return Guarded


class GuardedHttpToolsProtocol(OneWriteHttpToolsProtocol):
    """Closes connections whose request headers or body stall.

    Headers have a deadline counted from the connection's first byte wait (or the first byte of
    a next request): sending them slowly does not extend it. A body may take as long as it
    needs while it keeps moving: the connection is closed only when no byte has arrived for
    ``body_timeout`` seconds while the server was ready to read. Clients abort on their own
    after 30 s (60 s on desktop media) without progress, so the defaults stay above that.
    """

    header_timeout = 30.0
    body_timeout = 90.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One timer per connection, moved only when it fires: a request sets ``_deadline`` and
        # arms nothing unless the timer would fire after it. Arming and cancelling a timer for
        # each phase of each request cost a small request ~3% of its CPU.
        self._guard: asyncio.TimerHandle | None = None
        self._guard_at = 0.0  # when the timer fires
        self._deadline = 0.0  # headers: their deadline; body: when progress is checked next
        self._header_bytes = 0
        self._in_headers = True
        self._in_body = False
        self._body_seen = 0  # pieces of body received since the body was last checked
        self._body_checked = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_body:
            self._body_seen += 1
        super().data_received(data)
        # Counted after parsing: one read may carry the headers and the start of a large body
        # (nginx sends them together); only bytes that did not end the headers count.
        if self._in_headers:
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
                self._answer_and_close(_TOO_LARGE_ANSWER)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_headers:  # a next request on a kept-alive connection
            self._in_headers, self._header_bytes = True, 0
            self._watch(self.header_timeout)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._in_body, self._body_seen, self._body_checked = True, 0, 0
        self._watch(self.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False  # the timer, if it fires before the next request, does nothing
        super().on_message_complete()

    def _watch(self, delay: float) -> None:
        """Check the current phase ``delay`` seconds from now."""
        self._deadline = deadline = self.loop.time() + delay
        if self._guard is None or self._guard_at > deadline:
            self._disarm()
            self._guard_at = deadline
            self._guard = self.loop.call_at(deadline, self._fired)

    def _disarm(self) -> None:
        if self._guard is not None:
            self._guard.cancel()
            self._guard = None

    def _fired(self) -> None:
        self._guard = None
        if self.transport.is_closing() or not (self._in_headers or self._in_body):
            return
        if self.loop.time() < self._deadline:  # a later request moved it
            self._watch(self._deadline - self.loop.time())
        elif self._in_headers:
            self.logger.info("closing %s: request headers not received in time", self._peer())
            self._answer_and_close(_TIMEOUT_ANSWER)
        elif self._body_seen != self._body_checked or self.flow.read_paused:
            # Progress, or the server itself is not reading: not the client's stall.
            self._body_checked = self._body_seen
            self._watch(self.body_timeout)
        else:
            self.logger.info("closing %s: request body stalled", self._peer())
            self.transport.close()  # the handler sees a disconnect and undoes what it started

    def _answer_and_close(self, answer: bytes) -> None:
        self._disarm()
        self._in_headers = False
        self.transport.write(answer)
        self.transport.close()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
