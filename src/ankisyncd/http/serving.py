"""Running the server: the sync port, and the admin pages on it or on an address of their own."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import sys
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.types import ASGIApp

from ankisyncd.config import Settings
from ankisyncd.errors import ConfigError
from ankisyncd.http.address import AddressSource
from ankisyncd.http.app import build_app
from ankisyncd.http.guard import ConnectionLimits, guarded_protocol
from ankisyncd.http.memory import return_large_blocks
from ankisyncd.http.tls import tls_options
from ankisyncd.server import SyncServer
from ankisyncd.server.descriptors import fit_open_users

AdminFactory = Callable[[SyncServer], ASGIApp]
# While a worker thread parses a large body, the event loop waits for the GIL at each of its
# steps for up to this long (Python's default: 5 ms, which made other users' meta take 250 ms
# at p95 during a large applyChanges).
SWITCH_INTERVAL = 0.0005


def _options(settings: Settings, tls: dict[str, Any]) -> dict[str, Any]:
    """uvicorn's settings for either port: TLS, connection limits, our own logging."""
    return {
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,  # http/address.py reads forwarded addresses, from trusted proxies
        "timeout_graceful_shutdown": 10,
        **tls,
        "ws": "none",  # no WebSockets; http/writes.py wraps the transport an upgrade would take
        "http": guarded_protocol(ConnectionLimits(settings.header_timeout, settings.body_timeout)),
        "timeout_keep_alive": max(1, round(settings.keep_alive_timeout)),
        "limit_concurrency": settings.max_connections,
    }


def serve(settings: Settings, admin: AdminFactory | None = None) -> None:
    """Run the server until interrupted.

    ``admin`` builds the admin pages (mounted at ``/admin``) for the server. Without it, or
    without an admin password, there are no admin pages.
    """
    tls = tls_options(settings)  # before anything starts: a bad certificate stops start-up
    options = _options(settings, tls)
    kept = fit_open_users(settings.max_open_users, settings.max_connections)
    server = SyncServer(dataclasses.replace(settings, max_open_users=kept))
    return_large_blocks()
    sys.setswitchinterval(SWITCH_INTERVAL)
    sync_app = partial(
        build_app,
        server,
        addresses=AddressSource.from_settings(settings),
        json_bytes=settings.max_json_megs << 20,
    )
    admin_app = None
    if admin is not None and settings.admin_password_hash is not None:
        admin_app = admin(server)
    if admin_app is None or settings.admin_port is None:
        app = sync_app(admin_app)
        uvicorn.run(app, host=settings.host, port=settings.port, **options)
        return
    host = settings.admin_host or settings.host
    admin_config = uvicorn.Config(
        _admin_site(admin_app), host=host, port=settings.admin_port, lifespan="off", **options
    )
    try:
        admin_socket = admin_config.bind_socket()
    except SystemExit:  # uvicorn logs the reason and exits; say which setting it was
        raise ConfigError(f"admin_port: cannot listen on {host}:{settings.admin_port}") from None
    config = uvicorn.Config(sync_app(), host=settings.host, port=settings.port, **options)
    main = _WithAdmin(config, _AdminServer(admin_config), admin_socket)
    main.run()
    if not main.started:
        sys.exit(3)  # what uvicorn.run does when the server could not start


def _admin_site(admin_app: ASGIApp) -> Router:
    """The admin port's routes: ``/admin/...``, and ``/`` leading there."""

    async def root(request: Request) -> Response:
        return RedirectResponse("/admin/", status_code=307)

    return Router(routes=[Route("/", root), Mount("/admin", app=admin_app)])


class _AdminServer(uvicorn.Server):
    """The admin port's server: leaves signals to the sync port's, which stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _WithAdmin(uvicorn.Server):
    """The sync port's server, running the admin port's beside it on the same event loop."""

    def __init__(self, config: uvicorn.Config, admin: uvicorn.Server, sock: socket.socket):
        super().__init__(config)
        self.admin, self.admin_socket = admin, sock

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        task = asyncio.create_task(self.admin.serve(sockets=[self.admin_socket]))
        try:
            await super().serve(sockets)
        finally:
            self.admin.should_exit = True
            await task
