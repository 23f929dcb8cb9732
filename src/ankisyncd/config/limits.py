"""Settings that bound what requests, connections, logins and open users may cost."""

from __future__ import annotations

from dataclasses import dataclass, field

from ankisyncd.config.values import meta, parse_count, parse_positive, parse_seconds


@dataclass(frozen=True, kw_only=True)
class LimitSettings:
    max_sync_payload_megs: int = field(
        default=100,
        metadata=meta(
            parse_positive,
            "L in MiB: legacy forms up to L, full uploads and media zips decompressed to 3 x L",
            "MAX_SYNC_PAYLOAD_MEGS",
        ),
    )
    max_json_megs: int = field(
        default=16,
        metadata=meta(
            parse_positive, "MiB a start, applyChanges or applyChunk body may decompress to"
        ),
    )
    header_timeout: float = field(
        default=30.0,
        metadata=meta(parse_seconds, "seconds to receive a request's line and headers"),
    )
    body_timeout: float = field(
        default=90.0,
        metadata=meta(parse_seconds, "seconds a request body may go without any byte arriving"),
    )
    # Above the client's connection-pool idle timeout (hyper/reqwest: 90 s), so a client never
    # reuses a connection at the moment the server closes it (e.g. after a full-sync prompt).
    keep_alive_timeout: float = field(
        default=120.0,
        metadata=meta(parse_seconds, "seconds an idle connection is kept between requests"),
    )
    max_connections: int = field(
        default=1000,
        metadata=meta(parse_positive, "open connections (and requests) before answering 503"),
    )
    login_threads: int = field(
        default=0,
        metadata=meta(parse_count, "threads checking passwords (64 MiB each); 0: one per core"),
    )
    login_failures_per_address: int = field(
        default=20,
        metadata=meta(
            parse_count, "failed logins from one address before it must wait; 0: no limit"
        ),
    )
    login_failures_per_user: int = field(
        default=10,
        metadata=meta(
            parse_count, "failed logins for one user name before it must wait; 0: no limit"
        ),
    )
    login_throttle_seconds: float = field(
        default=300.0,
        metadata=meta(parse_seconds, "time in which a full failure count is forgiven"),
    )
    max_open_users: int = field(
        default=1000,
        metadata=meta(parse_positive, "users whose databases stay open between requests"),
    )
    user_idle_seconds: float = field(
        default=300.0,
        metadata=meta(parse_seconds, "idle time after which a user's databases are closed"),
    )
    sync_idle_seconds: float = field(
        default=300.0,
        metadata=meta(parse_seconds, "idle time after which an unfinished sync is rolled back"),
    )

    @property
    def max_payload_bytes(self) -> int:
        """L in bytes."""
        return self.max_sync_payload_megs * 1024 * 1024

    @property
    def max_decompressed_bytes(self) -> int:
        """The cap on a decompressed request body: 3 x L, as the official server uses."""
        return 3 * self.max_payload_bytes
