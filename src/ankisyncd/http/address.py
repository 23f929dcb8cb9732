"""The client's address, from the connection or from a trusted proxy's header; safe log text."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import Scope

from ankisyncd.config import IpNetwork, Settings

# The official server's SYNC_IP_HEADER values (the axum-client-ip sources it accepts), and how
# each one's header names the client. "ConnectInfo", the default, uses the connection's peer.
_LAST = -1


def _rightmost_forwarded(value: str) -> str:
    """The ``for=`` of the last element of a ``Forwarded`` header (RFC 7239)."""
    last = value.split(",")[_LAST]
    for pair in last.split(";"):
        key, _, val = pair.strip().partition("=")
        if key.lower() == "for":
            val = val.strip('"')
            if val.startswith("["):  # [v6]:port
                return val[1:].partition("]")[0]
            return val.rsplit(":", 1)[0] if val.count(":") == 1 else val
    return ""


IP_HEADERS: dict[str, tuple[str, Callable[[str], str]]] = {
    "RightmostXForwardedFor": ("x-forwarded-for", lambda v: v.split(",")[_LAST]),
    "XRealIp": ("x-real-ip", lambda v: v),
    "CfConnectingIp": ("cf-connecting-ip", lambda v: v),
    "TrueClientIp": ("true-client-ip", lambda v: v),
    "FlyClientIp": ("fly-client-ip", lambda v: v),
    "RightmostForwarded": ("forwarded", _rightmost_forwarded),
    # "ip:port", the port last; an IPv6 address keeps its colons.
    "CloudFrontViewerAddress": ("cloudfront-viewer-address", lambda v: v.rsplit(":", 1)[0]),
}
CONNECT_INFO = "ConnectInfo"


@dataclass(frozen=True)
class AddressSource:
    """Where the client address comes from: ``header`` (an IP_HEADERS key) or the peer."""

    header: str = CONNECT_INFO
    trusted: Sequence[IpNetwork] = ()  # peers whose header is believed; empty: any peer

    @classmethod
    def from_settings(cls, settings: Settings) -> AddressSource:
        """The source ``ip_header`` and ``trusted_proxies`` name: for sync and admin requests."""
        return cls(settings.ip_header, settings.trusted_proxies)

    def client_address(self, scope: Scope) -> str:
        """The client's IP address as text (of an ASGI ``scope``); the peer's when no trusted
        header names one."""
        client = scope.get("client")  # as ``conn.client``, without its named tuple
        peer = client[0] if client else "-"
        found = IP_HEADERS.get(self.header)
        if found is None or not self._trusts(peer):
            return peer
        name, pick = found
        raw = Headers(scope=scope).get(name)
        if not raw:
            return peer
        try:
            return str(ipaddress.ip_address(pick(raw).strip()))
        except ValueError:  # not an address: never log what the header said
            return peer

    def _trusts(self, peer: str) -> bool:
        if not self.trusted:
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in net for net in self.trusted)


MAX_LOGGED_CHARS = 120


def _escape(char: str) -> str:
    if char.isprintable() and char != "\\":
        return char
    return char.encode("unicode_escape").decode("ascii")


def printable(text: str) -> str:
    """``text`` safe for one log line: what is not printable, and backslashes, escaped; cut
    short."""
    if len(text) > MAX_LOGGED_CHARS:
        text = text[:MAX_LOGGED_CHARS] + "..."
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(map(_escape, text))
