"""SyncServer: authentication, then the collection side and the media side.

Every SQLite or hashing call runs in a worker thread (``ankisyncd.threads``); password
checks have a small pool of their own, so a flood of logins never delays a sync. The
collection side (``collection.py``) and the media side (``media.py``) each keep their own
per-user state and locks, released when idle (``_users.py``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TypeVar

import anyio

from ankisyncd.config import Settings
from ankisyncd.errors import AuthFailed, LoginThrottled, UserError
from ankisyncd.observe.events import Fanout
from ankisyncd.observe.metrics import Metrics
from ankisyncd.protocol.envelope import UserName
from ankisyncd.protocol.messages import HostKeyRequest, HostKeyResponse, MetaRequest, MetaResponse
from ankisyncd.server.activity import Activity
from ankisyncd.server.collection import CollectionServer
from ankisyncd.server.media import MediaServer
from ankisyncd.storage.paths import user_folder
from ankisyncd.storage.snapshots import Retention, SnapshotStore
from ankisyncd.storage.space import SpaceWatch
from ankisyncd.sync.meta import meta as build_meta
from ankisyncd.threads import in_thread
from ankisyncd.users.accounts import Accounts
from ankisyncd.users.throttle import LoginThrottle

__all__ = ["SyncServer", "snapshot_store"]
log = logging.getLogger(__name__)
T = TypeVar("T")
# How often idle users are released and devices' last use written.
HOUSEKEEPING_SECONDS = 10.0


def snapshot_store(settings: Settings) -> SnapshotStore:
    """The snapshots of ``settings``' data root, with its retention rules."""
    retention = Retention(
        settings.snapshot_keep_last,
        settings.snapshot_keep_daily,
        settings.snapshot_max_megs * 1024 * 1024,
    )
    return SnapshotStore(settings.data_root, settings.snapshot_root, retention)


