"""Routes: ``/sync/<method>``, ``/msync/<method>`` and ``/health``.

Each request is decoded from its wire format (v11 header + zstd, or the legacy multipart form)
into an Incoming request, authenticated, and handed to the server.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import BinaryIO

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ASGIApp

from ankisyncd.errors import BadRequest
from ankisyncd.http.errors import error_response
from ankisyncd.http.framing import (
    FILE_CHUNK_BYTES,
    MAX_WINDOW_BYTES,
    ORIGINAL_SIZE_HEADER,
    SYNC_HEADER,
    UNAUTHENTICATED_MAX_WINDOW_BYTES,
    Incoming,
    compress,
    compress_file,
    parse_sync_header,
    v11_request,
)
from ankisyncd.http.legacy import legacy_request
from ankisyncd.http.observe import Observed, metrics_endpoint, note
from ankisyncd.protocol.envelope import UserName
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
)
from ankisyncd.protocol.methods import MediaSyncMethod, SyncMethod
from ankisyncd.protocol.normal import (
    StartRequest,
    UnchunkedChanges,
    parse_apply_chunk,
    parse_apply_graves,
    parse_sanity_check,
)
from ankisyncd.protocol.versions import LEGACY_WIRE_VERSION, SYNC_VERSION_11_DIRECT_POST
from ankisyncd.server import SyncServer

log = logging.getLogger("ankisyncd.http")
# A login body is a user name and a password; nothing larger is decoded before auth.
MAX_LOGIN_BODY_BYTES = 64 * 1024


def _reply(body: bytes, version: int) -> Response:
    """A 200 answer: zstd with anki-original-size for v11; plain for the legacy versions."""
    if version < SYNC_VERSION_11_DIRECT_POST:
        return Response(body, media_type="application/octet-stream")
    return Response(compress(body), headers={ORIGINAL_SIZE_HEADER: str(len(body))})


def _file_reply(fh: BinaryIO, size: int, version: int) -> Response:
    """A whole collection file: zstd-streamed for v11, raw with a length for legacy clients."""
    if version < SYNC_VERSION_11_DIRECT_POST:
        return StreamingResponse(
            _chunks(fh),
            media_type="application/octet-stream",
            headers={"content-length": str(size)},
        )
    return StreamingResponse(compress_file(fh), headers={ORIGINAL_SIZE_HEADER: str(size)})


def _chunks(fh: BinaryIO) -> Iterator[bytes]:
    try:
        while chunk := fh.read(FILE_CHUNK_BYTES):
            yield chunk
    finally:
        fh.close()


class Endpoint:
    """Shared request handling: decoding, unknown methods, errors, one log line per request."""

    prefix = ""

    def __init__(self, server: SyncServer) -> None:
        self.server = server

    async def decode(self, request: Request) -> Incoming:
        raw_header = request.headers.get(SYNC_HEADER)
        if raw_header is not None:
            return v11_request(parse_sync_header(raw_header), request.stream())
        return await legacy_request(request, self.server.max_payload_bytes)

    async def logged(
        self, request: Request, work: Callable[[list[str]], Awaitable[Response]]
    ) -> Response:
        name = self.prefix + request.path_params["method"]
        who = ["-", "-", ""]  # user, client version, host key: filled in as they become known
        try:
            response = await work(who)
        except Exception as exc:
            where = self.server.where(who[0] if who[0] != "-" else None)
            response = error_response(exc, f"{name} user={who[0]}", where)
        self.server.activity.record(name, who[0], who[1], response.status_code)
        note(request, who[0], who[1], who[2])  # for the request's log event (http/observe.py)
        return response


def _unknown(name: str) -> Response:
    log.info("unknown method %r", name)
    return PlainTextResponse(f"Invalid URL: unknown variant `{name}`", status_code=400)


class SyncEndpoint(Endpoint):
    """``POST /sync/<method>``: login, collection sync and full sync."""

    async def handle(self, request: Request) -> Response:
        return await self.logged(request, lambda who: self._handle(request, who))

    async def _handle(self, request: Request, who: list[str]) -> Response:
        name = request.path_params["method"]
        try:
            method = SyncMethod(name)
        except ValueError:
            return _unknown(name)
        incoming = await self.decode(request)
        who[1] = incoming.client_version or ("legacy" if incoming.legacy else "-")
        if method is SyncMethod.HOST_KEY:
            body = await incoming.read(MAX_LOGIN_BODY_BYTES, UNAUTHENTICATED_MAX_WINDOW_BYTES)
            login = HostKeyRequest.from_wire(body)
            who[0] = login.username
            reply = await self.server.host_key(login)
            return _reply(reply.to_wire(), incoming.version)
        user = await self.server.authenticate(incoming.host_key)
        who[0], who[2] = user, incoming.host_key
        return await self._dispatch(method, user, incoming)

    async def _dispatch(self, method: SyncMethod, user: UserName, incoming: Incoming) -> Response:
        server, version, skey = self.server, incoming.version, incoming.session_key
        col, cap = server.collection, server.max_decompressed_bytes
        if method is SyncMethod.UPLOAD:
            text = await col.upload(user, incoming.open_body(cap, MAX_WINDOW_BYTES))
            return _reply(text.encode(), version)
        body = await incoming.read(cap)
        if method is SyncMethod.META:
            meta = await server.meta(user, MetaRequest.from_wire(body))
            return _reply(meta.to_wire(), version)
        if method is SyncMethod.ABORT:
            check_empty_input(body)
            await col.abort(user)
            return _reply(encode_null(), version)
        if method is SyncMethod.DOWNLOAD:
            check_empty_input(body)
            fh, size = await col.download(user, version)
            return _file_reply(fh, size, version)
        if method is SyncMethod.START:
            graves = await col.start(user, skey, StartRequest.from_wire(body))
            return _reply(encode_json(graves.to_json()), version)
        if method is SyncMethod.APPLY_GRAVES:
            await col.apply_graves(user, skey, parse_apply_graves(body))
            return _reply(encode_null(), version)
        if method is SyncMethod.APPLY_CHANGES:
            changes = await col.apply_changes(user, skey, UnchunkedChanges.from_wire(body))
            return _reply(changes.to_wire(), version)
        if method is SyncMethod.CHUNK:
            check_empty_input(body)
            return _reply((await col.chunk(user, skey)).to_wire(), version)
        if method is SyncMethod.APPLY_CHUNK:
            await col.apply_chunk(user, skey, parse_apply_chunk(body))
            return _reply(encode_null(), version)
        if method is SyncMethod.SANITY_CHECK:
            result = await col.sanity_check(user, skey, parse_sanity_check(body))
            return _reply(result.to_wire(), version)
        check_empty_input(body)  # finish
        return _reply(encode_json(await col.finish(user, skey)), version)


class MediaEndpoint(Endpoint):
    """``/msync/<method>``: JSON answers in the media envelope, downloads as raw zips."""

    prefix = "msync/"

    async def handle(self, request: Request) -> Response:
        return await self.logged(request, lambda who: self._handle(request, who))

    async def _handle(self, request: Request, who: list[str]) -> Response:
        name = request.path_params["method"]
        try:
            method = MediaSyncMethod(name)
        except ValueError:
            return _unknown(name)
        if request.method == "GET":
            if method is not MediaSyncMethod.BEGIN:
                return PlainTextResponse("405", status_code=405)
            return await self._get_begin(request, who)
        incoming = await self.decode(request)
        who[1] = incoming.client_version or ("legacy" if incoming.legacy else "-")
        user = await self.server.authenticate(incoming.host_key)
        who[0], who[2] = user, incoming.host_key
        return await self._dispatch(method, user, incoming)

    async def _get_begin(self, request: Request, who: list[str]) -> Response:
        """``GET /msync/begin?k=<hkey>&v=<version>``, as desktop 2.1.22 to 2.1.56 send it."""
        key, version = request.query_params.get("k"), request.query_params.get("v")
        if not key or not version:
            raise BadRequest("begin needs k and v")
        who[1] = version
        user = await self.server.authenticate(key)
        who[0], who[2] = user, key
        usn = await self.server.media_begin(user)
        return _reply(envelope({"usn": usn, "sk": key}), LEGACY_WIRE_VERSION)

    async def _dispatch(
        self, method: MediaSyncMethod, user: UserName, incoming: Incoming
    ) -> Response:
        media, version = self.server.media, incoming.version
        cap = self.server.max_decompressed_bytes
        if method is MediaSyncMethod.UPLOAD_CHANGES:
            stream = incoming.open_body(cap, MAX_WINDOW_BYTES)
            processed, usn = await media.upload(user, stream)
            return _reply(envelope([processed, usn]), version)
        body = await incoming.read(cap)
        if method is MediaSyncMethod.BEGIN:
            if not (incoming.legacy and incoming.client_version):
                parse_begin(body)  # legacy forms carry the version in the "v" field instead
            usn = await self.server.media_begin(user)
            return _reply(envelope({"usn": usn, "sk": incoming.host_key}), version)
        if method is MediaSyncMethod.MEDIA_CHANGES:
            changes = await media.changes(user, parse_media_changes(body))
            return _reply(envelope(changes), version)
        if method is MediaSyncMethod.DOWNLOAD_FILES:
            batch = await media.download(user, parse_download_files(body))
            # Up to a few MiB: compressed off the event loop, so other users are not held up.
            return await anyio.to_thread.run_sync(_reply, batch, version)
        result = await media.sanity(user, parse_media_sanity(body))
        return _reply(envelope(result), version)


def _health(server: SyncServer) -> Callable[[Request], Awaitable[Response]]:
    async def health(request: Request) -> Response:
        """200 while the server runs; the body tells the free space under the data root
        (reading works on a full disk, so a full disk is a warning, not a failure)."""
        free = await anyio.to_thread.run_sync(server.free_bytes)
        body = {"status": "ok", "free_bytes": free, "low_space": server.space.low}
        return Response(encode_json(body), media_type="application/json")

    return health


def build_app(server: SyncServer, admin: ASGIApp | None = None) -> ASGIApp:
    """The ASGI application serving one SyncServer, with the admin pages at ``/admin`` if given.

    A bare Router, without Starlette's exception middleware: every handler already turns its
    errors into responses (``Endpoint.logged``), and the two extra layers cost each request
    about a tenth of its time.
    """
    sync, media = SyncEndpoint(server), MediaEndpoint(server)
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
    return Observed(Router(routes=routes, lifespan=_lifespan(server)), server.metrics)


def _lifespan(server: SyncServer) -> Callable[[Router], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Router) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(server.startup)  # touches SQLite: not on the loop
        async with anyio.create_task_group() as background:
            background.start_soon(server.take_snapshots)
            yield
            background.cancel_scope.cancel()
        await server.shutdown()

    return lifespan
