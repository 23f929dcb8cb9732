"""Sync versions 8 to 10: a multipart form with an optionally gzipped ``data`` part.

Desktop 2.1.50 to 2.1.56, AnkiDroid before 2.16 and older clients send these. The form is
decoded here into the same Incoming request as version 11, so nothing further down knows
which wire format was used. Answers go back uncompressed.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import Message, Receive

from ankisyncd.errors import BadRequest
from ankisyncd.http.framing import Incoming
from ankisyncd.protocol.envelope import HostKey, SessionKey
from ankisyncd.protocol.versions import LEGACY_WIRE_VERSION

READ_CHUNK = 1 << 20


def _capped(receive: Receive, limit: int) -> Receive:
    """Refuse a raw body longer than ``limit`` bytes while it is being read."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BadRequest("multipart body exceeds the size limit")
        return message

    return wrapped


async def legacy_request(request: Request, max_raw_bytes: int) -> Incoming:
    """Decode a multipart request; 400 for anything that is not a readable form."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadRequest("no anki-sync header and not a multipart form")
    capped = Request(request.scope, _capped(request.receive, max_raw_bytes))
    try:
        form = await capped.form(max_files=4, max_fields=16)
    except MultiPartException as exc:
        raise BadRequest(f"bad multipart form: {exc.message}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("bad multipart form") from exc
    fields: dict[str, Any] = {}
    host_key = ""
    for key, value in form.multi_items():
        fields[key] = value
        if key in ("k", "sk") and isinstance(value, str):
            host_key = value  # the last one wins; old media clients send the hkey as "sk"
    data = fields.get("data")
    compressed = fields.get("c", "0") not in ("0", "")

    async def open_body(cap: int, _max_window: int) -> AsyncIterator[bytes]:
        if isinstance(data, UploadFile):
            source = data.file
        elif isinstance(data, str) and data:
            source = io.BytesIO(data.encode())
        else:
            yield b"{}"  # old clients leave data out of some requests
            return
        source.seek(0)
        async for part in _decode(source, compressed, cap):
            yield part

    def text(name: str) -> str:
        value = fields.get(name, "")
        return value if isinstance(value, str) else ""

    return Incoming(
        LEGACY_WIRE_VERSION, HostKey(host_key), SessionKey(text("s")), text("v"), True, open_body
    )


async def _decode(source: Any, compressed: bool, cap: int) -> AsyncIterator[bytes]:
    """Yield the part's bytes, gunzipped when ``compressed``, stopping quietly at ``cap``."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if compressed else None
    produced = 0

    def step() -> bytes | None:
        """The next piece of output, or None at the end."""
        if inflater is None:
            return source.read(min(READ_CHUNK, cap - produced)) or None
        while not inflater.eof:
            pending = inflater.unconsumed_tail or source.read(READ_CHUNK)
            if not pending:
                raise BadRequest("truncated gzip data")
            try:
                out: bytes = inflater.decompress(pending, cap - produced)
            except zlib.error as exc:
                raise BadRequest("invalid gzip data") from exc
            if out:
                return out
        return None

    while produced < cap:
        out = await anyio.to_thread.run_sync(step)
        if out is None:
            return
        produced += len(out)
        yield out
