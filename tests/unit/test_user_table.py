"""The table of kept users makes room without breaking a sync under way: newcomers wait in
turn for a sync to end, are refused 503 when none ends in time, and only a sync whose client
went silent is rolled back for them."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ankisyncd.errors import ServerBusy
from ankisyncd.server._users import RETRY_AFTER_SECONDS, UserState, UserTable


@dataclass
class Syncing(UserState):
    """A user whose sync is under way between ``begin`` and ``end`` (as a session is)."""

    syncing: bool = False
    released: bool = False

    def in_sync(self) -> bool:
        return self.syncing

    async def release(self) -> None:
        self.released = True


class Users:
    """A table of ``Syncing`` users, driven one request at a time as the server does."""

    def __init__(self, tmp: Path, max_open: int, **timing: float) -> None:
        self.made: dict[str, list[Syncing]] = {}
        self.table = UserTable(self._make, max_open, **timing)
        self.tmp = tmp

    def _make(self, name: str) -> Syncing:
        state = Syncing(self.tmp / name)
        self.made.setdefault(name, []).append(state)
        return state

    async def request(self, name: str, syncing: bool) -> Syncing:
        """One request of ``name`` that leaves its sync under way (or not)."""
        async with self.table.use(name) as state:
            state.syncing = syncing
            return state

    def kept(self) -> list[str]:
        return [name for name, _ in self.table.items()]


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_a_newcomer_waits_for_a_sync_to_end_instead_of_breaking_it(tmp_path: Path) -> None:
    async def main() -> None:
        users = Users(tmp_path, 2)
        a = await users.request("a", syncing=True)
        b = await users.request("b", syncing=True)
        carol = asyncio.create_task(users.request("c", syncing=False))
        await asyncio.sleep(0.3)
        assert not carol.done()
        assert users.kept() == ["a", "b"] and not a.released and not b.released
        await users.request("a", syncing=False)  # a's sync ends
        await asyncio.wait_for(carol, 5)
        assert a.released and not b.released
        assert users.kept() == ["b", "c"]

    run(main())


def test_a_newcomer_is_refused_with_retry_after_when_no_sync_ends_in_time(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        users = Users(tmp_path, 2, room_wait=0.3)
        a = await users.request("a", syncing=True)
        b = await users.request("b", syncing=True)
        with pytest.raises(ServerBusy) as refused:
            await users.request("c", syncing=False)
        assert refused.value.status == 503
        assert refused.value.retry_after == RETRY_AFTER_SECONDS
        assert users.kept() == ["a", "b"] and not a.released and not b.released
        assert not users.table._waiters
        # Nothing of the refused newcomer stays behind: once a sync ends, the next one gets in.
        await users.request("b", syncing=False)
        await users.request("c", syncing=False)
        assert users.kept() == ["a", "c"] and b.released

    run(main())


def test_a_sync_whose_client_went_silent_is_rolled_back_for_room(tmp_path: Path) -> None:
    async def main() -> None:
        users = Users(tmp_path, 2, room_wait=10, stalled_after=0.3)
        a = await users.request("a", syncing=True)
        await asyncio.sleep(0.1)
        b = await users.request("b", syncing=True)
        started = asyncio.get_running_loop().time()
        await users.request("c", syncing=False)
        waited = asyncio.get_running_loop().time() - started
        assert 0.1 <= waited < 5, waited  # until a (silent longest) counted as stalled
        assert a.released and not b.released
        assert users.kept() == ["b", "c"]

    run(main())


def test_idle_users_make_room_first_least_recently_used_first(tmp_path: Path) -> None:
    async def main() -> None:
        users = Users(tmp_path, 3, room_wait=0.3)
        a = await users.request("a", syncing=False)
        b = await users.request("b", syncing=True)
        c = await users.request("c", syncing=False)
        await users.request("a", syncing=False)  # a used again: c is now the idle LRU
        await users.request("d", syncing=False)
        assert c.released and not a.released and not b.released
        assert users.kept() == ["b", "a", "d"]

    run(main())


def test_newcomers_get_room_in_the_order_they_came(tmp_path: Path) -> None:
    async def main() -> None:
        users = Users(tmp_path, 1)
        await users.request("a", syncing=True)
        first = asyncio.create_task(users.request("c1", syncing=True))
        await settle()
        second = asyncio.create_task(users.request("c2", syncing=False))
        await settle()
        late = asyncio.create_task(users.request("c3", syncing=False))
        await settle()
        late.cancel()  # its client went away while waiting: it must not hold up the others
        await users.request("a", syncing=False)
        await asyncio.wait_for(first, 5)
        await settle()
        assert not second.done()  # c1's sync is under way in the only room
        await users.request("c1", syncing=False)
        await asyncio.wait_for(second, 5)
        assert users.kept() == ["c2"]
        assert not users.table._waiters

    run(main())


def test_a_user_in_a_sync_is_never_released_while_a_request_uses_it(tmp_path: Path) -> None:
    async def main() -> None:
        users = Users(tmp_path, 1, room_wait=0.3, stalled_after=0.0)
        entered, leave = asyncio.Event(), asyncio.Event()

        async def long_step() -> None:
            async with users.table.use("a") as state:
                state.syncing = True
                entered.set()
                await leave.wait()

        step = asyncio.create_task(long_step())
        await entered.wait()
        with pytest.raises(ServerBusy):
            await users.request("b", syncing=False)
        assert not users.made["a"][0].released
        leave.set()
        await step
        await users.request("b", syncing=False)  # now silent: stalled at once
        assert users.made["a"][0].released

    run(main())
