"""The one place where exceptions become HTTP responses.

Clients act on the status alone and never read an error body, so the body is just the status
number, as the official server sends it. Context and cause go to the log.
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect
from starlette.responses import PlainTextResponse, Response

from ankisyncd.errors import ClientError, ServerError

log = logging.getLogger("ankisyncd.http")


def error_response(exc: Exception, context: str) -> Response:
    """Map ``exc`` to a response and log it: INFO for client errors, ERROR with traceback else."""
    if isinstance(exc, ClientDisconnect):
        # Nobody is left to answer; what the request had started was already undone.
        status = 400
        log.info("%s: client disconnected before the request body ended", context)
    elif isinstance(exc, ClientError):
        status = exc.status
        cause = f" (cause: {exc.__cause__!r})" if exc.__cause__ else ""
        log.info("%s: %d %s%s", context, status, exc, cause)
    else:
        status = ServerError.status
        log.error("%s: %d %s", context, status, exc, exc_info=exc)
    return PlainTextResponse(str(status), status_code=status)
