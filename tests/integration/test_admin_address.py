"""The admin page's log and login throttle name the client address the sync side resolves:
a trusted proxy's header, else the connection's peer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ankisyncd.users.hashing import hash_password
from tests.integration.test_admin_security import form_token
from tests.support.server import ServerProcess, serving

ADMIN_PASSWORD = "admin secret"
# Documentation addresses (RFC 5737): what a proxy in front of the server would pass on.
OFFICE, GUESSER, OTHER = "203.0.113.7", "198.51.100.1", "198.51.100.2"


def _env(trusted: str) -> dict[str, str]:
    return {
        "ANKISYNCD_ADMIN_PASSWORD_HASH": hash_password(ADMIN_PASSWORD),
        "ANKISYNCD_IP_HEADER": "XRealIp",
        "ANKISYNCD_TRUSTED_PROXIES": trusted,
        # Only the per-address count: the admin's name has a count of its own.
        "ANKISYNCD_LOGIN_FAILURES_PER_ADDRESS": "2",
        "ANKISYNCD_LOGIN_FAILURES_PER_USER": "0",
    }


@pytest.fixture
def behind_proxy(tmp_path: Path) -> Iterator[ServerProcess]:
    """The server trusts the loopback peer's X-Real-IP, as behind a proxy on the same host."""
    with serving(tmp_path / "data", _env("127.0.0.0/8")) as server:
        yield server


@pytest.fixture
def untrusted_peer(tmp_path: Path) -> Iterator[ServerProcess]:
    """The server trusts only another network's proxies: the loopback peer's header is ignored."""
    with serving(tmp_path / "data", _env("10.0.0.0/8")) as server:
        yield server


def _log_in(server: ServerProcess, client_ip: str, password: str) -> httpx.Response:
    """Post the login form from ``client_ip`` (as the proxy's header says); the answer."""
    headers = {"x-real-ip": client_ip}
    with httpx.Client(base_url=server.url + "admin", headers=headers) as client:
        page = client.get("/login")
        return client.post("/login", data={"csrf": form_token(page.text), "password": password})


def _request_lines(server: ServerProcess, last: str) -> list[str]:
    """The request log lines of the admin pages, once ``last``'s is written (after its answer)."""
    deadline = time.monotonic() + 30
    while f"{last} user=" not in server.log():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return [line for line in server.log().splitlines() if "ankisyncd.http: /admin/" in line]


def _add_user(server: ServerProcess, client_ip: str, name: str) -> None:
    headers = {"x-real-ip": client_ip}
    with httpx.Client(base_url=server.url + "admin", headers=headers) as client:
        page = client.get("/login")
        data = {"csrf": form_token(page.text), "password": ADMIN_PASSWORD}
        assert client.post("/login", data=data).status_code == 303
        users = client.get("/users")
        data = {"csrf": form_token(users.text), "name": name, "password": "p", "password2": "p"}
        assert client.post("/users/add", data=data).status_code == 303


def test_behind_a_trusted_proxy_the_log_and_throttle_use_the_header(
    behind_proxy: ServerProcess,
) -> None:
    server = behind_proxy
    _add_user(server, OFFICE, "bob")
    log = server.log()
    assert f"admin at {OFFICE}: logged in" in log
    assert f"admin at {OFFICE}: Added user 'bob'." in log
    assert "admin at 127.0.0.1" not in log
    # The request log lines of the admin pages name the same address.
    lines = _request_lines(server, "/admin/users/add")
    assert lines and all(f"addr={OFFICE} " in line for line in lines), lines

    for _ in range(2):
        assert _log_in(server, GUESSER, "guess").status_code == 403
    assert _log_in(server, GUESSER, ADMIN_PASSWORD).status_code == 429
    assert f"admin at {GUESSER}: login refused: throttled" in server.log()
    # Another client behind the same proxy has failures of its own to spend.
    assert _log_in(server, OTHER, "guess").status_code == 403
    assert _log_in(server, OFFICE, ADMIN_PASSWORD).status_code == 303


def test_from_an_untrusted_peer_the_header_is_ignored(untrusted_peer: ServerProcess) -> None:
    server = untrusted_peer
    _add_user(server, OFFICE, "bob")
    log = server.log()
    assert "admin at 127.0.0.1: logged in" in log
    assert "admin at 127.0.0.1: Added user 'bob'." in log
    lines = _request_lines(server, "/admin/users/add")
    assert lines and all("addr=127.0.0.1 " in line for line in lines), lines
    assert OFFICE not in server.log()

    for _ in range(2):
        assert _log_in(server, GUESSER, "guess").status_code == 403
    # The header names another client, but the failures counted against the peer.
    assert _log_in(server, OTHER, ADMIN_PASSWORD).status_code == 429
    assert "admin at 127.0.0.1: login refused: throttled" in server.log()
    assert GUESSER not in server.log()
