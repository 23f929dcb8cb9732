"""``snapshot``: list, take and restore snapshots of collections."""

from __future__ import annotations

import json

import click

from ankisyncd.cli._common import fail, settings, writing_settings
from ankisyncd.errors import UserError
from ankisyncd.server import snapshot_store
from ankisyncd.storage.restore import restore
from ankisyncd.storage.snapshots import Snapshot, counts


@click.group("snapshot")
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
    store = snapshot_store(settings(ctx, {}))
    try:
        users = [name] if name else store.users()
        rows = [_snapshot_row(s) for user in users for s in store.of_user(user)]
    except UserError as exc:
        fail(str(exc))
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
        fail("give a user name or --all", 2)
    store = snapshot_store(writing_settings(ctx))
    try:
        made = store.create_all("manual") if every else [store.create(str(name), "manual")]
    except UserError as exc:
        fail(str(exc))
    if made == [None]:
        fail(f"user {name!r} has no collection")
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
    store = snapshot_store(writing_settings(ctx))
    try:
        kept = restore(store, name, snapshot_id)
    except UserError as exc:
        fail(str(exc))
    if kept is not None:
        click.echo(f"kept the replaced collection as snapshot {kept.id}")
    click.echo(f"restored {snapshot_id} for {name!r}; on each device, sync and choose download")
