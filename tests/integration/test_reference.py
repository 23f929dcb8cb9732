"""Reference runs: the same client scenarios against the official server give the same results.

If one of these fails, the scenario (not our server) assumes something the official pair does
not do.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration import test_full_sync, test_normal_sync
from tests.support.clients import NEWEST
from tests.support.server import OfficialServer

pytestmark = pytest.mark.reference


@pytest.fixture
def official(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = OfficialServer(tmp_path / "official", {"alice": "pw"}).start()
    yield server
    server.stop()


def test_upload_and_download_scenario(official: OfficialServer, tmp_path: Path) -> None:
    test_full_sync.test_upload_then_download_gives_identical_collections(
        official,
        tmp_path,
        NEWEST,  # type: ignore[arg-type]
    )


def test_every_kind_of_change_scenario(official: OfficialServer, tmp_path: Path) -> None:
    test_normal_sync.test_every_kind_of_change_flows_both_ways(
        official,
        tmp_path,
        NEWEST,  # type: ignore[arg-type]
    )


def test_newer_edit_scenario(official: OfficialServer, tmp_path: Path) -> None:
    test_normal_sync.test_newer_edit_of_one_note_wins(official, tmp_path)  # type: ignore[arg-type]
