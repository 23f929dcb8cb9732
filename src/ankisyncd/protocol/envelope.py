"""Names for the values that travel with every request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import NewType

HostKey = NewType("HostKey", str)
SessionKey = NewType("SessionKey", str)
UserName = NewType("UserName", str)


BodyStream = AsyncIterator[bytes]
"""Decompressed body bytes, for methods whose body is a file rather than JSON."""
