"""``ankisyncd tls init`` and the start-up checks of native TLS: one clear line per mistake."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ankisyncd.tls.issue import init
from tests.support.docs import documented
from tests.support.server import ServerProcess
from tests.support.tls import tls_env, tls_init


def sans(cert_path: Path) -> list[str]:
    cert = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(n.value) for n in names]


def test_tls_init_issues_exactly_the_given_names_and_reuses_its_ca(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    out = tls_init(folder, "anki.home.arpa", "sync.example.test", "192.168.1.20", "::1").stdout
    assert sans(folder / "server.pem") == [
        "anki.home.arpa",
        "sync.example.test",
        "192.168.1.20",
        "::1",
    ]
    assert (folder / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (folder / "server.key").stat().st_mode & 0o777 == 0o600
    assert "(created)" in out
    for expected in (
        "https://anki.home.arpa:27701/",
        "https://[::1]:27701/",
        f"--tls-cert {folder / 'server.pem'} --tls-key {folder / 'server.key'}",
        "update-ca-certificates",
        "security add-trusted-cert",
        "certutil -addstore -f Root ca.pem",
        "AnkiDroid",
        "custom certificate",
        "AnkiMobile",
        "Certificate Trust Settings",
        "2.1.50-2.1.56 cannot use an IP address",
    ):
        assert expected in out, expected

    ca = (folder / "ca.pem").read_bytes()
    first = (folder / "server.pem").read_bytes()
    again = tls_init(folder, "anki.home.arpa").stdout
    assert "reused" in again
    assert (folder / "ca.pem").read_bytes() == ca
    assert (folder / "server.pem").read_bytes() != first
    assert sans(folder / "server.pem") == ["anki.home.arpa"]


def test_issued_certificate_chains_to_the_ca(tmp_path: Path) -> None:
    issued = init(tmp_path, ["localhost"], [ipaddress.ip_address("127.0.0.1")])
    server, ca = x509.load_pem_x509_certificates(issued.cert.read_bytes())
    assert ca.public_bytes(Encoding.PEM) == issued.ca.read_bytes()
    server.verify_directly_issued_by(ca)
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (server.not_valid_after_utc - server.not_valid_before_utc).days <= 825


def serve_error(server: ServerProcess) -> str:
    result = server.cli("serve")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: "), lines
    return lines[-1]


@pytest.fixture
def offline(tmp_path: Path) -> ServerProcess:
    tls_init(tmp_path / "tls", "localhost", "127.0.0.1")
    return ServerProcess(tmp_path / "data", env=tls_env(tmp_path / "tls"))


def test_missing_certificate_file_stops_startup(offline: ServerProcess, tmp_path: Path) -> None:
    offline.env["ANKISYNCD_TLS_CERT"] = str(tmp_path / "nope.pem")
    assert serve_error(offline) == (
        f"error: ANKISYNCD_TLS_CERT: {str(tmp_path / 'nope.pem')!r} does not exist"
    )


def test_certificate_without_key_stops_startup(offline: ServerProcess) -> None:
    del offline.env["ANKISYNCD_TLS_KEY"]
    assert serve_error(offline) == "error: ANKISYNCD_TLS_CERT: tls_cert needs tls_key as well"


def test_key_of_another_certificate_stops_startup(offline: ServerProcess, tmp_path: Path) -> None:
    tls_init(tmp_path / "other", "localhost")
    offline.env["ANKISYNCD_TLS_KEY"] = str(tmp_path / "other" / "server.key")
    assert "does not match certificate" in serve_error(offline)


def test_expired_certificate_stops_startup(offline: ServerProcess, tmp_path: Path) -> None:
    past = datetime.now(timezone.utc) - timedelta(days=30)
    init(tmp_path / "old", ["localhost"], [], now=past, days=10)
    offline.env.update(tls_env(tmp_path / "old"))
    line = serve_error(offline)
    assert "expired on" in line
    assert "renew it" in line


def test_not_a_certificate_stops_startup(offline: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    offline.env["ANKISYNCD_TLS_CERT"] = str(tmp_path / "junk.pem")
    assert "holds no PEM certificate" in serve_error(offline)


def test_health_checks_an_https_server(offline: ServerProcess) -> None:
    assert offline.cli("health").returncode == 1
    offline.start()
    try:
        result = offline.cli(*documented("ankisyncd health")[1:])
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("ok: https://127.0.0.1:")
    finally:
        offline.stop()


def test_tls_init_refuses_bad_names(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data")
    assert server.cli("tls", "init", "--ip", "300.1.1.1").returncode == 2
    result = server.cli("tls", "init")
    assert result.returncode == 2
    assert "give at least one --host or --ip" in result.stderr
