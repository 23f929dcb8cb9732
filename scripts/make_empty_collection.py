"""Regenerate src/ankisyncd/storage/empty.anki2 with the official server (dev-only; needs `anki`).

The official server creates a user's collection on first access: the Default deck and deck
options, the stock notetypes, ``mod`` 0 and ``creationOffset`` null. We keep that file as the
template for new users, so a first download gives exactly what the official server would.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from anki.collection import Collection

TARGET = Path(__file__).resolve().parent.parent / "src/ankisyncd/storage/empty.anki2"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(
            os.environ,
            SYNC_USER1="template:template",
            SYNC_BASE=tmp,
            SYNC_HOST="127.0.0.1",
            SYNC_PORT=str(port),
        )
        server = subprocess.Popen([sys.executable, "-m", "anki.syncserver"], env=env)
        try:
            time.sleep(2)
            col = Collection(str(Path(tmp) / "client.anki2"))
            auth = col.sync_login("template", "template", f"http://127.0.0.1:{port}/")
            col.sync_collection(auth, False)  # meta only: the server creates its collection
            col.close()
        finally:
            server.terminate()
            server.wait()
        stored = Path(tmp) / "template" / "collection.anki2"
        con = sqlite3.connect(stored)
        con.execute("pragma wal_checkpoint(truncate)")
        con.close()
        shutil.copyfile(stored, TARGET)
    print(f"wrote {TARGET} ({TARGET.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
