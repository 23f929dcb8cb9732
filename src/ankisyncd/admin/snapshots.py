"""Snapshots of a user's collection: list, take one, restore one (after a confirmation page).

The same calls as ``ankisyncd snapshot list|create|restore``: the server's ``SnapshotStore``,
``storage.snapshots.counts`` and ``storage.restore.restore``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ankisyncd.admin.context import Admin
from ankisyncd.errors import UserError
from ankisyncd.storage.restore import restore
from ankisyncd.storage.snapshots import Snapshot, counts
from ankisyncd.threads import in_thread


@dataclass(frozen=True)
class SnapshotRow:
    snapshot: Snapshot
    notes: int
    cards: int
    reviews: int


def snapshot_rows(admin: Admin, name: str) -> list[SnapshotRow]:
    """The user's snapshots, newest first, with what each holds (runs in a worker thread)."""
    return [SnapshotRow(s, *counts(s.path)) for s in admin.server.snapshots.of_user(name)]


def _user_path(name: str) -> str:
    return f"/users/{quote(name, safe='')}"


async def create_snapshot(admin: Admin, request: Request) -> Response:
    name = request.path_params["name"]
    try:
        made = await in_thread(admin.server.snapshots.create, name, "manual")
    except UserError as exc:
        raise HTTPException(404, str(exc)) from None
    if made is None:
        return admin.done(request, f"{name!r} has no collection yet: nothing to keep.", "/users")
    return admin.done(request, f"Took snapshot {made.id} of {name!r}.", _user_path(name))


async def _find(admin: Admin, request: Request) -> SnapshotRow:
    name, snapshot_id = request.path_params["name"], request.path_params["snapshot"]
    rows = await in_thread(snapshot_rows, admin, name)
    for row in rows:
        if row.snapshot.id == snapshot_id:
            return row
    raise HTTPException(404, "no such snapshot")


async def confirm_restore(admin: Admin, request: Request) -> Response:
    row = await _find(admin, request)
    return admin.render(request, "confirm_restore.html", row=row, name=row.snapshot.user)


async def restore_snapshot(admin: Admin, request: Request) -> Response:
    row = await _find(admin, request)
    name = row.snapshot.user
    try:
        kept = await in_thread(restore, admin.server.snapshots, name, row.snapshot.id)
    except UserError as exc:
        raise HTTPException(404, str(exc)) from None
    message = f"Restored {row.snapshot.id} for {name!r}"
    if kept is not None:
        message += f" (the replaced collection is kept as snapshot {kept.id})"
    message += ". On each device, sync and choose Download."
    return admin.done(request, message, _user_path(name))
