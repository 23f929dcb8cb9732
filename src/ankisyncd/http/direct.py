"""The ASGI application's front: every request observed (``observe.py``), the sync endpoints'
requests straight to their handlers, the rest through Starlette's Router."""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import Response
from starlette.routing import Router
from starlette.types import Receive, Scope, Send

from ankisyncd.http.endpoint import Endpoint
from ankisyncd.http.observe import INFO_KEY, Tally, observed
from ankisyncd.observe.metrics import Metrics


class Front:
    """Request metrics and the request log event for every HTTP request; POSTs to
    ``/sync/<method>`` and ``/msync/<method>`` go straight to their endpoint, the rest through
    the Router, which matches the same paths the same way (its routes serve the other methods).

    One frame for all of it: the Router's matching and exception layers, and a middleware and
    a dispatcher each awaited in turn, cost a ``meta`` a tenth of its CPU
    (bench/request_cpu.py).
    """

    def __init__(self, sync: Endpoint, media: Endpoint, router: Router, metrics: Metrics) -> None:
        self.sync, self.media, self.router, self.metrics = sync, media, router, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        started = time.perf_counter()
        tally = Tally(receive, send)
        info: dict[str, Any] = scope.setdefault(INFO_KEY, {})
        try:
            endpoint, name = self._match(scope["path"]) if scope["method"] == "POST" else _NONE
            if endpoint is not None and name and "/" not in name:
                scope["path_params"] = {"method": name}  # as the Router sets it
                await _answer(await endpoint.handle(scope, tally.receive, name), scope, tally)
            else:
                await self.router(scope, tally.receive, tally.send)
        finally:
            observed(self.metrics, scope, info, tally, started)

    def _match(self, path: str) -> tuple[Endpoint | None, str]:
        """The endpoint and method name for a path of ``/sync/{method}``, ``/msync/{method}``
        or ``/msync//{method}`` (old clients' media URL)."""
        if path.startswith("/sync/"):
            return self.sync, path[6:]
        if path.startswith("/msync//"):
            return self.media, path[8:]
        if path.startswith("/msync/"):
            return self.media, path[7:]
        return _NONE


_NONE: tuple[None, str] = (None, "")


async def _answer(response: Response, scope: Scope, tally: Tally) -> None:
    """Send ``response``: an answer held in memory as its two ASGI messages, counted here
    (Starlette's ``Response.__call__`` and a counting wrapper were two more awaits per
    message); a streamed one through the counting wrapper."""
    if type(response).__call__ is not Response.__call__ or response.background is not None:
        await response(scope, tally.receive, tally.send)
        return
    tally.status = response.status_code
    start = {"type": "http.response.start", "status": tally.status, "headers": response.raw_headers}
    await tally.downstream(start)
    tally.sent += len(response.body)
    await tally.downstream({"type": "http.response.body", "body": response.body})
