"""``backup`` and ``check``: copying and checking the stored data."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ankisyncd.cli._common import fail, writing_settings
from ankisyncd.errors import UserError
from ankisyncd.server.check import check as check_storage
from ankisyncd.storage.backup import backup as backup_data


@click.command("backup")
@click.argument("dest")
@click.option("--replace", is_flag=True, help="replace an earlier backup at DEST")
@click.pass_context
def backup(ctx: click.Context, dest: str, replace: bool) -> None:
    """Write a consistent copy of the data root and the auth database to the new folder DEST,
    which a server can be started on as it is (works while the server runs)."""
    current = writing_settings(ctx)
    try:
        report = backup_data(
            current.data_root, current.auth_db_path, Path(dest), replace, current.snapshot_root
        )
    except UserError as exc:
        fail(str(exc))
    click.echo(
        f"backed up {report.users} users ({report.collections} collections,"
        f" {report.media_files} media files, {report.bytes} bytes) to {dest}"
    )


@click.command("check")
@click.argument("name", required=False)
@click.option("--repair", is_flag=True, help="fix what is safe to fix (never deletes media)")
@click.pass_context
def check(ctx: click.Context, name: str | None, repair: bool) -> None:
    """Check every collection (or NAME's), media.db against the media folder and the auth
    database; one line per problem, exit status 1 if there is any."""
    current = writing_settings(ctx)
    try:
        problems = check_storage(
            current.data_root, current.auth_db_path, name, repair, current.snapshot_root
        )
    except UserError as exc:
        fail(str(exc))
    for line in problems:
        click.echo(line)
    if problems:
        sys.exit(1)
    click.echo("ok: no problems found")
