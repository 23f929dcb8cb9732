"""Routes: ``/sync/<method>`` and ``/health``; decoding the wire into server calls."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from ankisyncd.config import Settings
from ankisyncd.errors import BadRequest, ServerError
from ankisyncd.http.errors import error_response
from ankisyncd.http.framing import (
    MAX_WINDOW_BYTES,
    ORIGINAL_SIZE_HEADER,
    SYNC_HEADER,
    UNAUTHENTICATED_MAX_WINDOW_BYTES,
    SyncHeader,
    compress,
    compress_file,
    iter_zstd,
    parse_sync_header,
    read_zstd_json,
)
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


class SyncEndpoint:
    """Handles ``POST /sync/<method>`` and logs one line per request."""

    def __init__(self, server: SyncServer) -> None:
        self.server = server

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        name = request.path_params["method"]
        user, client = "-", "-"
        try:
            try:
                method = SyncMethod(name)
            except ValueError:
                log.info("unknown method %r", name)
                return PlainTextResponse(f"Invalid URL: unknown variant `{name}`", status_code=400)
            raw_header = request.headers.get(SYNC_HEADER)
            if raw_header is None:
                raise BadRequest("no anki-sync header (legacy multipart clients: not yet)")
            header = parse_sync_header(raw_header)
            client = header.client_version
            chunks = request.stream()
            if method is SyncMethod.HOST_KEY:
                body = await read_zstd_json(
                    chunks, MAX_LOGIN_BODY_BYTES, UNAUTHENTICATED_MAX_WINDOW_BYTES
                )
                login = HostKeyRequest.from_wire(body)
                user = login.username
                reply = await self.server.host_key(login)
                response = _reply(reply.to_wire(), header.version)
            else:
                account = await self.server.authenticate(header.host_key)
                user = account
                response = await self._dispatch(method, account, header, chunks)
        except Exception as exc:
            response = error_response(exc, f"{name} user={user}")
        log.info(
            "%s user=%s client=%s status=%d %.1fms",
            name,
            user,
            client,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    async def _dispatch(
        self, method: SyncMethod, user: UserName, header: SyncHeader, chunks: AsyncIterator[bytes]
    ) -> Response:
        server, version, skey = self.server, header.version, header.session_key
        cap = server.max_decompressed_bytes
        if method is SyncMethod.UPLOAD:
            text = await server.upload(user, iter_zstd(chunks, cap))
            await _drain(chunks, cap)
            return _reply(text.encode(), version)
        body = await read_zstd_json(chunks, cap, MAX_WINDOW_BYTES)
        if method is SyncMethod.META:
            meta = await server.meta(user, MetaRequest.from_wire(body))
            return _reply(meta.to_wire(), version)
        if method is SyncMethod.ABORT:
            check_empty_input(body)
            await server.abort(user)
            return _reply(encode_null(), version)
        if method is SyncMethod.DOWNLOAD:
            check_empty_input(body)
            fh, size = await server.download(user, version)
            if version < SYNC_VERSION_11_DIRECT_POST:
                raise ServerError("legacy downloads are not implemented yet")
            return StreamingResponse(compress_file(fh), headers={ORIGINAL_SIZE_HEADER: str(size)})
        if method is SyncMethod.START:
            graves = await server.start(user, skey, StartRequest.from_wire(body))
            return _reply(encode_json(graves.to_json()), version)
        if method is SyncMethod.APPLY_GRAVES:
            await server.apply_graves(user, skey, parse_apply_graves(body))
            return _reply(encode_null(), version)
        if method is SyncMethod.APPLY_CHANGES:
            changes = await server.apply_changes(user, skey, UnchunkedChanges.from_wire(body))
            return _reply(changes.to_wire(), version)
        if method is SyncMethod.CHUNK:
            check_empty_input(body)
            return _reply((await server.chunk(user, skey)).to_wire(), version)
        if method is SyncMethod.APPLY_CHUNK:
            await server.apply_chunk(user, skey, parse_apply_chunk(body))
            return _reply(encode_null(), version)
        if method is SyncMethod.SANITY_CHECK:
            result = await server.sanity_check(user, skey, parse_sanity_check(body))
            return _reply(result.to_wire(), version)
        if method is SyncMethod.FINISH:
            check_empty_input(body)
            return _reply(encode_json(await server.finish(user, skey)), version)
        raise ServerError(f"{method.value} is not implemented")


class MediaEndpoint:
    """Handles ``/msync/<method>``: JSON answers in the media envelope, downloads as raw zips."""

    def __init__(self, server: SyncServer) -> None:
        self.server = server

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        name = request.path_params["method"]
        user, client = "-", "-"
        try:
            try:
                method = MediaSyncMethod(name)
            except ValueError:
                log.info("unknown media method %r", name)
                return PlainTextResponse(f"Invalid URL: unknown variant `{name}`", status_code=400)
            if request.method == "GET":
                if method is not MediaSyncMethod.BEGIN:
                    return PlainTextResponse("405", status_code=405)
                response, user = await self._legacy_begin(request)
            else:
                raw_header = request.headers.get(SYNC_HEADER)
                if raw_header is None:
                    raise BadRequest("no anki-sync header (legacy multipart clients: not yet)")
                header = parse_sync_header(raw_header)
                client = header.client_version
                account = await self.server.authenticate(header.host_key)
                user = account
                response = await self._dispatch(method, account, header, request.stream())
        except Exception as exc:
            response = error_response(exc, f"msync/{name} user={user}")
        log.info(
            "msync/%s user=%s client=%s status=%d %.1fms",
            name,
            user,
            client,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    async def _legacy_begin(self, request: Request) -> tuple[Response, str]:
        """``GET /msync/begin?k=<hkey>&v=<version>``, as desktop 2.1.22 to 2.1.56 send it."""
        key, version = request.query_params.get("k"), request.query_params.get("v")
        if not key or not version:
            raise BadRequest("begin needs k and v")
        user = await self.server.authenticate(key)
        usn = await self.server.media_begin(user)
        return _reply(envelope({"usn": usn, "sk": key}), LEGACY_WIRE_VERSION), user

    async def _dispatch(
        self,
        method: MediaSyncMethod,
        user: UserName,
        header: SyncHeader,
        chunks: AsyncIterator[bytes],
    ) -> Response:
        server, version = self.server, header.version
        cap = server.max_decompressed_bytes
        if method is MediaSyncMethod.UPLOAD_CHANGES:
            processed, usn = await server.media_upload(user, iter_zstd(chunks, cap))
            return _reply(envelope([processed, usn]), version)
        body = await read_zstd_json(chunks, cap, MAX_WINDOW_BYTES)
        if method is MediaSyncMethod.BEGIN:
            parse_begin(body)
            usn = await server.media_begin(user)
            return _reply(envelope({"usn": usn, "sk": header.host_key}), version)
        if method is MediaSyncMethod.MEDIA_CHANGES:
            changes = await server.media_changes(user, parse_media_changes(body))
            return _reply(envelope(changes), version)
        if method is MediaSyncMethod.DOWNLOAD_FILES:
            data = await server.media_download(user, parse_download_files(body))
            return _reply(data, version)
        result = await server.media_sanity(user, parse_media_sanity(body))
        return _reply(envelope(result), version)


async def _drain(chunks: AsyncIterator[bytes], limit: int) -> None:
    """Read what is left of a body the server stopped decoding, so the client gets its answer."""
    seen = 0
    async for data in chunks:
        seen += len(data)
        if seen > limit:
            return


async def health(request: Request) -> Response:
    return Response(b"", status_code=200)


def build_app(server: SyncServer) -> Starlette:
    """The ASGI application serving one SyncServer."""
    media = MediaEndpoint(server)
    return Starlette(
        routes=[
            Route("/health", health, methods=["GET", "HEAD"]),
            Route("/sync/{method}", SyncEndpoint(server).handle, methods=["POST"]),
            Route("/msync/{method}", media.handle, methods=["GET", "POST"]),
            # Old clients with a separately typed media URL sometimes add a slash.
            Route("/msync//{method}", media.handle, methods=["GET", "POST"]),
        ],
        lifespan=_lifespan(server),
    )


def _lifespan(server: SyncServer) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        server.startup()
        yield

    return lifespan


def serve(settings: Settings) -> None:
    """Run the server until interrupted."""
    server = SyncServer(settings)
    uvicorn.run(
        build_app(server),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
