"""Command line: ``serve`` (default), ``user``, ``snapshot``, ``backup``, ``check``, ``health``,
``config show``, ``tls init``, ``admin set-password``.

Commands hold no logic: each parses its arguments, calls one function and prints the result.
Exit codes: 0 ok, 1 failure, 2 usage or configuration error. One module per command group;
``_common`` holds what they share (settings from flags, environment and file; errors).
"""

from __future__ import annotations

from typing import Any

import click

from ankisyncd import __version__
from ankisyncd.cli._common import setting_options
from ankisyncd.cli.admin import admin
from ankisyncd.cli.maintenance import backup, check
from ankisyncd.cli.serve import config_group, health, serve
from ankisyncd.cli.snapshot import snapshot
from ankisyncd.cli.tls import tls
from ankisyncd.cli.user import user


@click.group(invoke_without_command=True)
@click.option("--config", "config_path", default=None, help="TOML config file to read")
@setting_options
@click.version_option(__version__, prog_name="ankisyncd")
@click.pass_context
def main(ctx: click.Context, /, config_path: str | None, **flags: Any) -> None:
    """A self-hosted sync server for Anki. Without a command, runs ``serve``."""
    ctx.meta["config"] = config_path
    ctx.meta["flags"] = {k: v for k, v in flags.items() if v is not None}
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


for _command in (serve, health, config_group, user, snapshot, tls, admin, backup, check):
    main.add_command(_command)

__all__ = ["main"]
