"""One socket write per answer: uvicorn writes an answer's head and its body with two calls.

On loopback or a LAN each write is a TCP segment of its own and wakes the client once more;
the official server sends both with one ``writev``. Here an answer's head waits for the next
write (its body) and the two leave together; an answer that ends, or a connection that closes,
first sends what waits.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# A body at least this large is written after the head rather than copied onto it.
JOIN_BYTES = 64 * 1024
# Written while the client waits to send its body: it must leave at once.
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class HeadHeld:
    """A connection's transport as uvicorn sees it: an answer's head is held until the next
    write, ``flush`` or ``close``; everything else goes straight to the real transport."""

    __slots__ = ("_held", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held = b""

    def write(self, data: bytes) -> None:
        held = self._held
        if held:
            self._held = b""
            if len(data) < JOIN_BYTES:
                self._transport.write(held + data)
                return
            self._transport.write(held)
        elif data.startswith(b"HTTP/1.1 ") and data != _CONTINUE:
            self._held = data
            return
        self._transport.write(data)

    def flush(self) -> None:
        """Send what is held."""
        if self._held:
            held, self._held = self._held, b""
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    # What uvicorn's httptools protocol and request cycles call besides ``write`` and ``close``
    # (it reads addresses and TLS from the real transport before wrapping; no WebSocket
    # upgrades: serving.py turns them off). No ``__getattr__``: a class with one pays on
    # every attribute read.
    def is_closing(self) -> bool:
        return self._transport.is_closing()


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a ``HeadHeld``: its request cycles take the
    protocol's transport when they start."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = HeadHeld(transport)  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        self.transport.flush()  # type: ignore[attr-defined]  # a HEAD answer is only a head
        super().on_response_complete()
