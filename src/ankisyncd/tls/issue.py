"""A private CA (made once, then reused) and the server certificates it issues.

Files, in one folder: ``ca.pem`` (give this to the devices), ``ca.key``, ``server.pem`` (server
certificate followed by the CA's), ``server.key``. Keys are ECDSA P-256, which every Anki
client since 2.1.50 accepts. Server certificates last 825 days, the longest iOS accepts.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ankisyncd.errors import ConfigError
from ankisyncd.tls.certs import IPAddress

CA_DAYS = 3650
SERVER_DAYS = 825


@dataclass(frozen=True)
class Issued:
    folder: Path
    ca_created: bool
    not_after: datetime

    ca = property(lambda self: self.folder / "ca.pem")
    cert = property(lambda self: self.folder / "server.pem")
    key = property(lambda self: self.folder / "server.key")


def parse_ips(texts: list[str]) -> list[IPAddress]:
    out = []
    for text in texts:
        try:
            out.append(ipaddress.ip_address(text))
        except ValueError:
            raise ConfigError(f"--ip: {text!r} is not an IP address") from None
    return out


def init(
    folder: Path,
    hosts: list[str],
    ips: list[IPAddress],
    now: datetime | None = None,
    days: int = SERVER_DAYS,
) -> Issued:
    """Issue a server certificate for exactly ``hosts`` and ``ips``; make the CA if missing."""
    if not hosts and not ips:
        raise ConfigError("give at least one --host or --ip")
    for host in hosts:
        if not host or host != host.strip() or "/" in host or ":" in host:
            raise ConfigError(f"--host: {host!r} is not a DNS name")
    now = now or datetime.now(timezone.utc)
    folder.mkdir(parents=True, exist_ok=True)
    ca_key_path, ca_path = folder / "ca.key", folder / "ca.pem"
    created = not ca_path.exists()
    if created:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _ca_certificate(ca_key, now)
        _write(ca_key_path, _key_pem(ca_key), private=True)
        _write(ca_path, ca_cert.public_bytes(serialization.Encoding.PEM))
    else:
        ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"{str(ca_key_path)!r} is not the CA's EC key")
        ca_key = loaded
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
    sans += [x509.IPAddress(ip) for ip in ips]
    common_name = hosts[0] if hosts else str(ips[0])
    not_after = min(now + timedelta(days=days), ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))  # a device clock slightly behind
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(server=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    # Key first, then certificate: a server reloading in between sees a mismatch and keeps
    # the old pair, and picks up the new one at the next change.
    _write(folder / "server.key", _key_pem(key), private=True)
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_path.read_bytes()
    _write(folder / "server.pem", chain)
    return Issued(folder, created, not_after)


def _ca_certificate(key: ec.EllipticCurvePrivateKey, now: datetime) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ankisyncd"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"ankisyncd private CA {now:%Y-%m-%d}"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(server=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _usage(server: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=server,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not server,
        crl_sign=not server,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, private: bool = False) -> None:
    """Replace ``path`` atomically; private files are readable by their owner only."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
