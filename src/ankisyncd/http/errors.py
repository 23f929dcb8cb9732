"""The one place where exceptions become HTTP responses.

Clients act on the status alone and never read an error body, so the body is just the status
number, as the official server sends it. Context and cause go to the log.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from starlette.requests import ClientDisconnect
from starlette.responses import PlainTextResponse, Response

from ankisyncd.errors import ClientError, RetryLater, ServerError, storage_fault
from ankisyncd.http.address import printable
from ankisyncd.http.framing import BodyTooLarge

log = logging.getLogger("ankisyncd.http")
# A full disk fails every request that writes: the operator is told once per cause and
# place in this many seconds, and the repeats are logged at INFO.
FAULT_REPEAT_SECONDS = 60.0
_faults_logged: dict[str, float] = {}


def error_response(exc: Exception, context: str, where: Path | None = None) -> Response:
    """Map ``exc`` to a response and log it.

    Storage faults (disk full, I/O error…), even under a client error they caused, are 503
    with one log line naming the cause and ``where``; client errors are logged at INFO;
    anything else is 500, logged at ERROR with its traceback.
    """
    fault = storage_fault(exc)
    if fault is not None:
        status = fault.status
        _log_fault(f"server storage fault under {where}: {fault}", context, status)
    elif isinstance(exc, ClientDisconnect):
        # Nobody is left to answer; what the request had started was already undone.
        status = 400
        log.info("%s: client disconnected before the request body ended", context)
    elif isinstance(exc, ClientError):
        status = exc.status
        cause = f" (cause: {printable(repr(exc.__cause__))})" if exc.__cause__ else ""
        log.info("%s: %d %s%s", context, status, printable(str(exc)), cause)
    else:
        status = ServerError.status
        log.error("%s: %d %s", context, status, exc, exc_info=exc)
    response = PlainTextResponse(str(status), status_code=status)
    if isinstance(exc, BodyTooLarge):
        # The rest of the body is not read: the connection cannot carry another request.
        response.headers["connection"] = "close"
    if isinstance(exc, RetryLater):
        response.headers["retry-after"] = str(exc.retry_after)
    return response


def _log_fault(message: str, context: str, status: int) -> None:
    now = time.monotonic()
    last = _faults_logged.get(message)
    repeated = last is not None and now - last < FAULT_REPEAT_SECONDS
    if not repeated:
        _faults_logged[message] = now
        if len(_faults_logged) > 1000:  # bounded: drop the oldest half
            for key in sorted(_faults_logged, key=_faults_logged.__getitem__)[:500]:
                del _faults_logged[key]
    log.log(logging.INFO if repeated else logging.ERROR, "%s: %d %s", context, status, message)
