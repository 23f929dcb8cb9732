"""Connect-a-device page: the exact sync address for each client, a QR code of it, and the CA
certificate to install when the server uses the private CA of ``ankisyncd tls init``."""

from __future__ import annotations

from pathlib import Path

import segno
from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ankisyncd.admin.context import Admin
from ankisyncd.threads import in_thread

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def private_ca(admin: Admin) -> Path | None:
    """``ca.pem`` beside the served certificate: the layout ``ankisyncd tls init`` writes."""
    cert = admin.settings.tls_cert
    if cert is None:
        return None
    ca = cert.parent / "ca.pem"
    return ca if ca.is_file() else None


def sync_url(admin: Admin, request: Request) -> str:
    """The sync address on the host name this page was opened with, on the sync port."""
    scheme = "https" if admin.settings.tls_cert else "http"
    host = request.url.hostname or admin.settings.host
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{admin.settings.port}/"


async def connect_page(admin: Admin, request: Request) -> Response:
    url = sync_url(admin, request)
    qr = segno.make(url, error="m").svg_inline(scale=5, border=2, title="QR code of " + url)
    ca = private_ca(admin)
    ca_text = await in_thread(ca.read_text) if ca else None
    return admin.render(
        request,
        "connect.html",
        url=url,
        qr=Markup(qr),  # made by segno from our own URL: markup we trust
        ca_text=ca_text,
        loopback_only=admin.settings.host in LOOPBACK,
        server_host=admin.settings.host,
        opened_on_loopback=request.url.hostname in LOOPBACK,
    )


async def ca_certificate(admin: Admin, request: Request) -> Response:
    ca = private_ca(admin)
    if ca is None:
        raise HTTPException(404, "the server does not use a private CA")
    return Response(
        await in_thread(ca.read_bytes),
        media_type="application/x-x509-ca-cert",
        headers={"content-disposition": 'attachment; filename="ankisyncd-ca.pem"'},
    )
