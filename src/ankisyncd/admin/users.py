"""Users page: list with usage, add, set password, remove (after a confirmation page).

Each action calls the ``UserStore`` method that ``ankisyncd user ...`` calls, through a store of
its own (as the CLI's), so the server sees the change as it sees the CLI's.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ankisyncd.admin.context import Admin
from ankisyncd.admin.devices import device_rows
from ankisyncd.admin.snapshots import snapshot_rows
from ankisyncd.errors import UserError
from ankisyncd.server.activity import LastSync
from ankisyncd.storage.usage import UserUsage, user_usage
from ankisyncd.threads import in_thread
from ankisyncd.users.store import UserStore


@dataclass(frozen=True)
class UserRow:
    name: str
    source: str  # "database", or "environment" for SYNC_USERn users (read-only here)
    created: int | None
    devices: int | None
    usage: UserUsage
    last_sync: LastSync | None


def store(admin: Admin) -> UserStore:
    return UserStore(admin.settings.auth_db_path)


def _rows(admin: Admin, only: str | None = None) -> list[UserRow]:
    """Every user (or only the one named), with usage and last sync; sorted by name."""
    root = admin.settings.data_root
    env = admin.server.accounts.env_accounts
    db = store(admin)
    try:
        records = [r for r in db.list() if r.name not in env and only in (None, r.name)]
    finally:
        db.close()
    found: list[tuple[str, str, int | None, int | None]]
    found = [(r.name, "database", r.created, r.devices) for r in records]
    found += [(n, "environment", None, None) for n in env if only in (None, n)]
    found.sort(key=lambda r: r[0].casefold())
    return [
        UserRow(*r, usage=user_usage(root, r[0]), last_sync=_last_sync(admin, r[0])) for r in found
    ]


def _last_sync(admin: Admin, name: str) -> LastSync | None:
    """This process's record of the user's last sync, else the device seen last (the auth
    database keeps it across restarts, written every few seconds)."""
    last = admin.server.activity.last_sync(name)
    if last is not None:
        return last
    seen = [d for d in device_rows(admin, name) if d.last_seen]
    if not seen:
        return None
    newest = max(seen, key=lambda d: d.last_seen or 0)
    return LastSync(float(newest.last_seen or 0), newest.client or "-")


async def users_page(admin: Admin, request: Request) -> Response:
    return await _users(admin, request, None, 200)


async def _users(admin: Admin, request: Request, error: str | None, status: int) -> Response:
    rows = await in_thread(_rows, admin)
    return admin.render(request, "users.html", status, users=rows, error=error)


def _form(request: Request) -> dict[str, str]:
    form: dict[str, str] = request.scope["admin_form"]
    return form


def _call(admin: Admin, method: str, *args: str) -> None:
    db = store(admin)
    try:
        getattr(db, method)(*args)
    finally:
        db.close()


async def add_user(admin: Admin, request: Request) -> Response:
    name = _form(request).get("name", "")
    error = await _with_password(admin, request, "add", name)
    if error is not None:
        return await _users(admin, request, error, 400)
    return admin.done(request, f"Added user {name!r}.", "/users")


async def _with_password(admin: Admin, request: Request, method: str, name: str) -> str | None:
    """Call ``UserStore.<method>(name, password)`` with the form's password (given twice);
    returns what went wrong, as a sentence for the page, or None."""
    form = _form(request)
    password = form.get("password", "")
    if password != form.get("password2", ""):
        return "The two passwords differ."
    try:
        await in_thread(_call, admin, method, name, password)
    except UserError as exc:
        return _sentence(exc)
    return None


def _user_name(admin: Admin, request: Request) -> str:
    name: str = request.path_params["name"]
    if name in admin.server.accounts.env_accounts:
        raise HTTPException(409, "this user is defined by SYNC_USERn variables")
    return name


async def user_page(admin: Admin, request: Request) -> Response:
    return await _user(admin, request, None, 200)


async def _user(admin: Admin, request: Request, error: str | None, status: int) -> Response:
    name = request.path_params["name"]
    rows = await in_thread(_rows, admin, name)
    if not rows:
        raise HTTPException(404, "no such user")
    shots = await in_thread(snapshot_rows, admin, name)
    devices = await in_thread(device_rows, admin, name)
    return admin.render(
        request, "user.html", status, user=rows[0], error=error, snapshots=shots, devices=devices
    )


async def set_password(admin: Admin, request: Request) -> Response:
    name = _user_name(admin, request)
    error = await _with_password(admin, request, "set_password", name)
    if error is not None:
        return await _user(admin, request, error, 400)
    message = f"Changed the password of {name!r}; each of their devices must log in again."
    return admin.done(request, message, f"/users/{quote(name, safe='')}")


async def confirm_remove(admin: Admin, request: Request) -> Response:
    name = _user_name(admin, request)
    return admin.render(request, "confirm_remove.html", name=name)


async def remove_user(admin: Admin, request: Request) -> Response:
    name = _user_name(admin, request)
    try:
        await in_thread(_call, admin, "remove", name)
    except UserError as exc:
        raise HTTPException(404, _sentence(exc)) from None
    message = f"Removed user {name!r}; their devices are logged out, their data folder is kept."
    return admin.done(request, message, "/users")


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + "."
