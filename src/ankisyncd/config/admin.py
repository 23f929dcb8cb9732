"""Settings of the admin page and of ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass, field

from ankisyncd.config.values import (
    Secret,
    meta,
    parse_admin_hash,
    parse_host,
    parse_minutes,
    parse_port,
    parse_token,
)


@dataclass(frozen=True, kw_only=True)
class AdminSettings:
    admin_password_hash: Secret | None = field(
        default=None,
        metadata=meta(
            parse_admin_hash, "argon2 hash of the admin password: enables the /admin/ page"
        ),
    )
    admin_host: str | None = field(
        default=None,
        metadata=meta(parse_host, "serve the admin page on this address only (with admin_port)"),
    )
    admin_port: int | None = field(
        default=None,
        metadata=meta(parse_port, "serve the admin page on this port only, not on port"),
    )
    admin_session_minutes: int = field(
        default=60, metadata=meta(parse_minutes, "admin logins expire after this many minutes")
    )
    metrics_token: Secret | None = field(
        default=None,
        metadata=meta(parse_token, "require 'Authorization: Bearer <token>' for /metrics"),
    )
