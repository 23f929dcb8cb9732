"""The sync endpoints' requests straight to their handlers, around Starlette's Router."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Router
from starlette.types import Receive, Scope, Send

from ankisyncd.http.observe import Tally

Handler = Callable[[Request], Awaitable[Response]]


class Direct:
    """POSTs to ``/sync/<method>`` and ``/msync/<method>`` go straight to their handler; the
    rest through the Router, which matches the same paths the same way.

    The Router's matching and exception layers cost a ``meta`` ~5% of its CPU
    (bench/request_cpu.py), and the handlers turn every error into an answer themselves.
    """

    def __init__(self, sync: Handler, media: Handler, router: Router) -> None:
        self.sync, self.media, self.router = sync, media, router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.serve(scope, Tally(receive, send))

    async def serve(self, scope: Scope, tally: Tally) -> None:
        """Answer one request, counting what it moves in ``tally``."""
        if scope["type"] == "http" and scope["method"] == "POST":
            handler, name = self._match(scope["path"])
            if handler is not None and name and "/" not in name:
                scope["path_params"] = {"method": name}  # as the Router sets it
                response = await handler(Request(scope, tally.receive, tally.send))
                await _answer(response, scope, tally)
                return
        await self.router(scope, tally.receive, tally.send)

    def _match(self, path: str) -> tuple[Handler | None, str]:
        """The handler and method name for a path of ``/sync/{method}``, ``/msync/{method}``
        or ``/msync//{method}`` (old clients' media URL)."""
        if path.startswith("/sync/"):
            return self.sync, path[6:]
        if path.startswith("/msync//"):
            return self.media, path[8:]
        if path.startswith("/msync/"):
            return self.media, path[7:]
        return None, ""


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
