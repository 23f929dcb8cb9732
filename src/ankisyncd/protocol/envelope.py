"""Names for the values that travel with every request."""

from __future__ import annotations

from collections.abc import Callable
from typing import NewType, Protocol

HostKey = NewType("HostKey", str)
SessionKey = NewType("SessionKey", str)
UserName = NewType("UserName", str)


class BodyStream(Protocol):
    """The body of a method whose body is a file (a full upload, a media zip)."""

    async def copy_to(self, write: Callable[[bytes], object]) -> int:
        """Decode the body into ``write``, which is called in a worker thread, piece by piece
        as the body arrives; returns the decoded size (it stops quietly at the size limit)."""
        ...
