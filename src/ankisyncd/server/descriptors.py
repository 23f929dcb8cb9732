"""File descriptors for the users kept open and the connections served.

Each kept user holds up to six descriptors (the collection and ``media.db``, each with its WAL
and ``-shm``) and each connection one. Many systems start a process with a soft limit of 1,024
and a far higher hard limit, so start-up raises the soft limit as far as the settings need and
the hard limit allows; where that is not enough, fewer users are kept open.
"""

from __future__ import annotations

import logging
import resource

DESCRIPTORS_PER_USER = 6
SPARE = 64  # listening sockets, the log, the auth database, a snapshot or backup in progress
log = logging.getLogger("ankisyncd.server")


def fit_open_users(max_open_users: int, max_connections: int) -> int:
    """Raise the soft limit on open files towards what ``max_open_users`` users and
    ``max_connections`` connections need; return how many users to keep open: all of them
    when it fits, else as many as half of the limit holds (the rest for connections)."""
    needed = DESCRIPTORS_PER_USER * max_open_users + max_connections + SPARE
    infinite = resource.RLIM_INFINITY
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != infinite and soft < needed:
        raised = needed if hard == infinite else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft == infinite or soft >= needed:
        return max_open_users
    fit = max(1, min(max_open_users, (soft - SPARE) // 2 // DESCRIPTORS_PER_USER))
    log.warning(
        "the limit of %d open files (ulimit -n) keeps %d users open, not max_open_users=%d "
        "(%d needed with max_connections=%d)",
        soft,
        fit,
        max_open_users,
        needed,
        max_connections,
    )
    return fit
