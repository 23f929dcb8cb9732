"""Server page: version, uptime, today's syncs by outcome, recent errors, disk use."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from ankisyncd import __version__
from ankisyncd.admin.context import Admin
from ankisyncd.storage.usage import disk_usage
from ankisyncd.threads import in_thread

# The sync outcomes of observe/events.py (and failed logins), in words.
OUTCOME_WORDS = {
    "no_changes": "no changes",
    "normal": "normal sync",
    "full_upload": "full upload",
    "full_download": "full download",
    "conflict": "full sync needed (device asked)",
    "aborted": "aborted",
    "failed": "failed",
    "login_refused": "login refused",
}


def _uptime(seconds: float) -> str:
    minutes = int(seconds // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d"] if days else []
    if days or hours:
        parts.append(f"{hours} h")
    parts.append(f"{minutes} min")
    return " ".join(parts)


async def server_page(admin: Admin, request: Request) -> Response:
    activity, settings = admin.server.activity, admin.settings
    disk = await in_thread(disk_usage, settings.data_root)
    admin_bind = (
        f"{settings.admin_host or settings.host}:{settings.admin_port}"
        if settings.admin_port is not None
        else "the sync port, under /admin/"
    )
    return admin.render(
        request,
        "server.html",
        version=__version__,
        started=activity.started,
        uptime=_uptime(time.time() - activity.started),
        syncs=sorted((OUTCOME_WORDS.get(k, k), n) for k, n in activity.syncs_today().items()),
        errors=activity.recent_errors(),
        disk=disk,
        data_root=settings.data_root,
        bind=f"{settings.host}:{settings.port}",
        admin_bind=admin_bind,
    )
