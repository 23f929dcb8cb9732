"""``serve`` and what looks at a served configuration: ``health`` and ``config show``."""

from __future__ import annotations

import functools
import logging
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import click

from ankisyncd.cli._common import fail, setting_options, settings
from ankisyncd.config import Settings, describe
from ankisyncd.errors import ConfigError
from ankisyncd.observe.logs import configure as configure_logging
from ankisyncd.users.hashing import check_phc


@click.command("serve")
@setting_options
@click.pass_context
def serve(ctx: click.Context, /, **flags: Any) -> None:
    """Serve the sync protocol over HTTP."""
    current = settings(ctx, flags)
    configure_logging(current.log_level, current.log_format)
    log = logging.getLogger("ankisyncd")
    for name, value, source in describe(current):
        log.info("setting %s = %s (%s)", name, value, source)
    from ankisyncd.http import serve as serve_http

    try:
        serve_http(current, _admin_factory(current))
    except ConfigError as exc:
        fail(str(exc), 2)


def _admin_factory(current: Settings) -> Callable[[Any], Any] | None:
    """The admin pages' builder when an admin password hash is set (else they stay unloaded)."""
    if current.admin_password_hash is None:
        return None
    try:
        check_phc(str(current.admin_password_hash))
    except ValueError as exc:
        source = current.sources["admin_password_hash"]
        raise ConfigError(f"{source}: {exc}") from None
    from ankisyncd.admin import build_admin

    return functools.partial(build_admin, current)


@click.command("health")
@click.option("--timeout", default=5.0, show_default=True, help="seconds to wait")
@click.pass_context
def health(ctx: click.Context, timeout: float) -> None:
    """Exit 0 if the configured server answers /health, else 1 (for container health checks)."""
    current = settings(ctx, {})
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(current.host, current.host)
    if ":" in host:
        host = f"[{host}]"
    scheme, context = "http", None
    if current.tls_cert:
        # Liveness only: the certificate is checked at start-up, and its names need not
        # include the loopback address asked here.
        scheme, context = "https", ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    url = f"{scheme}://{host}:{current.port}/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:
            ok = resp.status == 200
    except (urllib.error.URLError, OSError) as exc:
        fail(f"{url}: {exc}")
    if not ok:
        fail(f"{url}: unexpected status")
    click.echo(f"ok: {url}")


@click.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """Print every setting with its value and where it came from (secrets masked)."""
    for name, value, source in describe(settings(ctx, {})):
        click.echo(f"{name} = {value}\t# {source}")
