"""The narrow interface through which the server reports what syncs did."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("ankisyncd.sync")

# How a collection sync ended. ``no_changes``: a ``meta`` followed by no collection step.
OUTCOMES = (
    "no_changes",
    "normal",
    "full_upload",
    "full_download",
    "conflict",
    "aborted",
    "failed",
)


@dataclass
class Moved:
    """What one normal sync moved in one direction."""

    notes: int = 0
    cards: int = 0
    revlog: int = 0
    graves: int = 0
    other: int = 0  # note types, decks, deck options, tags

    def counts(self) -> dict[str, int]:
        """The fields by name (``dataclasses.asdict`` deep-copies each value: ~10x slower)."""
        return vars(self).copy()


class SyncEvents(Protocol):
    """Called by the server at the end of each step that decides an outcome."""

    def login(self, ok: bool) -> None: ...

    def sync_ended(self, user: str, outcome: str, up: Moved, down: Moved) -> None: ...

    def full_sync(self, user: str, direction: str, size: int) -> None: ...

    def media_moved(self, user: str, up: int, down: int) -> None: ...


class LogEvents:
    """Writes one summary event per finished sync; the base of the metrics recorder."""

    def login(self, ok: bool) -> None:
        pass

    def sync_ended(self, user: str, outcome: str, up: Moved, down: Moved) -> None:
        if outcome == "no_changes" or not log.isEnabledFor(logging.INFO):
            return
        moved = {f"{k}_up": v for k, v in up.counts().items()}
        moved |= {f"{k}_down": v for k, v in down.counts().items()}
        _event("sync", user=user, outcome=outcome, **moved)

    def full_sync(self, user: str, direction: str, size: int) -> None:
        _event("full_sync", user=user, direction=direction, bytes=size)

    def media_moved(self, user: str, up: int, down: int) -> None:
        _event("media", user=user, files_up=up, files_down=down)


class Fanout:
    """Hands every event to each of several listeners (the metrics, the admin page's activity)."""

    def __init__(self, *listeners: SyncEvents) -> None:
        self.listeners = listeners

    def login(self, ok: bool) -> None:
        for listener in self.listeners:
            listener.login(ok)

    def sync_ended(self, user: str, outcome: str, up: Moved, down: Moved) -> None:
        for listener in self.listeners:
            listener.sync_ended(user, outcome, up, down)

    def full_sync(self, user: str, direction: str, size: int) -> None:
        for listener in self.listeners:
            listener.full_sync(user, direction, size)

    def media_moved(self, user: str, up: int, down: int) -> None:
        for listener in self.listeners:
            listener.media_moved(user, up, down)


def _event(name: str, **fields: object) -> None:
    """Log one event: its fields in the text line, and as keys of their own in JSON."""
    if not log.isEnabledFor(logging.INFO):  # the line is not built for nothing
        return
    fields = {"event": name, **fields}
    log.info(" ".join(f"{k}={v}" for k, v in fields.items()), extra={"fields": fields})
