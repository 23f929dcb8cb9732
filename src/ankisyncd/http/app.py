"""Routes: ``/sync/<method>``, ``/msync/<method>`` and ``/health``.

Each request is decoded from its wire format (v11 header + zstd, or the legacy multipart form)
into an Incoming request, authenticated, and handed to the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ASGIApp

from ankisyncd.errors import BadRequest
from ankisyncd.http.address import AddressSource, printable
from ankisyncd.http.direct import Direct
from ankisyncd.http.errors import error_response
from ankisyncd.http.framing import (
    INLINE_DECODE_BYTES,
    Incoming,
    parse_sync_header,
    raw_sync_header,
    v11_request,
)
from ankisyncd.http.legacy import legacy_request
from ankisyncd.http.observe import Observed, metrics_endpoint, note
from ankisyncd.http.replies import file_reply, reply, reply_encoded
from ankisyncd.protocol.envelope import UserName
from ankisyncd.protocol.limits import BODY_LIMITS, raw_limit
from ankisyncd.protocol.media import (
    envelope,
    parse_begin,
    parse_download_files,
    parse_media_changes,
    parse_media_sanity,
)
from ankisyncd.protocol.messages import (
    HostKeyRequest,
    MetaRequest,
    check_empty_input,
    encode_json,
    encode_null,
    encode_plain,
)
from ankisyncd.protocol.methods import MediaSyncMethod, SyncMethod
from ankisyncd.protocol.normal import (
    StartRequest,
    UnchunkedChanges,
    parse_apply_chunk,
    parse_apply_graves,
    parse_sanity_check,
)
from ankisyncd.protocol.versions import LEGACY_WIRE_VERSION
from ankisyncd.server import SyncServer

log = logging.getLogger("ankisyncd.http")
T = TypeVar("T")
Method = SyncMethod | MediaSyncMethod
# Large bodies are decompressed and parsed a few at a time (about one per core): more at once
# would only share the CPU, while each would hold its body and objects in memory.
BODY_SLOTS = 2
# Decoded bodies up to this size are parsed on the event loop (a few microseconds).
INLINE_PARSE_BYTES = 16 * 1024
DEFAULT_JSON_BYTES = 16 << 20  # max_json_megs' default


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

    async def early(self, request: Request, method: Method, seen: Seen) -> Response | None:
        """An answer given before the body is read (none by default)."""
        return None

    async def handle(self, request: Request) -> Response:
        name = request.path_params["method"]
        seen = Seen(self.addresses.client_address(request))
        try:
            response = await self._handle(request, name, seen)
        except Exception as exc:
            context = f"{self.prefix}{printable(name)} user={seen.user} addr={seen.address}"
            where = self.server.where(seen.user if seen.user != "-" else None)
            response = error_response(exc, context, where)
        self.server.activity.record(
            self.prefix + printable(name), seen.user, seen.client, response.status_code
        )
        note(request, seen.user, seen.client, seen.host_key, seen.address)  # the log event
        return response

    async def _handle(self, request: Request, name: str, seen: Seen) -> Response:
        method = self.method(name)
        if method is None:
            return PlainTextResponse(f"Invalid URL: unknown variant `{name}`", status_code=400)
        answer = await self.early(request, method, seen)
        if answer is not None:
            return answer
        raw_header = raw_sync_header(request.scope["headers"])
        if raw_header is not None:
            incoming = v11_request(parse_sync_header(raw_header), request.receive)
        else:
            # A login's form carries no key (or an old one): it is not checked early.
            check = None if method is SyncMethod.HOST_KEY else self._check_key
            incoming = await legacy_request(
                request, self._form_limit(method), self.server.data_root, check
            )
        seen.client = printable(incoming.client_version or ("legacy" if incoming.legacy else "-"))
        return await self.dispatch(method, incoming, seen)

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
            return await anyio.to_thread.run_sync(parse, data)


class SyncEndpoint(Endpoint):
    """``POST /sync/<method>``: login, collection sync and full sync."""

    def method(self, name: str) -> Method | None:
        return _SYNC_METHODS.get(name)

    async def dispatch(self, method: Method, incoming: Incoming, seen: Seen) -> Response:
        version = incoming.version
        if method is SyncMethod.HOST_KEY:
            login = await self.body(incoming, method, HostKeyRequest.from_wire)
            seen.user = printable(login.username)
            answer = await self.server.host_key(login, seen.address, seen.client)
            return await reply(answer.to_wire(), version)
        user = await self.user(incoming.host_key, seen)
        col, skey = self.server.collection, incoming.session_key
        if method is SyncMethod.UPLOAD:
            cap = self.server.max_decompressed_bytes
            text = await col.upload(user, incoming.stream(cap))
            return await reply(text.encode(), version)
        if method is SyncMethod.META:
            req = await self.body(incoming, method, MetaRequest.from_wire)
            return await reply((await self.server.meta(user, req)).to_wire(), version)
        if method is SyncMethod.START:
            start = await self.body(incoming, method, StartRequest.from_wire)
            graves = await col.start(user, skey, start)
            return await reply_encoded(lambda: encode_plain(graves.to_json()), version)
        if method is SyncMethod.APPLY_GRAVES:
            await col.apply_graves(
                user, skey, await self.body(incoming, method, parse_apply_graves)
            )
            return await reply(encode_null(), version)
        if method is SyncMethod.APPLY_CHANGES:
            theirs = await self.body(incoming, method, UnchunkedChanges.from_wire)
            ours = await col.apply_changes(user, skey, theirs)
            return await reply_encoded(ours.to_wire, version)
        if method is SyncMethod.APPLY_CHUNK:
            await col.apply_chunk(user, skey, await self.body(incoming, method, parse_apply_chunk))
            return await reply(encode_null(), version)
        if method is SyncMethod.SANITY_CHECK:
            counts = await self.body(incoming, method, parse_sanity_check)
            return await reply((await col.sanity_check(user, skey, counts)).to_wire(), version)
        await self.body(incoming, method, check_empty_input)
        if method is SyncMethod.ABORT:
            await col.abort(user)
            return await reply(encode_null(), version)
        if method is SyncMethod.DOWNLOAD:
            fh, size = await col.download(user, version)
            return file_reply(fh, size, version)
        if method is SyncMethod.CHUNK:
            chunk = await col.chunk(user, skey)
            return await reply_encoded(chunk.to_wire, version)
        return await reply(encode_plain(await col.finish(user, skey)), version)  # finish


_SYNC_METHODS: dict[str, Method] = {m.value: m for m in SyncMethod}
_MEDIA_METHODS: dict[str, Method] = {m.value: m for m in MediaSyncMethod}


class MediaEndpoint(Endpoint):
    """``/msync/<method>``: JSON answers in the media envelope, downloads as raw zips."""

    prefix = "msync/"

    def method(self, name: str) -> Method | None:
        return _MEDIA_METHODS.get(name)

    async def early(self, request: Request, method: Method, seen: Seen) -> Response | None:
        if request.method != "GET":
            return None
        if method is not MediaSyncMethod.BEGIN:
            return PlainTextResponse("405", status_code=405)
        # GET /msync/begin?k=<hkey>&v=<version>, as desktop 2.1.22 to 2.1.56 send it.
        key, version = request.query_params.get("k"), request.query_params.get("v")
        if not key or not version:
            raise BadRequest("begin needs k and v")
        seen.client = printable(version)
        usn = await self.server.media.usn(await self.user(key, seen))
        return await reply(envelope({"usn": usn, "sk": key}), LEGACY_WIRE_VERSION)

    async def dispatch(self, method: Method, incoming: Incoming, seen: Seen) -> Response:
        user = await self.user(incoming.host_key, seen)
        media, version = self.server.media, incoming.version
        if method is MediaSyncMethod.UPLOAD_CHANGES:
            stream = incoming.stream(self.server.max_decompressed_bytes)
            processed, usn = await media.upload(user, stream)
            return await reply(envelope([processed, usn]), version)
        if method is MediaSyncMethod.BEGIN:
            if incoming.legacy and incoming.client_version:
                await incoming.read(self._size(method))  # the version came in the form
            else:
                await self.body(incoming, method, parse_begin)
            usn = await media.usn(user)
            return await reply(envelope({"usn": usn, "sk": incoming.host_key}), version)
        if method is MediaSyncMethod.MEDIA_CHANGES:
            last_usn = await self.body(incoming, method, parse_media_changes)
            return await reply(envelope(await media.changes(user, last_usn)), version)
        if method is MediaSyncMethod.DOWNLOAD_FILES:
            names = await self.body(incoming, method, parse_download_files)
            return await reply(await media.download(user, names), version)
        local = await self.body(incoming, method, parse_media_sanity)
        return await reply(envelope(await media.sanity(user, local)), version)


def _health(server: SyncServer) -> Callable[[Request], Awaitable[Response]]:
    async def health(request: Request) -> Response:
        """200 while the server runs; the body tells the free space under the data root
        (reading works on a full disk, so a full disk is a warning, not a failure)."""
        free = await anyio.to_thread.run_sync(server.free_bytes)
        body = {"status": "ok", "free_bytes": free, "low_space": server.space.low}
        return Response(encode_json(body), media_type="application/json")

    return health


def build_app(
    server: SyncServer,
    admin: ASGIApp | None = None,
    *,
    addresses: AddressSource | None = None,
    json_bytes: int = DEFAULT_JSON_BYTES,
) -> ASGIApp:
    """The ASGI application serving one SyncServer, with the admin pages at ``/admin`` if given.

    A bare Router, without Starlette's exception middleware: every handler already turns its
    errors into responses (``Endpoint.handle``), and the two extra layers cost each request
    about a tenth of its time.
    """
    addresses = addresses or AddressSource()
    sync = SyncEndpoint(server, addresses, json_bytes)
    media = MediaEndpoint(server, addresses, json_bytes)
    routes: list[BaseRoute] = [
        Route("/sync/{method}", sync.handle, methods=["POST"]),  # most requests: first
        Route("/health", _health(server), methods=["GET", "HEAD"]),
        Route("/msync/{method}", media.handle, methods=["GET", "POST"]),
        # Old clients with a separately typed media URL sometimes add a slash.
        Route("/msync//{method}", media.handle, methods=["GET", "POST"]),
    ]
    if admin is not None:  # when off, /admin/ is not even a route: 404, nothing spent
        routes.append(Mount("/admin", app=admin))
    serve_metrics = metrics_endpoint(server.metrics, server.metrics_token)
    routes.append(Route("/metrics", serve_metrics, methods=["GET"]))
    router = Router(routes=routes, lifespan=_lifespan(server))
    return Observed(Direct(sync.handle, media.handle, router), server.metrics)


def _lifespan(server: SyncServer) -> Callable[[Router], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Router) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(server.startup)  # touches SQLite: not on the loop
        async with anyio.create_task_group() as background:
            background.start_soon(server.take_snapshots)
            background.start_soon(server.keep_house)
            yield
            background.cancel_scope.cancel()
        await server.shutdown()

    return lifespan
