"""Settings of native HTTPS (``tls_cert`` needs ``tls_key``; ``load`` checks the pair)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ankisyncd.config.values import meta, parse_path


@dataclass(frozen=True, kw_only=True)
class TlsSettings:
    tls_cert: Path | None = field(
        default=None,
        metadata=meta(parse_path, "PEM certificate chain: serve HTTPS (reloaded when it changes)"),
    )
    tls_key: Path | None = field(
        default=None, metadata=meta(parse_path, "PEM private key of tls_cert")
    )
