"""``admin``: the admin web page's password."""

from __future__ import annotations

import os

import click

from ankisyncd.cli._common import fail, read_password, settings
from ankisyncd.config import config_file_path, set_file_value
from ankisyncd.errors import ConfigError
from ankisyncd.users.hashing import hash_password


@click.group("admin")
def admin() -> None:
    """The admin web page (off until an admin password is set)."""


@admin.command("set-password")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.option(
    "--print", "print_only", is_flag=True, help="only print the hash (for an environment variable)"
)
@click.pass_context
def admin_set_password(ctx: click.Context, password_stdin: bool, print_only: bool) -> None:
    """Hash a new admin password (argon2id) and write it to the config file as
    admin_password_hash; the admin page is on from the server's next start."""
    password = read_password(password_stdin)
    if not password:
        fail("the password is empty")
    phc = hash_password(password)
    if print_only:
        click.echo(phc)
        return
    path, _ = config_file_path(ctx.find_root().meta.get("config"), os.environ)
    try:
        set_file_value(path, "admin_password_hash", phc)
    except (ConfigError, OSError) as exc:
        fail(str(exc))
    click.echo(f"wrote admin_password_hash to {path}; restart the server to use it")
    source = settings(ctx, {}).sources["admin_password_hash"]
    if not source.startswith(str(path)):
        click.echo(f"warning: {source} sets admin_password_hash too, and wins", err=True)
