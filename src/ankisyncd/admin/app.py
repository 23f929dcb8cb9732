"""The admin application: routes, static files and the security headers of every answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ankisyncd.admin import connect, devices, overview, snapshots, users
from ankisyncd.admin.auth import guarded, login, login_page, logout
from ankisyncd.admin.context import HERE, Admin
from ankisyncd.config import Settings
from ankisyncd.http.observe import INFO_KEY
from ankisyncd.server import SyncServer

# No inline scripts or styles, nothing from elsewhere, never inside a frame.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-store",
}


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response of the wrapped app, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ClientAddress:
    """Gives each request's log line (http/observe.py) the admin's address as ``Admin.address``
    resolves it, not the connection's peer."""

    def __init__(self, app: ASGIApp, admin: Admin) -> None:
        self.app, self.admin = app, admin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault(INFO_KEY, {})["address"] = self.admin.address(Request(scope))
        await self.app(scope, receive, send)


Handler = Callable[[Admin, Request], Awaitable[Response]]


def build_admin(settings: Settings, server: SyncServer) -> ASGIApp:
    """The admin pages of ``server``, to be mounted at ``/admin``."""
    admin = Admin.build(settings, server)

    def page(path: str, handler: Handler, methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, guarded(admin, handler), methods=list(methods))

    async def home(request: Request) -> Response:
        return admin.redirect(request, "/users")

    routes = [
        Route("/", home),
        Route("/login", partial(login_page, admin), methods=["GET"]),
        Route("/login", partial(login, admin), methods=["POST"]),
        page("/logout", logout, ("POST",)),
        page("/users", users.users_page),
        page("/users/add", users.add_user, ("POST",)),
        page("/users/{name}", users.user_page),
        page("/users/{name}/password", users.set_password, ("POST",)),
        page("/users/{name}/remove", users.confirm_remove),
        page("/users/{name}/remove", users.remove_user, ("POST",)),
        page("/users/{name}/devices/{device}/revoke", devices.revoke_device, ("POST",)),
        page("/users/{name}/snapshots", snapshots.create_snapshot, ("POST",)),
        page("/users/{name}/snapshots/{snapshot}/restore", snapshots.confirm_restore),
        page("/users/{name}/snapshots/{snapshot}/restore", snapshots.restore_snapshot, ("POST",)),
        page("/server", overview.server_page),
        page("/connect", connect.connect_page),
        page("/connect/ca.pem", connect.ca_certificate),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return SecurityHeaders(ClientAddress(Starlette(routes=routes), admin))
