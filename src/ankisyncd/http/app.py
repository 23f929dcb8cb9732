"""The ASGI application: ``/sync/<method>``, ``/msync/<method>``, ``/health``, ``/metrics`` and
the admin pages, around one SyncServer.

Each sync request is decoded from its wire format (v11 header + zstd, or the legacy multipart
form) into an Incoming request, authenticated, and handed to the server (``endpoint.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ASGIApp

from ankisyncd.http.address import AddressSource
from ankisyncd.http.collection_endpoint import SyncEndpoint
from ankisyncd.http.direct import Front
from ankisyncd.http.media_endpoint import MediaEndpoint
from ankisyncd.http.observe import metrics_endpoint
from ankisyncd.protocol.messages import encode_json
from ankisyncd.server import SyncServer
from ankisyncd.threads import in_thread

DEFAULT_JSON_BYTES = 16 << 20  # max_json_megs' default


def _health(server: SyncServer) -> Callable[[Request], Awaitable[Response]]:
    async def health(request: Request) -> Response:
        """200 while the server runs; the body tells the free space under the data root
        (reading works on a full disk, so a full disk is a warning, not a failure)."""
        free = await in_thread(server.free_bytes)
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
        # POSTs to these are served by Front directly; GET /msync/begin and 405s come here.
        Route("/sync/{method}", sync, methods=["POST"]),
        Route("/health", _health(server), methods=["GET", "HEAD"]),
        Route("/msync/{method}", media, methods=["GET", "POST"]),
        # Old clients with a separately typed media URL sometimes add a slash.
        Route("/msync//{method}", media, methods=["GET", "POST"]),
    ]
    if admin is not None:  # when off, /admin/ is not even a route: 404, nothing spent
        routes.append(Mount("/admin", app=admin))
    serve_metrics = metrics_endpoint(server.metrics, server.metrics_token)
    routes.append(Route("/metrics", serve_metrics, methods=["GET"]))
    router = Router(routes=routes, lifespan=_lifespan(server))
    return Front(sync, media, router, server.metrics)


def _lifespan(server: SyncServer) -> Callable[[Router], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Router) -> AsyncIterator[None]:
        await in_thread(server.startup)  # touches SQLite: not on the loop
        async with anyio.create_task_group() as background:
            background.start_soon(server.take_snapshots)
            background.start_soon(server.keep_house)
            yield
            background.cancel_scope.cancel()
        await server.shutdown()

    return lifespan
