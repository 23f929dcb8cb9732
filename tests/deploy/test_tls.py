"""Native TLS with real clients trusting a CA made by ``ankisyncd tls init``."""

from __future__ import annotations

import os
import signal
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clients import LEGACY_V10, Device, ok
from tests.support.docs import documented
from tests.support.server import ServerProcess
from tests.support.tls import served_certificate, tls_env, tls_init

DOCS = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


@pytest.fixture
def https_server(tmp_path: Path, certs: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "data")
    server.command = documented(
        "ankisyncd serve --host 0.0.0.0 --tls-cert tls/server.pem --tls-key tls/server.key",
        {
            "ankisyncd": [sys.executable, "-m", "ankisyncd"],
            "0.0.0.0": "127.0.0.1",
            "tls/server.pem": str(certs / "server.pem"),
            "tls/server.key": str(certs / "server.key"),
        },
    )
    server.add_user("alice", "pw")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def trusting(folder: Path, how: str, ca: Path, version: str | None = None) -> Device:
    if how == "ssl_cert_file":
        return Device(
            folder, **({"version": version} if version else {}), env={"SSL_CERT_FILE": str(ca)}
        )
    device = Device(folder)
    device.trust(ca.read_text())  # the process keeps the host's own SSL_CERT_FILE
    return device


def sync_everything(a: Device, b: Device, url: str) -> None:
    """Login, full upload, normal sync and media both ways between two devices."""
    a.login("alice", "pw", url)
    b.login("alice", "pw", url)
    ok(
        a.run(
            {"op": "add_notes", "count": 5, "prefix": "a"},
            {"op": "add_media", "name": "big.bin", "size": 1_500_000},
            {"op": "full_upload"},
            {"op": "sync_media"},
        )
    )
    ok(
        b.run(
            {"op": "full_download"},
            {"op": "sync_media"},
            {"op": "add_notes", "count": 2, "prefix": "b"},
            {"op": "add_media", "name": "from-b.txt", "text": "hello from b"},
            {"op": "sync"},
            {"op": "sync_media"},
        )
    )
    ok(a.run({"op": "sync"}, {"op": "sync_media"}))
    assert len(a.dump()["notes"]) == 7
    assert a.step("media_files") == b.step("media_files")
    assert set(a.step("media_files")) == {"big.bin", "from-b.txt"}


@pytest.mark.parametrize("how", ["ssl_cert_file", "custom_certificate"])
def test_client_trusting_the_private_ca_syncs_over_https(
    https_server: ServerProcess, certs: Path, tmp_path: Path, how: str
) -> None:
    a = trusting(tmp_path / "a", how, certs / "ca.pem")
    b = trusting(tmp_path / "b", how, certs / "ca.pem")
    assert https_server.url.startswith("https://127.0.0.1:")
    sync_everything(a, b, https_server.url)


@pytest.mark.older_client
def test_legacy_client_syncs_over_https_with_a_dns_name(
    https_server: ServerProcess, certs: Path, tmp_path: Path
) -> None:
    https_server.url_host = "localhost"
    a = trusting(tmp_path / "a", "ssl_cert_file", certs / "ca.pem", LEGACY_V10)
    b = trusting(tmp_path / "b", "ssl_cert_file", certs / "ca.pem", LEGACY_V10)
    sync_everything(a, b, https_server.url)


@pytest.mark.older_client
def test_legacy_client_cannot_use_an_ip_address_over_https(
    https_server: ServerProcess, certs: Path, tmp_path: Path
) -> None:
    device = trusting(tmp_path / "a", "ssl_cert_file", certs / "ca.pem", LEGACY_V10)
    result = device.login("alice", "pw", https_server.url)
    assert "invalid dnsname" in result["message"].lower()
    assert "invalid dnsname" in DOCS.read_text()


def test_client_not_trusting_the_ca_is_refused(https_server: ServerProcess, tmp_path: Path) -> None:
    tls_init(tmp_path / "other", "localhost", "127.0.0.1")
    device = trusting(tmp_path / "a", "ssl_cert_file", tmp_path / "other" / "ca.pem")
    result = device.login("alice", "pw", https_server.url)
    print(result)
    assert result["error"] == "NetworkError"
    assert "error sending request" in result["message"]
    assert "error sending request" in DOCS.read_text()
    untrusting = Device(tmp_path / "b")  # the host's own store only
    assert untrusting.login("alice", "pw", https_server.url)["error"] == "NetworkError"


def test_name_not_in_the_certificate_is_refused_and_warned_about(tmp_path: Path) -> None:
    tls_init(tmp_path / "tls", "sync.example.test")
    server = ServerProcess(
        tmp_path / "data", env={**tls_env(tmp_path / "tls"), "ANKISYNCD_HOST": "127.0.0.1"}
    )
    server.add_user("alice", "pw")
    server.start()
    try:
        device = trusting(tmp_path / "a", "ssl_cert_file", tmp_path / "tls" / "ca.pem")
        result = device.login("alice", "pw", server.url)
        assert result["error"] == "NetworkError"
    finally:
        server.stop()
    assert "does not cover '127.0.0.1' (it covers sync.example.test)" in server.log()


def test_tls_1_2_and_1_3_are_served(https_server: ServerProcess, certs: Path) -> None:
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        _, used = served_certificate(https_server.port, certs / "ca.pem", version=version)
        assert used == version.name.replace("_", ".")


def test_renewed_certificate_is_served_without_a_restart(
    https_server: ServerProcess, certs: Path, tmp_path: Path
) -> None:
    ca_before = (certs / "ca.pem").read_bytes()
    first, _ = served_certificate(https_server.port, certs / "ca.pem")
    pid = https_server.proc.pid if https_server.proc else 0

    tls_init(certs, "localhost", "127.0.0.1")  # renewal: same CA, new certificate
    assert (certs / "ca.pem").read_bytes() == ca_before
    renewed, _ = served_certificate(https_server.port, certs / "ca.pem")
    assert renewed.serial_number != first.serial_number

    # A half-done renewal (a key that does not match) keeps the previous certificate.
    tls_init(tmp_path / "other", "localhost")
    (certs / "server.key").write_bytes((tmp_path / "other" / "server.key").read_bytes())
    still, _ = served_certificate(https_server.port, certs / "ca.pem")
    assert still.serial_number == renewed.serial_number
    assert "keeping the previous certificate" in https_server.log()

    # SIGHUP reloads (and does not end the server).
    tls_init(certs, "localhost", "127.0.0.1")
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + 30
    while https_server.log().count("tls: loaded certificate") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert https_server.log().count("tls: loaded certificate") >= 2
    assert https_server.alive()
    device = trusting(tmp_path / "a", "ssl_cert_file", certs / "ca.pem")
    assert "hkey" in device.login("alice", "pw", https_server.url)
