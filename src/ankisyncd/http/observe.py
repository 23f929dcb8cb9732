"""One place that sees every request: it counts it in the metrics and logs one event for it.

Handlers add what they learn (user, device, client version) to ``scope["ankisyncd"]``; the
event is written when the answer's last byte is sent, so streamed downloads count in full.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send

from ankisyncd.observe.metrics import Metrics
from ankisyncd.protocol.methods import MediaSyncMethod, SyncMethod
from ankisyncd.threads import in_thread
from ankisyncd.users.hostkey import key_digest

log = logging.getLogger("ankisyncd.http")
INFO_KEY = "ankisyncd"
# Label values are bounded: an unknown path must not create a new time series.
_KNOWN = {f"/sync/{m.value}": f"sync/{m.value}" for m in SyncMethod} | {
    f"/msync/{m.value}": f"msync/{m.value}" for m in MediaSyncMethod
}
_KNOWN |= {f"/msync//{m.value}": f"msync/{m.value}" for m in MediaSyncMethod}
_KNOWN |= {"/health": "health", "/metrics": "metrics"}


def note(scope: Scope, user: str, client: str, host_key: str = "", address: str = "") -> None:
    """Record who made this request (and from where: http/address.py), for its log event."""
    info = scope.setdefault(INFO_KEY, {})
    info["user"], info["client"] = user, client
    if address:
        info["address"] = address
    if host_key:
        # A short, stable name for the device that does not reveal its key: the start of
        # the digest the devices table stores (``key_digest`` keeps recent ones).
        info["device"] = key_digest(host_key)[:12]


class Tally:
    """Status and body bytes of one request, counted as they pass ``receive`` and ``send``."""

    __slots__ = ("downstream", "received", "sent", "status", "upstream")

    def __init__(self, receive: Receive, send: Send) -> None:
        self.upstream, self.downstream = receive, send
        self.status, self.received, self.sent = 500, 0, 0

    async def receive(self) -> Message:
        message = await self.upstream()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.sent += len(message.get("body", b""))
        await self.downstream(message)


def observed(
    metrics: Metrics, scope: Scope, info: dict[str, Any], tally: Tally, started: float
) -> None:
    """Count an answered request (begun at ``started``, by ``time.perf_counter``) in the
    metrics and log its event."""
    seconds = time.perf_counter() - started
    endpoint = _KNOWN.get(scope["path"], "other")
    metrics.request(endpoint, scope["method"], tally.status, seconds, tally.received, tally.sent)
    # Checked first: the event's fields cost more than the metrics (bench/request_cpu.py).
    if endpoint not in ("health", "metrics") and log.isEnabledFor(logging.INFO):
        _log_request(scope, info, endpoint, tally, seconds)


def _log_request(
    scope: Scope, info: dict[str, Any], endpoint: str, tally: Tally, seconds: float
) -> None:
    client = scope.get("client")
    fields = {
        "event": "request",
        "request_id": os.urandom(6).hex(),
        "endpoint": endpoint if endpoint != "other" else scope["path"][:200],
        "user": info.get("user", "-"),
        "device": info.get("device", "-"),
        "client_version": info.get("client", "-"),
        "client_address": info.get("address") or (client[0] if client else "-"),
        "method": scope["method"],
        "status": tally.status,
        "duration_ms": round(seconds * 1000, 1),
        "bytes_in": tally.received,
        "bytes_out": tally.sent,
    }
    log.info(
        "%s user=%s client=%s status=%d %.1fms device=%s addr=%s in=%d out=%d id=%s",
        _printable(fields["endpoint"]),
        _printable(fields["user"]),
        _printable(fields["client_version"]),
        tally.status,
        fields["duration_ms"],
        fields["device"],
        fields["client_address"],
        tally.received,
        tally.sent,
        fields["request_id"],
        extra={"fields": fields},
    )


def _printable(value: object) -> str:
    """Client-chosen text on one console line: control characters escaped, length capped."""
    text = str(value)[:200]
    if text.isprintable():  # nearly always: no copy
        return text
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def metrics_endpoint(metrics: Metrics, token: str | None) -> Any:
    """``GET /metrics``: the Prometheus text format; with a token, only for ``Bearer <token>``."""

    async def serve_metrics(request: Request) -> Response:
        if token:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return PlainTextResponse(
                    "Unauthorized", status_code=401, headers={"www-authenticate": "Bearer"}
                )
        await in_thread(metrics.count_users)  # SQLite: off the event loop
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return serve_metrics
