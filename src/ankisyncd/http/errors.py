"""The one place where exceptions become HTTP responses.

Clients act on the status alone and never read an error body, so the body is just the status
number, as the official server sends it. Context and cause go to the log.
"""

from __future__ import annotations

import logging

from starlette.responses import PlainTextResponse, Response

from ankisyncd.errors import ClientError, ServerError

log = logging.getLogger("ankisyncd.http")


def error_response(exc: Exception, context: str) -> Response:
    """Map ``exc`` to a response and log it: INFO for client errors, ERROR with traceback else."""
    if isinstance(exc, ClientError):
        status = exc.status
        cause = f" (cause: {exc.__cause__!r})" if exc.__cause__ else ""
        log.info("%s: %d %s%s", context, status, exc, cause)
    else:
        status = ServerError.status
        log.error("%s: %d %s", context, status, exc, exc_info=exc)
    return PlainTextResponse(str(status), status_code=status)
