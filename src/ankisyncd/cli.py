"""Command line: ``serve`` (default), ``user``, ``snapshot``, ``backup``, ``check``, ``health``,
``config show``.

Commands hold no logic: each parses its arguments, calls one function and prints the result.
Exit codes: 0 ok, 1 failure, 2 usage or configuration error.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from ankisyncd import __version__
from ankisyncd.config import (
    Settings,
    config_file_path,
    describe,
    load,
    read_config_file,
    read_file_variables,
    set_file_value,
    setting_fields,
)
from ankisyncd.errors import ConfigError, UserError
from ankisyncd.observe.logs import configure as configure_logging
from ankisyncd.server import snapshot_store
from ankisyncd.server.check import check as check_storage
from ankisyncd.storage.backup import backup as backup_data
from ankisyncd.storage.restore import restore
from ankisyncd.storage.snapshots import Snapshot, counts
from ankisyncd.users.hashing import check_phc, hash_password
from ankisyncd.users.store import UserStore

F = TypeVar("F", bound=Callable[..., Any])


def _setting_options(func: F) -> F:
    """Add one ``--<setting>`` option per field of Settings."""
    for f in reversed(setting_fields()):
        func = click.option(
            f"--{f.name.replace('_', '-')}", f.name, default=None, help=f.metadata["help"]
        )(func)
    return func


def _settings(ctx: click.Context, flags: dict[str, Any]) -> Settings:
    merged = {**ctx.find_root().meta.get("flags", {})}
    merged.update({k: v for k, v in flags.items() if v is not None})
    config_path = ctx.find_root().meta.get("config")
    try:
        environ = read_file_variables(os.environ)
        file_values, file_path = read_config_file(config_path, environ)
        return load(merged, environ, file_values, file_path)
    except ConfigError as exc:
        _fail(str(exc), 2)


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(invoke_without_command=True)
@click.option("--config", "config_path", default=None, help="TOML config file to read")
@_setting_options
@click.version_option(__version__, prog_name="ankisyncd")
@click.pass_context
def main(ctx: click.Context, /, config_path: str | None, **flags: Any) -> None:
    """A self-hosted sync server for Anki. Without a command, runs ``serve``."""
    ctx.meta["config"] = config_path
    ctx.meta["flags"] = {k: v for k, v in flags.items() if v is not None}
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


@main.command()
@_setting_options
@click.pass_context
def serve(ctx: click.Context, /, **flags: Any) -> None:
    """Serve the sync protocol over HTTP."""
    settings = _settings(ctx, flags)
    configure_logging(settings.log_level, settings.log_format)
    log = logging.getLogger("ankisyncd")
    for name, value, source in describe(settings):
        log.info("setting %s = %s (%s)", name, value, source)
    from ankisyncd.http import serve as serve_http

    try:
        serve_http(settings, _admin_factory(settings))
    except ConfigError as exc:
        _fail(str(exc), 2)


def _admin_factory(settings: Settings) -> Callable[[Any], Any] | None:
    """The admin pages' builder when an admin password hash is set (else they stay unloaded)."""
    if settings.admin_password_hash is None:
        return None
    try:
        check_phc(str(settings.admin_password_hash))
    except ValueError as exc:
        source = settings.sources["admin_password_hash"]
        raise ConfigError(f"{source}: {exc}") from None
    from ankisyncd.admin import build_admin

    return functools.partial(build_admin, settings)


@main.group()
def user() -> None:
    """Manage the users in the auth database (works while the server runs)."""


