"""Native TLS: the server's SSLContext, with the certificate reloaded without a restart.

Renewal tools (certbot, acme.sh, ``ankisyncd tls init``) replace the files in place. Each TLS
handshake first looks at the files' stat data (cheap next to the handshake itself) and, when
they changed, loads them into a new context; SIGHUP does the same at once. The handshake is
then moved onto the newest context from the ``sni_callback``, which OpenSSL calls for every
ClientHello, with or without a server name. A pair that fails to load (a half-written renewal,
a key that does not match) is logged and the previous certificate stays in use.
"""

from __future__ import annotations

import logging
import signal
import ssl
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ankisyncd.config import Settings
from ankisyncd.errors import ConfigError

if TYPE_CHECKING:
    from ankisyncd.tls.certs import CertInfo

log = logging.getLogger("ankisyncd.tls")

Stamp = tuple[tuple[int, int, int], ...]


def _stamp(*paths: Path) -> Stamp:
    out = []
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            out.append((0, 0, 0))
        else:
            out.append((st.st_mtime_ns, st.st_ino, st.st_size))
    return tuple(out)


def _no_password() -> str:
    raise ConfigError("the key is encrypted; give an unencrypted key file")


def build_context(cert: Path, key: Path) -> tuple[ssl.SSLContext, CertInfo]:
    """Load one certificate/key pair; a clear ConfigError says what is wrong with it."""
    # cryptography (~14 MiB resident) is imported only by servers that serve HTTPS.
    from ankisyncd.tls.certs import check_dates, describe, read_chain

    for path in (cert, key):
        if not path.is_file():
            raise ConfigError(f"{str(path)!r} does not exist or is not a file")
    info = describe(read_chain(cert)[0])
    check_dates(info, cert)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # iOS needs 1.2 to be offered
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        ctx.load_cert_chain(cert, key, password=_no_password)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
            raise ConfigError(
                f"key {str(key)!r} does not match certificate {str(cert)!r}"
            ) from None
        raise ConfigError(f"cannot load {str(cert)!r} with key {str(key)!r}: {exc}") from None
    return ctx, info


class ReloadingContext:
    """The listening SSLContext; every handshake is served with the newest good pair."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert, self.key = cert, key
        self._stamp = _stamp(cert, key)
        self.context, self.info = build_context(cert, key)
        self._current = self.context
        self.context.sni_callback = self._on_client_hello

    def _on_client_hello(
        self, conn: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, ctx: ssl.SSLContext
    ) -> None:
        if _stamp(self.cert, self.key) != self._stamp:
            self.reload()
        if conn.context is not self._current:
            conn.context = self._current

    def reload(self) -> bool:
        """Load the files again; keep the previous pair if they do not load."""
        self._stamp = _stamp(self.cert, self.key)
        try:
            ctx, info = build_context(self.cert, self.key)
        except ConfigError as exc:
            log.warning("tls: keeping the previous certificate: %s", exc)
            return False
        self._current, self.info = ctx, info
        log.info(
            "tls: loaded certificate for %s, valid until %s",
            ", ".join(info.names),
            f"{info.not_after:%Y-%m-%d}",
        )
        return True

    def on_sighup(self) -> Callable[[int, FrameType | None], None]:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.reload()

        return handler


def install_sighup(ctx: ReloadingContext) -> None:
    """SIGHUP reloads the certificate (instead of ending the process)."""
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, ctx.on_sighup())


def tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's keyword arguments for serving HTTPS, or none for plain HTTP."""
    if settings.tls_cert is None or settings.tls_key is None:
        return {}
    for name, path in (("tls_cert", settings.tls_cert), ("tls_key", settings.tls_key)):
        if not path.is_file():
            raise ConfigError(f"{settings.sources[name]}: {str(path)!r} does not exist")
    try:
        reloading = ReloadingContext(settings.tls_cert, settings.tls_key)
    except ConfigError as exc:
        raise ConfigError(f"tls: {exc}") from None
    info = reloading.info
    log.info(
        "tls: serving https for %s, certificate valid until %s",
        ", ".join(info.names) or "(no names)",
        f"{info.not_after:%Y-%m-%d}",
    )
    from ankisyncd.tls.certs import warnings

    for warning in warnings(info, settings.host):
        log.warning("tls: %s", warning)
    install_sighup(reloading)
    return {"ssl_context_factory": lambda config, default: reloading.context}
