"""Settings of the server itself: where it listens, how it logs and where a client's address
comes from."""

from __future__ import annotations

from dataclasses import dataclass, field

from ankisyncd.config.values import (
    IpNetwork,
    meta,
    parse_host,
    parse_ip_header,
    parse_level,
    parse_log_format,
    parse_networks,
    parse_port,
)


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    host: str = field(
        default="127.0.0.1", metadata=meta(parse_host, "address to listen on", "SYNC_HOST")
    )
    port: int = field(
        default=27701, metadata=meta(parse_port, "TCP port to listen on", "SYNC_PORT")
    )
    log_level: str = field(
        default="info", metadata=meta(parse_level, "debug, info, warning or error")
    )
    log_format: str = field(
        default="text", metadata=meta(parse_log_format, "text (for a console) or json")
    )
    ip_header: str = field(
        default="ConnectInfo",
        metadata=meta(
            parse_ip_header,
            "where the client address comes from (a proxy header)",
            "SYNC_IP_HEADER",
        ),
    )
    trusted_proxies: tuple[IpNetwork, ...] = field(
        default=(),
        metadata=meta(parse_networks, "comma-separated proxy addresses or networks"),
    )