class SyncServer:
    """Logs users in and hands their requests to ``collection`` or ``media``."""

    def __init__(self, settings: Settings) -> None:
        self.data_root = settings.data_root
        self.max_payload_bytes = settings.max_payload_bytes
        self.max_decompressed_bytes = settings.max_decompressed_bytes
        self.accounts = Accounts.build(
            settings.auth_db_path,
            [(u.name, str(u.secret), u.hashed, u.source) for u in settings.env_users],
        )
        self.snapshots = snapshot_store(settings)
        self.snapshot_interval: float = settings.snapshot_interval
        self.metrics = Metrics(self)
        self.metrics_token = settings.metrics_token
        self.activity = Activity()  # what the admin page shows
        self.events = Fanout(self.metrics, self.activity)
        # Each open user holds up to six descriptors (two databases with their WAL and -shm).
        max_open = settings.max_open_users
        self.collection = CollectionServer(
            self.data_root, self.max_decompressed_bytes, self.snapshots, self.events, max_open
        )
        self.space = SpaceWatch(self.data_root, settings.low_space_megs << 20)
        self.media = MediaServer(self.data_root, self.max_decompressed_bytes, self.events, max_open)
        self.user_idle_seconds = settings.user_idle_seconds
        self.sync_idle_seconds = settings.sync_idle_seconds
        self.throttle = LoginThrottle(
            settings.login_failures_per_address,
            settings.login_failures_per_user,
            settings.login_throttle_seconds,
        )
        self.login_threads = settings.login_threads or os.cpu_count() or 1
        self._logins: anyio.CapacityLimiter | None = None  # made on the event loop

    def startup(self) -> None:
        """Create the data root and the folders of ``SYNC_USERn`` users. Users' own folders are
        left alone until they are used: start-up time does not grow with their number."""
        self.data_root.mkdir(parents=True, exist_ok=True)
        for name in self.accounts.env_accounts:
            user_folder(self.data_root, name).mkdir(exist_ok=True)
        self.space.check()

    def free_bytes(self) -> int | None:
        """Free bytes under the data root (None if unreadable): for /health and metrics."""
        return self.space.check()

    async def keep_house(self) -> None:
        """Release idle users and write devices' last use, until cancelled."""
        interval = min(HOUSEKEEPING_SECONDS, self.user_idle_seconds / 2, self.sync_idle_seconds / 2)
        await _every(interval, self._keep_house_once, "housekeeping")

    async def _keep_house_once(self) -> None:
        await self.release_idle()
        await in_thread(self.accounts.write_uses)

    async def release_idle(self) -> None:
        """Close idle users' databases and roll back abandoned syncs."""
        idle, sync_idle = self.user_idle_seconds, self.sync_idle_seconds
        released = await self.collection.users.release_idle(idle, sync_idle)
        released += await self.media.users.release_idle(idle, sync_idle)
        if released:
            log.debug("released %d idle users' state", released)

    async def take_snapshots(self) -> None:
        """Snapshot every changed collection each ``snapshot_interval``, until cancelled."""
        if self.snapshot_interval > 0:
            await _every(self.snapshot_interval, self._take_snapshots_once, "scheduled snapshots")

    async def _take_snapshots_once(self) -> None:
        made = await in_thread(self.snapshots.create_changed)
        if made:
            log.info("scheduled snapshots of %d changed collections", len(made))

    async def shutdown(self) -> None:
        """Roll back unfinished syncs and close every database."""
        await self.collection.close()
        await self.media.close()
        await in_thread(self.accounts.write_uses)

    def where(self, user: str | None) -> Path:
        """The folder a request of ``user`` works in, for the log (the data root if unknown)."""
        try:
            return self.data_root if user is None else user_folder(self.data_root, user)
        except UserError:
            return self.data_root

    async def authenticate(self, host_key: str, client: str = "", address: str = "") -> UserName:
        """Map a host key to its user, or raise AuthFailed; note the device's use."""
        name = self.accounts.cached_user(host_key)
        if name is None:
            name = await in_thread(self.accounts.user_for_key, host_key)
        if name is None:
            raise AuthFailed("invalid hkey")
        self.accounts.note_use(host_key, client, address)
        return UserName(name)

    async def host_key(
        self, req: HostKeyRequest, address: str = "", client: str = ""
    ) -> HostKeyResponse:
        """Check a login on the login pool, unless the address or the name must wait."""
        key = await self.checked_login(
            address,
            req.username,
            lambda: self.accounts.login(req.username, req.password, client, address),
        )
        self.events.login(key is not None)
        if key is None:
            raise AuthFailed("invalid user or password")
        return HostKeyResponse(key)

    async def checked_login(
        self, address: str, name: str, check: Callable[[], T | None]
    ) -> T | None:
        """Run a password ``check`` (None: refused) on the login pool, throttled per address
        and per name; raises LoginThrottled while either must wait. Sync logins and the admin
        page's login both come through here."""
        wait = self.throttle.begin(address, name)
        if wait:
            raise LoginThrottled(f"too many failed logins; retry in {wait} s", wait)
        if self._logins is None:
            self._logins = anyio.CapacityLimiter(self.login_threads)
        result = await in_thread(check, limiter=self._logins)
        if result is not None:
            self.throttle.succeeded(address, name)
        return result

    async def media_begin(self, user: UserName) -> int:
        """Begin a media sync: the media usn."""
        self.collection.settle(user)
        return await self.media.usn(user)

    # What /metrics reports about the server's state (observe.metrics.ServerState).
    def active_sessions(self) -> int:
        return self.collection.active_sessions()

    def open_users(self) -> int:
        return len(self.collection.users)

    def room_waits(self) -> dict[str, int]:
        kept, media = self.collection.users.room_waits, self.media.users.room_waits
        return {outcome: kept[outcome] + media[outcome] for outcome in kept}

    def user_count(self) -> int:
        return len({r.name for r in self.accounts.store.list()} | set(self.accounts.env_accounts))

    def data_sizes(self) -> Iterable[tuple[str, int | None, int | None]]:
        collections, media = self.collection.sizes(), self.media.sizes()
        for user in sorted(collections.keys() | media.keys()):
            yield user, collections.get(user), media.get(user)

    async def meta(self, user: UserName, req: MetaRequest) -> MetaResponse:
        self.space.check(fresh=False)  # every sync starts here: the low-space warning
        stored = await self.collection.state(user)
        media_usn = await self.media.usn(user)
        return build_meta(stored, req, media_usn, self.max_decompressed_bytes)


async def _every(seconds: float, job: Callable[[], Awaitable[None]], what: str) -> None:
    """Run ``job`` every ``seconds`` until cancelled. An error ends only its own round: these
    loops share the lifespan's task group, so one that ended would cancel the others."""
    while True:
        await anyio.sleep(seconds)
        try:
            await job()
        except Exception:  # cancellation is a BaseException: it still ends the loop
            log.exception("%s failed; trying again in %s s", what, seconds)
