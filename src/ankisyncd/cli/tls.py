"""``tls``: a private CA and server certificates for native HTTPS."""

from __future__ import annotations

from pathlib import Path

import click

from ankisyncd.cli._common import fail, settings
from ankisyncd.errors import ConfigError


@click.group("tls")
def tls() -> None:
    """Certificates for native HTTPS."""


@tls.command("init")
@click.option("--host", "hosts", multiple=True, help="DNS name the devices use (repeatable)")
@click.option("--ip", "ips", multiple=True, help="IP address the devices use (repeatable)")
@click.option(
    "--dir",
    "folder",
    default=None,
    help="where the CA and certificate live  [default: <data_root>/.ankisyncd/tls]",
)
@click.pass_context
def tls_init(
    ctx: click.Context, hosts: tuple[str, ...], ips: tuple[str, ...], folder: str | None
) -> None:
    """Make a private CA (once; then reused) and issue a server certificate for exactly these
    names; print the sync address and how each client trusts the CA."""
    from ankisyncd.tls import advice, issue  # cryptography: loaded only for this command

    current = settings(ctx, {})
    target = Path(folder) if folder else current.data_root / ".ankisyncd" / "tls"
    try:
        addresses = issue.parse_ips(list(ips))
        issued = issue.init(target, list(hosts), addresses)
    except ConfigError as exc:
        fail(str(exc), 2)
    click.echo(advice.instructions(issued, list(hosts), addresses, current.port))
