"""Time a /metrics scrape of a server that knows N users (default 1,000).

Usage: python -m bench.scrape [N]. Users are added to a fresh auth database and made known to
the server the way syncs make them known (a collection and media size each), then /metrics is
fetched over the ASGI app (no sockets) and timed.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import httpx

from ankisyncd.config import load
from ankisyncd.http.app import build_app
from ankisyncd.server import SyncServer
from ankisyncd.storage.collection import CollectionState
from ankisyncd.users.store import UserStore


def main(users: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load({"data_root": tmp}, {})
        store = UserStore(Path(tmp) / ".ankisyncd" / "auth.db")
        store.add("user00000", "pw")  # one real hash, copied: argon2 a thousand times is slow
        con = sqlite3.connect(store.path)
        with con:
            con.executemany(
                "insert into users select ?, password_hash, created, modified from users"
                " where name = 'user00000'",
                [(f"user{i:05d}",) for i in range(1, users)],
            )
        con.close()
        server = SyncServer(settings)
        state = CollectionState(1, 1, 1, False, 2, True, 50_000_000)
        for i in range(users):
            name = f"user{i:05d}"
            server.collection._user(name)._state = ((), state)  # type: ignore[arg-type]
            server.media._user(name).media_bytes = 200_000_000  # type: ignore[arg-type]
        asyncio.run(_scrape(server))


async def _scrape(server: SyncServer) -> None:
    transport = httpx.ASGITransport(app=build_app(server))
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        times, cpu = [], time.process_time()
        for _ in range(20):
            started = time.perf_counter()
            resp = await client.get("/metrics")
            times.append(time.perf_counter() - started)
            assert resp.status_code == 200
        cpu = (time.process_time() - cpu) / 20
        times.sort()
        print(
            f"{len(resp.content)} bytes; scrape median {times[10] * 1000:.1f} ms,"
            f" max {times[-1] * 1000:.1f} ms; CPU {cpu * 1000:.1f} ms per scrape"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
