"""``user``: manage the accounts in the auth database and their logged-in devices."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click

from ankisyncd.cli._common import fail, read_password, settings, writing_settings
from ankisyncd.errors import UserError
from ankisyncd.users.store import UserStore


@click.group("user")
def user() -> None:
    """Manage the users in the auth database (works while the server runs)."""


def _store(ctx: click.Context) -> UserStore:
    return UserStore(writing_settings(ctx).auth_db_path)


@user.command("add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.pass_context
def user_add(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Add a user."""
    store = _store(ctx)
    try:
        reserved = [u.name for u in settings(ctx, {}).env_users]
        store.add(name, read_password(password_stdin), reserved)
    except UserError as exc:
        fail(str(exc))
    click.echo(f"added user {name!r}")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.pass_context
def user_passwd(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Change a user's password; their devices must log in again."""
    store = _store(ctx)
    try:
        store.set_password(name, read_password(password_stdin))
    except UserError as exc:
        fail(str(exc))
    click.echo(f"changed the password of {name!r}; its devices must log in again")


@user.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="confirm the removal")
@click.pass_context
def user_remove(ctx: click.Context, name: str, yes: bool) -> None:
    """Remove a user and log out their devices; their data folder is kept."""
    if not yes:
        fail("removing a user needs --yes", 2)
    try:
        _store(ctx).remove(name)
    except UserError as exc:
        fail(str(exc))
    click.echo(f"removed user {name!r} (their data folder is kept)")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON for scripts")
@click.pass_context
def user_list(ctx: click.Context, as_json: bool) -> None:
    """List users."""
    records = _store(ctx).list()
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in records]))
        return
    for r in records:
        created = datetime.fromtimestamp(r.created, timezone.utc).strftime("%Y-%m-%d")
        click.echo(f"{r.name}\tcreated {created}\t{r.devices} logged-in devices")


@user.command("devices")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="print JSON for scripts")
@click.pass_context
def user_devices(ctx: click.Context, name: str, as_json: bool) -> None:
    """List the devices logged in as a user (one host key each), oldest first."""
    try:
        records = _store(ctx).devices(name)
    except UserError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in records]))
        return
    for r in records:
        seen = _when(r.last_seen) if r.last_seen else "never used"
        click.echo(
            f"{r.id}\tcreated {_when(r.created)}\tlast seen {seen}"
            f"\tclient {r.client or '-'}\taddress {r.address or '-'}"
        )


@user.command("revoke")
@click.argument("name")
@click.argument("device_id", type=int, required=False)
@click.option("--all", "revoke_all", is_flag=True, help="revoke every device of the user")
@click.pass_context
def user_revoke(ctx: click.Context, name: str, device_id: int | None, revoke_all: bool) -> None:
    """Log a device out (its next sync asks for the password); see ``user devices``."""
    if (device_id is None) == (not revoke_all):
        fail("give either a DEVICE_ID or --all", 2)
    try:
        count = _store(ctx).revoke(name, None if revoke_all else device_id)
    except UserError as exc:
        fail(str(exc))
    click.echo(f"revoked {count} device(s) of {name!r}")


def _when(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
