"""Sync versions 8 to 10: a multipart form with an optionally gzipped ``data`` part.

Desktop 2.1.50 to 2.1.56, AnkiDroid before 2.16 and older clients send these. The form is
decoded here into the same Incoming request as version 11, so nothing further down knows
which wire format was used. Answers go back uncompressed.

The form is read as it arrives, with a limit on its size; the host key is checked as soon as
its field ends, before the rest is read. Desktop 2.1.50 to 2.1.56 send ``data`` before ``k``, so
for them the limit, not the key, bounds what is read first. ``data`` stays in memory up to
1 MiB; beyond that it goes to an unnamed file in the data root, gone when closed.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from tempfile import SpooledTemporaryFile
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from ankisyncd.errors import BadRequest
from ankisyncd.http.framing import BodyTooLarge, Incoming
from ankisyncd.protocol.envelope import HostKey, SessionKey
from ankisyncd.protocol.versions import LEGACY_WIRE_VERSION
from ankisyncd.threads import in_thread

READ_CHUNK = 1 << 20
DATA_IN_MEMORY = 1 << 20
# Fields other than data: k, s, c, v and a few bytes each.
MAX_FIELD_BYTES = 4096
MAX_PARTS = 16
KEY_FIELDS = ("k", "sk")  # old media clients send the hkey as "sk"


class _Form:
    """Collects the parts of one form: short text fields, and ``data`` in a spooled file."""

    def __init__(self, spool_dir: Path) -> None:
        self.fields: dict[str, str] = {}
        self.data: SpooledTemporaryFile[bytes] | None = None
        self.ended_fields: list[str] = []  # fields completed since last looked at
        self.host_key = ""
        self._spool_dir = spool_dir
        self._name = ""
        self._header = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self._text = bytearray()
        self._parts = 0

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._add("_header", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_value", d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _add(self, attr: str, data: bytes) -> None:
        setattr(self, attr, getattr(self, attr) + data)

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise BadRequest("bad multipart form: too many parts")
        self._headers, self._name, self._text = {}, "", bytearray()

    def _header_end(self) -> None:
        self._headers[self._header.lower()] = self._value
        self._header, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("latin-1")
        if self._name == "data" and self.data is None:
            # Closed by close() or once the body has been read.
            self.data = SpooledTemporaryFile(  # noqa: SIM115
                DATA_IN_MEMORY, "w+b", dir=str(self._spool_dir)
            )

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._name == "data" and self.data is not None:
            self.data.write(data[start:end])
            return
        self._text += data[start:end]
        if len(self._text) > MAX_FIELD_BYTES:
            raise BadRequest("bad multipart form: field too long")

    def _part_end(self) -> None:
        if self._name != "data":
            try:
                self.fields[self._name] = self._text.decode()
            except UnicodeDecodeError:
                raise BadRequest("bad multipart form") from None
            self.ended_fields.append(self._name)
            if self._name in KEY_FIELDS:
                self.host_key = self.fields[self._name]  # the last one wins

    def close(self) -> None:
        if self.data is not None:
            self.data.close()


async def legacy_request(
    request: Request,
    max_raw_bytes: int,
    spool_dir: Path,
    check_key: Callable[[str], Awaitable[object]] | None,
) -> Incoming:
    """Decode a multipart request of at most ``max_raw_bytes``; 400 for anything else.

    ``check_key`` is awaited with the host key as soon as its field has arrived (it raises to
    refuse the request), so a request with a wrong key is not read further.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise BadRequest("no anki-sync header and not a multipart form")
    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if not boundary:
        raise BadRequest("bad multipart form: no boundary")
    form = _Form(spool_dir)
    parser = MultipartParser(boundary, form.callbacks())  # type: ignore[arg-type]
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > max_raw_bytes:
                raise BodyTooLarge("multipart body exceeds the size limit")
            if form.data is not None and form.data.tell() >= DATA_IN_MEMORY:
                await in_thread(parser.write, chunk)  # writes to a file
            else:
                parser.write(chunk)
            for name in form.ended_fields:
                if name in KEY_FIELDS and check_key is not None:
                    await check_key(form.fields[name])
            form.ended_fields.clear()
        parser.finalize()
    except MultipartParseError as exc:
        form.close()
        raise BadRequest("bad multipart form") from exc
    except BaseException:
        form.close()
        raise
    return _incoming(form)


def _incoming(form: _Form) -> Incoming:
    fields, data = form.fields, form.data
    compressed = fields.get("c", "0") not in ("0", "")

    async def open_body(cap: int) -> AsyncIterator[bytes]:
        source: Any
        if data is not None:
            source = data
        elif fields.get("data"):
            source = io.BytesIO(fields["data"].encode())
        else:
            yield b"{}"  # old clients leave data out of some requests
            return
        source.seek(0)
        try:
            async for part in _decode(source, compressed, cap):
                yield part
        finally:
            source.close()

    return Incoming(
        LEGACY_WIRE_VERSION,
        HostKey(form.host_key),
        SessionKey(fields.get("s", "")),
        fields.get("v", ""),
        True,
        open_body,
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
                # Bounded per step: gzip of zeros grows 1,000-fold.
                out: bytes = inflater.decompress(pending, min(cap - produced, 4 * READ_CHUNK))
            except zlib.error as exc:
                raise BadRequest("invalid gzip data") from exc
            if out:
                return out
        return None

    while produced < cap:
        out = await in_thread(step)
        if out is None:
            return
        produced += len(out)
        yield out
