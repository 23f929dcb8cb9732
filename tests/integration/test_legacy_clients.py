"""Anki 2.1.50 (sync version 10: multipart + gzip, schema-11 full syncs) and the newest client
share one account: identical collections and media after every sync."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import LEGACY_V10, Device
from tests.support.compare import NO_CHANGES, comparable, differences
from tests.support.media import server_media
from tests.support.server import ServerProcess

pytestmark = pytest.mark.older_client


def ok(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    errors = [r for r in results if "error" in r]
    assert not errors, errors
    return results


def converge(*devices: Device) -> dict[str, Any]:
    for _ in range(2):
        for device in devices:
            assert device.sync() == {"required": NO_CHANGES, "server_message": ""}
    dumps = [d.dump() for d in devices]
    for other in dumps[1:]:
        first, second = comparable(dumps[0], other, across_versions=True)
        assert first == second, differences(dumps[0], other, across_versions=True)
    return dumps[0]


def test_legacy_and_newest_clients_share_an_account(server: ServerProcess, tmp_path: Path) -> None:
    server.add_user("alice", "pw")
    new, old = Device(tmp_path / "new"), Device(tmp_path / "old", LEGACY_V10)
    new.login("alice", "pw", server.url)
    old.login("alice", "pw", server.url)
    ok(
        new.run(
            {"op": "add_notes", "count": 8, "prefix": "n", "deck": "Lang::日本語"},
            {"op": "answer_cards", "count": 3},
            {"op": "set_deck_options", "new_per_day": 31, "rev_per_day": 301},
            {"op": "full_upload"},
            {"op": "add_media", "name": "from-new.txt", "text": "hello"},
            {"op": "add_media_batch", "count": 30, "size": 500, "prefix": "n"},
            {"op": "sync_media"},
        )
    )
    # The legacy client downloads a schema-11 copy; the stored collection stays schema 18.
    ok(old.run({"op": "full_download"}, {"op": "sync_media"}))
    assert old.step("media_files") == new.step("media_files")
    converge(old, new)

    ok(
        old.run(
            {"op": "add_notes", "count": 4, "prefix": "o"},
            {"op": "edit_notes", "count": 2, "text": "edited by 2.1.50"},
            {"op": "delete_notes", "count": 1},
            {"op": "answer_cards", "count": 3},
            {"op": "add_deck", "name": "Old Deck"},
            {"op": "add_media", "name": "from-old.txt", "text": "hi from the past"},
            {"op": "delete_media", "names": ["n0000.bin"]},
            {"op": "sync"},
            {"op": "sync_media"},
        )
    )
    ok(new.run({"op": "sync"}, {"op": "sync_media"}))
    dump = converge(new, old)
    assert "Old Deck" in {row[1] for row in dump["decks"]}
    assert new.step("media_files") == old.step("media_files")

    ok(
        new.run(
            {"op": "edit_notes", "count": 3, "text": "edited by the newest"},
            {"op": "add_notes", "count": 2, "prefix": "n2"},
            {"op": "add_media", "name": "again.txt", "text": "again"},
            {"op": "sync"},
            {"op": "sync_media"},
        )
    )
    ok(old.run({"op": "sync"}, {"op": "sync_media"}))
    converge(old, new)
    files = old.step("media_files")
    assert files == new.step("media_files") == server_media(server.data_root / "alice")
    assert "n0000.bin" not in files and "from-old.txt" in files


def test_legacy_full_upload_then_newest_full_download(
    server: ServerProcess, tmp_path: Path
) -> None:
    server.add_user("alice", "pw")
    old, new = Device(tmp_path / "old", LEGACY_V10), Device(tmp_path / "new")
    old.login("alice", "pw", server.url)
    new.login("alice", "pw", server.url)
    results = ok(
        old.run(
            {"op": "add_notes", "count": 10, "prefix": "o"},
            {"op": "answer_cards", "count": 4},
            {"op": "add_deck", "name": "Parent::Child"},
            {"op": "add_notetype", "name": "Legacy Type"},
            {"op": "full_upload"},
        )
    )
    assert results[1] == {"answered": 4}
    assert old.sync()["required"] == NO_CHANGES
    ok(new.run({"op": "full_download"}))
    dump = converge(new, old)
    assert len(dump["notes"]) == 10 and len(dump["revlog"]) == 4
    assert "Legacy Type" in {row[1] for row in dump["notetypes"]}
    assert "Parent\x1fChild" in {row[1] for row in dump["decks"]}
    ok(new.run({"op": "add_notes", "count": 1, "prefix": "n"}, {"op": "sync"}))
    ok(old.run({"op": "sync"}))
    converge(old, new)
