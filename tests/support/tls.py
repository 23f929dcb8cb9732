"""Certificates for tests, made the way users make them: ``ankisyncd tls init``."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from pathlib import Path

from cryptography import x509

from tests.support.docs import documented


def tls_init(folder: Path, *names: str) -> subprocess.CompletedProcess[str]:
    """``ankisyncd tls init --dir folder`` with ``--host``/``--ip`` per name."""
    args = []
    for name in names:
        args += ["--ip" if name[0].isdigit() or ":" in name else "--host", name]
    command = documented(
        "ankisyncd tls init --dir ./tls --host anki.home.arpa --ip 192.168.1.20",
        {
            "ankisyncd": [sys.executable, "-m", "ankisyncd"],
            "./tls": str(folder),
            "--host": [],
            "anki.home.arpa": [],
            "--ip": [],
            "192.168.1.20": args,
        },
    )
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(folder.parent)},
    )
    assert result.returncode == 0, result.stderr
    return result


def tls_env(folder: Path) -> dict[str, str]:
    return {
        "ANKISYNCD_TLS_CERT": str(folder / "server.pem"),
        "ANKISYNCD_TLS_KEY": str(folder / "server.key"),
    }


def served_certificate(
    port: int, ca: Path, server_name: str = "localhost", version: ssl.TLSVersion | None = None
) -> tuple[x509.Certificate, str]:
    """The certificate a fresh handshake gets, and the TLS version used; verified with ``ca``."""
    context = ssl.create_default_context(cafile=str(ca))
    if version:
        context.minimum_version = context.maximum_version = version
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        context.wrap_socket(sock, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der), str(tls.version())
