"""Client addresses from trusted proxy headers, and log text that cannot forge a line."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.types import Scope

from ankisyncd.config import IP_HEADER_SOURCES
from ankisyncd.http.address import IP_HEADERS, AddressSource, printable


def _conn(peer: str, headers: dict[str, str]) -> Scope:
    return {
        "type": "http",
        "client": (peer, 5000),
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }


def test_every_official_source_is_understood() -> None:
    assert set(IP_HEADERS) | {"ConnectInfo"} == set(IP_HEADER_SOURCES)


@pytest.mark.parametrize(
    ("source", "header", "value", "expected"),
    [
        ("RightmostXForwardedFor", "x-forwarded-for", "1.1.1.1, 2.2.2.2", "2.2.2.2"),
        ("XRealIp", "x-real-ip", "2001:db8::1", "2001:db8::1"),
        ("CfConnectingIp", "cf-connecting-ip", "3.3.3.3", "3.3.3.3"),
        ("RightmostForwarded", "forwarded", 'for=1.1.1.1, for="[2001:db8::2]:80"', "2001:db8::2"),
        ("RightmostForwarded", "forwarded", "for=4.4.4.4:8080;proto=https", "4.4.4.4"),
        ("CloudFrontViewerAddress", "cloudfront-viewer-address", "5.5.5.5:443", "5.5.5.5"),
        ("XRealIp", "x-real-ip", "not\nan address", "10.0.0.1"),
        ("XRealIp", "x-forwarded-for", "6.6.6.6", "10.0.0.1"),  # header missing
        ("ConnectInfo", "x-real-ip", "7.7.7.7", "10.0.0.1"),
    ],
)
def test_the_configured_header_names_the_client(
    source: str, header: str, value: str, expected: str
) -> None:
    assert AddressSource(source).client_address(_conn("10.0.0.1", {header: value})) == expected


def test_only_trusted_proxies_are_believed() -> None:
    source = AddressSource("XRealIp", (ipaddress.ip_network("10.0.0.0/8"),))
    assert source.client_address(_conn("10.1.2.3", {"x-real-ip": "8.8.8.8"})) == "8.8.8.8"
    assert source.client_address(_conn("9.9.9.9", {"x-real-ip": "8.8.8.8"})) == "9.9.9.9"


@given(st.text())
def test_printable_text_is_one_line_of_visible_characters(text: str) -> None:
    out = printable(text)
    assert "\n" not in out and "\r" not in out and "\x1b" not in out
    assert all(c.isprintable() or c == " " for c in out)


def test_escaping_keeps_names_readable() -> None:
    assert printable("jürgen\nINFO forged") == "jürgen\\nINFO forged"


def test_a_connection_without_a_peer_is_named_by_a_dash() -> None:
    conn: Scope = {"type": "http", "headers": []}
    assert AddressSource().client_address(conn) == "-"
    assert AddressSource("XRealIp").client_address(conn) == "-"
