"""Counting what one normal sync moves each way, from the messages the server passes on."""

from __future__ import annotations

from dataclasses import dataclass, field

from ankisyncd.observe.events import Moved, SyncEvents
from ankisyncd.protocol.normal import Chunk, Graves, UnchunkedChanges


def add_graves(moved: Moved, graves: Graves | None) -> None:
    if graves is not None:
        moved.graves += len(graves.cards) + len(graves.notes) + len(graves.decks)


def add_changes(moved: Moved, changes: UnchunkedChanges) -> None:
    moved.other += (
        len(changes.notetypes) + len(changes.decks) + len(changes.deck_configs) + len(changes.tags)
    )


def add_chunk(moved: Moved, chunk: Chunk) -> None:
    moved.notes += len(chunk.notes)
    moved.cards += len(chunk.cards)
    moved.revlog += len(chunk.revlog)


@dataclass
class Tally:
    """The current sync of one user: what it moved, and whether a ``meta`` awaits a step."""

    user: str
    events: SyncEvents
    up: Moved = field(default_factory=Moved)
    down: Moved = field(default_factory=Moved)
    after_meta: bool = False

    def meta(self) -> None:
        """A ``meta`` right after another one: the first sync found nothing to do."""
        self.settle()
        self.after_meta = True

    def settle(self) -> None:
        """The user's next request is not a collection step: the last sync had no changes."""
        if self.after_meta:
            self.after_meta = False
            self.events.sync_ended(self.user, "no_changes", Moved(), Moved())

    def begin(self) -> None:
        self.after_meta = False
        self.up, self.down = Moved(), Moved()

    def end(self, outcome: str) -> None:
        self.events.sync_ended(self.user, outcome, self.up, self.down)
        self.up, self.down = Moved(), Moved()
