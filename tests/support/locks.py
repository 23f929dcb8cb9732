"""Whether some process holds SQLite's SHARED lock on a database file, probed from outside.

A WAL-mode connection holds that lock (a POSIX read lock on bytes 0x40000002 to 0x400001ff)
for as long as it is open. It is what tells another process closing its last connection that
it is not alone (else it may checkpoint and delete the WAL). The probe runs in a child
process: a process never conflicts with its own locks, and opening and closing the file here
would drop them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 510, 0x40000002)
except OSError:
    print("held")
else:
    print("free")
"""


def shared_lock_held(path: Path) -> bool:
    """True if any other process than the probe holds a SHARED lock on ``path``."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out in ("held", "free"), out
    return out == "held"