def _store(ctx: click.Context) -> UserStore:
    return UserStore(_settings(ctx, {}).auth_db_path)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@user.command("add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.pass_context
def user_add(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Add a user."""
    store = _store(ctx)
    try:
        reserved = [u.name for u in _settings(ctx, {}).env_users]
        store.add(name, _read_password(password_stdin), reserved)
    except UserError as exc:
        _fail(str(exc))
    click.echo(f"added user {name!r}")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.pass_context
def user_passwd(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Change a user's password; their devices must log in again."""
    store = _store(ctx)
    try:
        store.set_password(name, _read_password(password_stdin))
    except UserError as exc:
        _fail(str(exc))
    click.echo(f"changed the password of {name!r}; its devices must log in again")


@user.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="confirm the removal")
@click.pass_context
def user_remove(ctx: click.Context, name: str, yes: bool) -> None:
    """Remove a user and log out their devices; their data folder is kept."""
    if not yes:
        _fail("removing a user needs --yes", 2)
    try:
        _store(ctx).remove(name)
    except UserError as exc:
        _fail(str(exc))
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
        _fail(str(exc))
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
        _fail("give either a DEVICE_ID or --all", 2)
    try:
        count = _store(ctx).revoke(name, None if revoke_all else device_id)
    except UserError as exc:
        _fail(str(exc))
    click.echo(f"revoked {count} device(s) of {name!r}")


def _when(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@main.command()
@click.option("--timeout", default=5.0, show_default=True, help="seconds to wait")
@click.pass_context
def health(ctx: click.Context, timeout: float) -> None:
    """Exit 0 if the configured server answers /health, else 1 (for container health checks)."""
    settings = _settings(ctx, {})
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    scheme, context = "http", None
    if settings.tls_cert:
        # Liveness only: the certificate is checked at start-up, and its names need not
        # include the loopback address asked here.
        scheme, context = "https", ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    url = f"{scheme}://{host}:{settings.port}/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:
            ok = resp.status == 200
    except (urllib.error.URLError, OSError) as exc:
        _fail(f"{url}: {exc}")
    if not ok:
        _fail(f"{url}: unexpected status")
    click.echo(f"ok: {url}")


@main.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """Print every setting with its value and where it came from (secrets masked)."""
    for name, value, source in describe(_settings(ctx, {})):
        click.echo(f"{name} = {value}\t# {source}")


@main.group()
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

    settings = _settings(ctx, {})
    target = Path(folder) if folder else settings.data_root / ".ankisyncd" / "tls"
    try:
        addresses = issue.parse_ips(list(ips))
        issued = issue.init(target, list(hosts), addresses)
    except ConfigError as exc:
        _fail(str(exc), 2)
    click.echo(advice.instructions(issued, list(hosts), addresses, settings.port))


@main.group()
def snapshot() -> None:
    """List, take and restore snapshots of collections (works while the server runs)."""


def _snapshot_row(s: Snapshot) -> dict[str, object]:
    notes, cards, reviews = counts(s.path)
    return {**s.to_json(), "notes": notes, "cards": cards, "reviews": reviews}


@snapshot.command("list")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="print JSON for scripts")
@click.pass_context
def snapshot_list(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """List the snapshots of one user, or of every user; newest first."""
    store = snapshot_store(_settings(ctx, {}))
    try:
        users = [name] if name else store.users()
        rows = [_snapshot_row(s) for user in users for s in store.of_user(user)]
    except UserError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        click.echo(
            f"{r['user']}\t{r['id']}\t{r['created']}\t{r['reason']}\t{r['bytes']} bytes"
            f"\t{r['notes']} notes, {r['cards']} cards, {r['reviews']} reviews"
        )


@snapshot.command("create")
@click.argument("name", required=False)
@click.option("--all", "every", is_flag=True, help="snapshot every user's collection")
@click.pass_context
def snapshot_create(ctx: click.Context, name: str | None, every: bool) -> None:
    """Snapshot the collection of user NAME, or of every user with --all."""
    if bool(name) == every:
        _fail("give a user name or --all", 2)
    store = snapshot_store(_settings(ctx, {}))
    try:
        made = store.create_all("manual") if every else [store.create(str(name), "manual")]
    except UserError as exc:
        _fail(str(exc))
    if made == [None]:
        _fail(f"user {name!r} has no collection")
    for s in made:
        if s is not None:
            click.echo(f"{s.user}\t{s.id}\t{s.size} bytes")


@snapshot.command("restore")
@click.argument("name")
@click.argument("snapshot_id")
@click.pass_context
def snapshot_restore(ctx: click.Context, name: str, snapshot_id: str) -> None:
    """Put snapshot SNAPSHOT_ID in place of NAME's collection; the current one is kept as a
    snapshot first. Every device's next sync then asks for a one-way sync: choose download."""
    store = snapshot_store(_settings(ctx, {}))
    try:
        kept = restore(store, name, snapshot_id)
    except UserError as exc:
        _fail(str(exc))
    if kept is not None:
        click.echo(f"kept the replaced collection as snapshot {kept.id}")
    click.echo(f"restored {snapshot_id} for {name!r}; on each device, sync and choose download")


@main.group()
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
    password = _read_password(password_stdin)
    if not password:
        _fail("the password is empty")
    phc = hash_password(password)
    if print_only:
        click.echo(phc)
        return
    path, _ = config_file_path(ctx.find_root().meta.get("config"), os.environ)
    try:
        set_file_value(path, "admin_password_hash", phc)
    except (ConfigError, OSError) as exc:
        _fail(str(exc))
    click.echo(f"wrote admin_password_hash to {path}; restart the server to use it")
    source = _settings(ctx, {}).sources["admin_password_hash"]
    if not source.startswith(str(path)):
        click.echo(f"warning: {source} sets admin_password_hash too, and wins", err=True)


@main.command()
@click.argument("dest")
@click.option("--replace", is_flag=True, help="replace an earlier backup at DEST")
@click.pass_context
def backup(ctx: click.Context, dest: str, replace: bool) -> None:
    """Write a consistent copy of the data root and the auth database to the new folder DEST,
    which a server can be started on as it is (works while the server runs)."""
    settings = _settings(ctx, {})
    try:
        report = backup_data(settings.data_root, settings.auth_db_path, Path(dest), replace)
    except UserError as exc:
        _fail(str(exc))
    click.echo(
        f"backed up {report.users} users ({report.collections} collections,"
        f" {report.media_files} media files, {report.bytes} bytes) to {dest}"
    )


@main.command()
@click.argument("name", required=False)
@click.option("--repair", is_flag=True, help="fix what is safe to fix (never deletes media)")
@click.pass_context
def check(ctx: click.Context, name: str | None, repair: bool) -> None:
    """Check every collection (or NAME's), media.db against the media folder and the auth
    database; one line per problem, exit status 1 if there is any."""
    settings = _settings(ctx, {})
    try:
        problems = check_storage(settings.data_root, settings.auth_db_path, name, repair)
    except UserError as exc:
        _fail(str(exc))
    for line in problems:
        click.echo(line)
    if problems:
        sys.exit(1)
    click.echo("ok: no problems found")
