"""The exception tree of ankisyncd.

SyncdError                  base; never raised directly
  ClientError               the client sent something we refuse (4xx)
    BadRequest       400    bad framing or JSON, unsupported version, failed apply
    AuthFailed       403    bad credentials or unknown host key
    SessionConflict  409    no active sync, or another session's key
    ClientTooOld     501    ``meta`` with a sync version outside 8..11
  ServerError        500    something broke on our side
ConfigError                 bad configuration at start-up (exit code 2)
UserError                   a user-management request that cannot be done
"""

from __future__ import annotations

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


class ServerError(SyncdError):
    status: ClassVar[int] = 500


class ConfigError(SyncdError):
    """A setting is missing or invalid; the message names the setting and its source."""


class UserError(SyncdError):
    """A user-management request that cannot be carried out (unsafe name, unknown user…)."""
