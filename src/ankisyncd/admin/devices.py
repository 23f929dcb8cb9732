"""A user's devices (one host key each): list, and revoke one or all.

The same ``UserStore.devices`` and ``UserStore.revoke`` that ``ankisyncd user devices|revoke``
call; a revoked device's next request gets 403 and the client asks to log in again.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ankisyncd.admin.context import Admin
from ankisyncd.errors import UserError
from ankisyncd.threads import in_thread
from ankisyncd.users.store import DeviceRecord, UserStore


def device_rows(admin: Admin, name: str) -> list[DeviceRecord]:
    """The user's devices, oldest first; none for ``SYNC_USERn`` users (their key is fixed)."""
    store = UserStore(admin.settings.auth_db_path)
    try:
        return store.devices(name)
    except UserError:
        return []
    finally:
        store.close()


def _revoke(admin: Admin, name: str, device_id: int | None) -> int:
    store = UserStore(admin.settings.auth_db_path)
    try:
        return store.revoke(name, device_id)
    finally:
        store.close()


async def revoke_device(admin: Admin, request: Request) -> Response:
    name, raw_id = request.path_params["name"], request.path_params["device"]
    device_id = None if raw_id == "all" else _number(raw_id)
    try:
        count = await in_thread(_revoke, admin, name, device_id)
    except UserError as exc:
        raise HTTPException(404, str(exc)) from None
    which = f"all {count} devices" if device_id is None else f"device {device_id}"
    message = f"Logged out {which} of {name!r}: the next sync asks for the password."
    return admin.done(request, message, f"/users/{quote(name, safe='')}")


def _number(text: str) -> int:
    if not text.isdigit():
        raise HTTPException(404, "no such device")
    return int(text)
