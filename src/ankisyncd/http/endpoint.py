"""What every ``/sync`` and ``/msync`` request shares: method lookup, decoding from either wire
format, authentication, bounded bodies, errors and the log line (``collection_endpoint.py`` and
``media_endpoint.py`` hold what each side's methods do)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from ankisyncd.http.address import AddressSource, printable
from ankisyncd.http.errors import error_response
from ankisyncd.http.framing import (
    INLINE_DECODE_BYTES,
    Incoming,
    parse_sync_header,
    raw_sync_header,
    v11_request,
)
from ankisyncd.http.legacy import legacy_request
from ankisyncd.http.observe import note
from ankisyncd.protocol.envelope import UserName
from ankisyncd.protocol.limits import BODY_LIMITS, raw_limit
from ankisyncd.protocol.methods import MediaSyncMethod, SyncMethod
from ankisyncd.server import SyncServer
from ankisyncd.threads import in_thread

T = TypeVar("T")
Method = SyncMethod | MediaSyncMethod
# Large bodies are decompressed and parsed a few at a time (about one per core): more at once
# would only share the CPU, while each would hold its body and objects in memory.
BODY_SLOTS = 2
# Decoded bodies up to this size are parsed on the event loop (a few microseconds).
INLINE_PARSE_BYTES = 16 * 1024


@dataclass
class Seen:
    """What the request's log line says; filled in as it becomes known."""

    address: str
    user: str = "-"
    client: str = "-"
    host_key: str = ""


class Endpoint:
    """Shared request handling: method lookup, decoding, bounded bodies, errors, the log line."""

    prefix = ""

    def __init__(self, server: SyncServer, addresses: AddressSource, json_bytes: int) -> None:
        self.server = server
        self.addresses = addresses
        self.json_bytes = json_bytes  # max_json_megs
        # asyncio's semaphore, not anyio's limiter: taking a free one does not go round the
        # event loop once more (most requests have a body slot to take).
        self._slots = asyncio.Semaphore(BODY_SLOTS)

    def method(self, name: str) -> Method | None:
        raise NotImplementedError

    async def dispatch(self, method: Method, incoming: Incoming, seen: Seen) -> Response:
        raise NotImplementedError

    async def early(self, scope: Scope, method: Method, seen: Seen) -> Response | None:
        """An answer given before the body is read, to a request other than a POST (none by
        default)."""
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As an ASGI app, for the Router's routes (``path_params`` names the method)."""
        response = await self.handle(scope, receive, scope["path_params"]["method"])
        await response(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, name: str) -> Response:
        """The answer to a request for the method ``name``; every error becomes one."""
        seen = Seen(self.addresses.client_address(scope))
        try:
            response = await self._answer(scope, receive, name, seen)
        except Exception as exc:
            context = f"{self.prefix}{printable(name)} user={seen.user} addr={seen.address}"
            where = self.server.where(seen.user if seen.user != "-" else None)
            response = error_response(exc, context, where)
        self.server.activity.record(
            self.prefix + printable(name), seen.user, seen.client, response.status_code
        )
        note(scope, seen.user, seen.client, seen.host_key, seen.address)  # the log event
        return response

    async def _answer(self, scope: Scope, receive: Receive, name: str, seen: Seen) -> Response:
        method = self.method(name)
        if method is None:
            return PlainTextResponse(f"Invalid URL: unknown variant `{name}`", status_code=400)
        if scope["method"] != "POST":  # nearly all are: no ``early`` awaited for them
            answer = await self.early(scope, method, seen)
            if answer is not None:
                return answer
        raw_header = raw_sync_header(scope["headers"])
        if raw_header is not None:
            incoming = v11_request(parse_sync_header(raw_header), receive)
        else:
            incoming = await self._legacy(scope, receive, method)
        seen.client = printable(incoming.client_version or ("legacy" if incoming.legacy else "-"))
        return await self.dispatch(method, incoming, seen)

    async def _legacy(self, scope: Scope, receive: Receive, method: Method) -> Incoming:
        """A multipart request, read through the Starlette Request its form parser takes (one
        is built only here). A login's form carries no key (or an old one): not checked early."""
        check = None if method is SyncMethod.HOST_KEY else self._check_key
        request = Request(scope, receive)
        return await legacy_request(request, self._form_limit(method), self.server.data_root, check)

    def _size(self, method: Method) -> int:
        """The most decoded bytes ``method``'s body may have."""
        limit = BODY_LIMITS.get(method)
        if limit is None:  # a file: a full upload or a media zip
            return self.server.max_decompressed_bytes
        return self.json_bytes if limit.size is None else limit.size

    def _form_limit(self, method: Method) -> int:
        if method not in BODY_LIMITS:
            return self.server.max_payload_bytes
        return raw_limit(self._size(method)) + 4096  # the form's other fields

    async def _check_key(self, key: str) -> None:
        await self.server.authenticate(key)

    async def user(self, key: str, seen: Seen) -> UserName:
        """The user whose host key the request carries; 403 for an unknown key."""
        user = await self.server.authenticate(key, seen.client, seen.address)
        seen.user, seen.host_key = printable(user), key
        return user

    async def body(self, incoming: Incoming, method: Method, parse: Callable[[bytes], T]) -> T:
        """The parsed body, within the method's limits (protocol/limits.py).

        Large bodies are decoded and parsed in worker threads, a few at a time: a request
        waiting for its turn holds only what the HTTP layer buffers (64 KiB).
        """
        size = self._size(method)
        if size <= INLINE_DECODE_BYTES:
            return parse(await incoming.read(size))
        async with self._slots:
            data = await incoming.read(size)
            if len(data) <= INLINE_PARSE_BYTES:
                return parse(data)
            return await in_thread(parse, data)
