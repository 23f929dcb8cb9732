"""What every admin page shares: the server, the templates, the sessions, the action log.

User, device and snapshot logic is not here: pages call the functions the ``cli`` commands call.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from ankisyncd.admin.sessions import Session, Sessions
from ankisyncd.config import Settings
from ankisyncd.http.address import AddressSource
from ankisyncd.server import SyncServer

log = logging.getLogger("ankisyncd.admin")
HERE = Path(__file__).parent
# Why each snapshot was taken (storage.snapshots.REASONS), in words.
SNAPSHOT_REASONS = {
    "upload": "before a full upload",
    "scheduled": "scheduled",
    "manual": "taken by hand",
    "restore": "before a restore",
}
# Admin forms are a few short fields; nothing larger is read.
MAX_FORM_BYTES = 16 * 1024


def human_bytes(size: int | float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError  # unreachable


def when(stamp: float | None) -> str:
    if not stamp:
        return "never"
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def client(version: str) -> str:
    """``26.09.3,29bb700b,linux`` (version, build, platform: what clients send) as
    ``26.09.3 (linux)``; anything else as it came."""
    parts = version.split(",")
    return f"{parts[0]} ({parts[2]})" if len(parts) == 3 else version


@dataclass
class Admin:
    """The admin front end of one running server."""

    settings: Settings
    server: SyncServer
    sessions: Sessions
    templates: Jinja2Templates
    addresses: AddressSource

    @classmethod
    def build(cls, settings: Settings, server: SyncServer) -> Admin:
        templates = Jinja2Templates(directory=HERE / "templates")
        templates.env.filters["bytes"] = human_bytes
        templates.env.filters["when"] = when
        templates.env.filters["client"] = client
        templates.env.globals["quote"] = lambda name: quote(name, safe="")
        templates.env.globals["reasons"] = SNAPSHOT_REASONS
        sessions = Sessions(settings.admin_session_minutes * 60)
        return cls(settings, server, sessions, templates, AddressSource.from_settings(settings))

    def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> Response:
        session: Session | None = request.scope.get("admin_session")
        context.update(
            request=request,
            base=request.scope.get("root_path", ""),
            session=session,
            flash=session.take_flash() if session else None,
            now=time.time(),
        )
        return self.templates.TemplateResponse(request, template, context, status_code=status)

    def redirect(self, request: Request, path: str) -> Response:
        """303 to ``path`` under the admin root: a POST is followed by a GET (no resubmission)."""
        return RedirectResponse(request.scope.get("root_path", "") + path, status_code=303)

    def done(self, request: Request, message: str, path: str) -> Response:
        """Log an action with the admin's address, show ``message`` on the next page."""
        log.info("admin at %s: %s", self.address(request), message)
        session: Session = request.scope["admin_session"]
        session.flash = message
        return self.redirect(request, path)

    def address(self, request: Request) -> str:
        """The client's address, resolved as for sync requests (``ip_header``, ``trusted_proxies``):
        what the action log names and the login throttle counts against."""
        return self.addresses.client_address(request.scope)


async def read_form(request: Request) -> dict[str, str]:
    """A url-encoded form body, read up to MAX_FORM_BYTES (larger: 413); any other body counts
    as an empty form (whose missing CSRF token then refuses it)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413)
    try:
        return dict(parse_qsl(body.decode(), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(400) from None
