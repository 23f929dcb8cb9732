"""Give freed request buffers back to the operating system (glibc only; elsewhere a no-op).

glibc raises its mmap threshold each time a large block is freed, up to 32 MiB, and keeps
blocks below it in its heaps, one heap per thread: after a few large bodies parsed in worker
threads, hundreds of MiB stayed resident. A fixed threshold keeps the usual behaviour for
small objects and returns every block of 1 MiB or more to the system when it is freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
LARGE_BLOCK = 1 << 20


def return_large_blocks() -> bool:
    """Fix glibc's mmap threshold at 1 MiB; False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK))
