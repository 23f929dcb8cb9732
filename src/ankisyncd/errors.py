"""The exception tree of ankisyncd.

SyncdError                  base; never raised directly
  ClientError               the client sent something we refuse (4xx)
    BadRequest       400    bad framing or JSON, unsupported version, failed apply
    AuthFailed       403    bad credentials or unknown host key
    SessionConflict  409    no active sync, or another session's key
    StateChanged     409    a media file changed or vanished under the client: fetch again
    ClientTooOld     501    ``meta`` with a sync version outside 8..11
    RetryLater       503    come back in ``retry_after`` seconds (a Retry-After header)
      LoginThrottled        too many failed logins from an address or for a name
      ServerBusy            every kept user is in a sync: no room for one more
    UserUnavailable  503    the user's files cannot be opened (corrupt, unknown version)
  ServerError        500    something broke on our side
    StorageFault     503    the server's storage failed or is full: the client retries later
ConfigError                 bad configuration at start-up (exit code 2)
UserError                   a user-management request that cannot be done
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import ClassVar


class SyncdError(Exception):
    """Base of every error ankisyncd raises on purpose."""


class ClientError(SyncdError):
    """A request the server refuses; ``status`` is the HTTP status the client acts on."""

    status: ClassVar[int] = 400


class BadRequest(ClientError):
    status = 400


class AuthFailed(ClientError):
    status = 403


class SessionConflict(ClientError):
    status = 409


class StateChanged(ClientError):
    status = 409


class ClientTooOld(ClientError):
    status = 501


class RetryLater(ClientError):
    """503, because clients show it as "please try again in a few minutes" (a 429 shows as a
    generic network error, a 403 as a wrong password); ``retry_after`` in seconds."""

    status = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LoginThrottled(RetryLater):
    """Too many failed logins from an address or for a name."""


class ServerBusy(RetryLater):
    """Every user whose state the server keeps is in a sync, and none ended in time."""


class UserUnavailable(ClientError):
    """503: this user's stored files cannot be used; other users are served as usual."""

    status = 503


class ServerError(SyncdError):
    status: ClassVar[int] = 500


class StorageFault(ServerError):
    """Disk full, an I/O error, a read-only file system, a database that cannot be opened.

    Every client shows 500 and 503 alike ("... encountered a problem. Please try again in a
    few minutes.") and keeps its data; 503 also tells proxies and monitors that the fault
    is temporary, not a bug. A 400 would make clients advise Check Database and a one-way
    sync, which could replace newer data over a fault that is only the server's disk.
    """

    status = 503


# What the operating system says when the file system is full, failing or read-only.
STORAGE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EIO, errno.EROFS, getattr(errno, "EDQUOT", errno.ENOSPC)}
)
# SQLite's primary result codes for the same faults: SQLITE_READONLY, SQLITE_IOERR,
# SQLITE_FULL, SQLITE_CANTOPEN; and their messages, for Pythons before 3.11, whose
# exceptions carry no code.
_SQLITE_CODES = frozenset({8, 10, 13, 14})
_SQLITE_MESSAGES = (
    "attempt to write a readonly database",
    "disk I/O error",
    "database or disk is full",
    "unable to open database file",
)


def storage_fault(exc: BaseException) -> StorageFault | None:
    """The StorageFault behind ``exc`` (itself, or what caused it), or None if there is none.

    Recognises OSError and ``sqlite3`` errors by their codes, so it needs neither module's
    callers to translate them first.
    """
    for link in _chain(exc):
        if isinstance(link, StorageFault):
            return link
        if isinstance(link, OSError) and link.errno in STORAGE_ERRNOS:
            return StorageFault(str(link))
        if _is_sqlite_fault(link):
            name = getattr(link, "sqlite_errorname", None)
            return StorageFault(f"{link} ({name})" if name else str(link))
    return None


def _is_sqlite_fault(exc: BaseException) -> bool:
    if type(exc).__module__ != "sqlite3":
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _SQLITE_CODES
    return str(exc).startswith(_SQLITE_MESSAGES)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


class ConfigError(SyncdError):
    """A setting is missing or invalid; the message names the setting and its source."""


class UserError(SyncdError):
    """A user-management request that cannot be carried out (unsafe name, unknown user…)."""
