"""Read a PEM certificate chain and say what it covers, in the terms the clients check."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509

from ankisyncd.errors import ConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class CertInfo:
    """What matters about a server certificate (the first one of its chain file)."""

    dns_names: tuple[str, ...]
    ip_addresses: tuple[IPAddress, ...]
    not_before: datetime
    not_after: datetime
    self_signed: bool
    serial: int

    @property
    def names(self) -> list[str]:
        return [*self.dns_names, *map(str, self.ip_addresses)]

    def covers(self, host: str) -> bool:
        """Whether a client using ``host`` in its URL accepts the certificate (SANs only:
        the clients ignore the subject's common name)."""
        try:
            return ipaddress.ip_address(host.strip("[]")) in self.ip_addresses
        except ValueError:
            pass
        host = host.rstrip(".").lower()
        for name in self.dns_names:
            name = name.lower()
            if name == host:
                return True
            # A wildcard stands for exactly one leftmost label.
            if name.startswith("*.") and host.partition(".")[2] == name[2:] and "." in host:
                return True
        return False


def read_chain(path: Path) -> list[x509.Certificate]:
    """The certificates of a PEM file, server certificate first."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError(f"{str(path)!r} holds no PEM certificate") from None
    return chain


def describe(cert: x509.Certificate) -> CertInfo:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(
            ip
            for ip in san.get_values_for_type(x509.IPAddress)
            if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)
        )
    except x509.ExtensionNotFound:
        dns, ips = (), ()
    return CertInfo(
        dns_names=dns,
        ip_addresses=ips,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        self_signed=cert.issuer == cert.subject and _is_leaf(cert),
        serial=cert.serial_number,
    )


def _is_leaf(cert: x509.Certificate) -> bool:
    try:
        return not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return True


def check_dates(info: CertInfo, path: Path, now: datetime | None = None) -> None:
    """Refuse a certificate no client would accept today."""
    now = now or datetime.now(timezone.utc)
    if info.not_after < now:
        raise ConfigError(
            f"certificate {str(path)!r} expired on {info.not_after:%Y-%m-%d %H:%M} UTC; "
            "renew it (ankisyncd tls init issues a new one from the same CA)"
        )
    if info.not_before > now:
        raise ConfigError(
            f"certificate {str(path)!r} is not valid before {info.not_before:%Y-%m-%d %H:%M} UTC"
        )


def warnings(info: CertInfo, host: str) -> list[str]:
    """Problems that do not stop the server but will stop some clients."""
    out = []
    if not info.names:
        out.append("the certificate has no subjectAltName: Anki refuses it")
    if info.self_signed:
        out.append(
            "the certificate is self-signed: Anki refuses it even when trusted; "
            "use a CA (ankisyncd tls init makes one)"
        )
    wildcard = host in ("", "0.0.0.0", "::")
    if not wildcard and info.names and not info.covers(host):
        out.append(
            f"the certificate does not cover {host!r} (it covers {', '.join(info.names)}): "
            f"clients using https://{host}/ will refuse it"
        )
    return out
