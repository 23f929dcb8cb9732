"""The types settings take and the parsers that check each value, shared by the areas' tables."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


class Secret(str):
    """A string whose repr never shows its value."""

    def __repr__(self) -> str:
        return "Secret('**********')"


def parse_port(text: str) -> int:
    port = parse_int(text)
    if not 0 <= port <= 65535:
        raise ValueError(f"{text!r} is not a port number (0-65535)")
    return port


def parse_int(text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None


def parse_positive(text: str) -> int:
    megs = parse_int(text)
    if megs < 1:
        raise ValueError(f"{text!r} must be at least 1")
    return megs


def parse_seconds(text: str) -> float:
    try:
        seconds = float(str(text).strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not 0 < seconds <= 86400:
        raise ValueError(f"{text!r} must be more than 0 and at most 86400 seconds")
    return seconds


def parse_count(text: str) -> int:
    count = parse_int(text)
    if count < 0:
        raise ValueError(f"{text!r} must not be negative")
    return count


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds from ``90``, ``90s``, ``30m``, ``6h`` or ``1d``; 0 means off."""
    value = str(text).strip().lower()
    unit = _UNITS.get(value[-1:], 0)
    number = value[:-1] if unit else value
    try:
        seconds = int(number) * (unit or 1)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration (e.g. 3600, 30m, 6h, 1d)") from None
    if seconds < 0:
        raise ValueError(f"{text!r} must not be negative")
    return seconds


# The official server's SYNC_IP_HEADER values; ConnectInfo (the connection's peer) is its default.
IP_HEADER_SOURCES = (
    "ConnectInfo",
    "RightmostXForwardedFor",
    "XRealIp",
    "CfConnectingIp",
    "TrueClientIp",
    "FlyClientIp",
    "RightmostForwarded",
    "CloudFrontViewerAddress",
)


def parse_ip_header(text: str) -> str:
    value = str(text).strip()
    if value not in IP_HEADER_SOURCES:
        raise ValueError(f"{text!r} is not one of {', '.join(IP_HEADER_SOURCES)}")
    return value


def parse_networks(text: str) -> tuple[IpNetwork, ...]:
    try:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in str(text).split(",")
            if part.strip()
        )
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None


def parse_level(text: str) -> str:
    level = str(text).strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


def parse_host(text: str) -> str:
    host = str(text).strip()
    if not host:
        raise ValueError("an empty host")
    return host


def parse_path(text: str) -> Path:
    if not str(text).strip():
        raise ValueError("an empty path")
    return Path(str(text)).expanduser()


def parse_admin_hash(text: str) -> Secret:
    # Only argon2: the hash is made by ``ankisyncd admin set-password``; checked fully at start.
    phc = str(text).strip()
    if not phc.startswith("$argon2"):
        raise ValueError("not an argon2 PHC string (make one with `ankisyncd admin set-password`)")
    return Secret(phc)


def parse_log_format(text: str) -> str:
    value = str(text).strip().lower()
    if value not in LOG_FORMATS:
        raise ValueError(f"{text!r} is not one of {', '.join(LOG_FORMATS)}")
    return value


def parse_token(text: str) -> Secret:
    token = str(text).strip()
    if len(token) < 16 or any(c.isspace() for c in token):
        raise ValueError("a metrics token needs at least 16 characters and no spaces")
    return Secret(token)


def parse_minutes(text: str) -> int:
    minutes = parse_int(text)
    if not 1 <= minutes <= 7 * 24 * 60:
        raise ValueError(f"{text!r} must be between 1 and 10080 (a week)")
    return minutes


def meta(parse: Callable[[str], Any], help: str, alias: str | None = None) -> dict[str, Any]:
    """A field's metadata: its parser, its help text, the official server's name for it."""
    return {"parse": parse, "help": help, "alias": alias}
