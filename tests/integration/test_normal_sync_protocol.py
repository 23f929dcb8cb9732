"""Normal sync over raw HTTP: sessions, 409s, bad chunks, rollbacks. Nothing stored may change."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ankisyncd.storage.sqlite import connect
from tests.support.clients import upload_notes
from tests.support.server import ServerProcess, hash_tree
from tests.support.wire import RawClient

EMPTY = {"_pad": None}
NO_CHANGES = {"models": [], "decks": [[], []], "tags": []}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("normal")
    server = ServerProcess(tmp / "data", {"MAX_SYNC_PAYLOAD_MEGS": "1"}).start()
    server.add_user("alice", "pw")
    upload_notes(tmp / "dev", server.url, "alice", "pw", 5)
    try:
        yield server
    finally:
        server.stop()


def stored(server: ServerProcess, sql: str) -> list[Any]:
    con = connect(server.data_root / "alice" / "collection.anki2")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def client(loaded: ServerProcess) -> Iterator[RawClient]:
    """A logged-in raw client; afterwards the stored files must be exactly as before."""
    raw = RawClient(loaded.url)
    raw.login("alice", "pw")
    before = hash_tree(loaded.data_root)
    yield raw
    raw.call("abort", EMPTY)
    assert loaded.alive()
    raw.close()
    assert hash_tree(loaded.data_root) == before


def status(raw: RawClient, method: str, obj: Any, skey: str = "s1") -> int:
    header = json.dumps({"v": 11, "k": raw.hkey, "c": "test", "s": skey})
    return raw.post(method, json.dumps(obj).encode(), header=header).status_code


def begin(raw: RawClient, skey: str = "s1") -> None:
    header = json.dumps({"v": 11, "k": raw.hkey, "c": "test", "s": skey})
    meta = raw.call("meta", {"v": 11, "cv": "test"}, header=header)
    raw.call("start", {"minUsn": meta["usn"], "lnewer": False, "graves": None}, header=header)


def call(raw: RawClient, method: str, obj: Any, skey: str = "s1") -> Any:
    header = json.dumps({"v": 11, "k": raw.hkey, "c": "test", "s": skey})
    return raw.call(method, obj, header=header)


def basic_notetype(server: ServerProcess) -> int:
    return int(stored(server, "select id from notetypes where name = 'Basic'")[0][0])


def note_row(nid: int, mid: int, fields: str = "front\x1fback") -> list[Any]:
    return [nid, f"guid{nid}", mid, 1795670000, 0, "", fields, "", "", 0, ""]


def card_row(cid: int, nid: int) -> list[Any]:
    return [cid, nid, 1, 0, 1795670000, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, "{}"]


@pytest.mark.parametrize(
    "method", ["applyGraves", "applyChanges", "chunk", "applyChunk", "sanityCheck2", "finish"]
)
def test_steps_without_a_session_are_409(client: RawClient, method: str) -> None:
    bodies = {
        "applyGraves": {"chunk": {"cards": [], "notes": [], "decks": []}},
        "applyChanges": {"changes": NO_CHANGES},
        "applyChunk": {"chunk": {"done": True}},
        "sanityCheck2": {"client": [[0, 0, 0], 0, 0, 0, 0, 0, 0, 0]},
    }
    assert status(client, method, bodies.get(method, EMPTY)) == 409
    assert status(client, method, bodies.get(method, EMPTY), skey="") == 400


def test_start_needs_a_session_key(client: RawClient) -> None:
    assert status(client, "start", {"minUsn": 0, "lnewer": False}, skey="") == 400


def test_another_session_key_is_409_and_the_newest_start_wins(client: RawClient) -> None:
    begin(client, "first")
    assert status(client, "chunk", EMPTY, skey="other") == 409
    begin(client, "second")
    assert status(client, "chunk", EMPTY, skey="first") == 409
    assert status(client, "chunk", EMPTY, skey="second") == 200


def test_meta_ends_a_running_sync(client: RawClient) -> None:
    begin(client)
    call(client, "meta", {"v": 11, "cv": "background check"}, skey="other")
    assert status(client, "chunk", EMPTY) == 409


def test_abort_answers_null_with_or_without_a_session(client: RawClient) -> None:
    assert call(client, "abort", EMPTY, skey="whatever") is None
    begin(client)
    assert call(client, "abort", {}, skey="different") is None
    assert status(client, "chunk", EMPTY) == 409


def test_unreadable_body_keeps_the_session(client: RawClient) -> None:
    begin(client)
    assert status(client, "applyChanges", {"changes": {"models": [], "tags": []}}) == 400
    assert status(client, "applyChanges", {"changes": {**NO_CHANGES, "models": [{"id": 1}]}}) == 400
    assert status(client, "chunk", EMPTY) == 200


@pytest.mark.parametrize("problem", ["missing notetype", "wrong field count"])
def test_bad_note_drops_the_session_and_changes_nothing(
    client: RawClient, loaded: ServerProcess, problem: str
) -> None:
    begin(client)
    call(client, "applyChanges", {"changes": NO_CHANGES})
    call(client, "chunk", EMPTY)
    mid = basic_notetype(loaded)
    good = note_row(1795600000001, mid)
    bad = note_row(
        1795600000002,
        42 if problem == "missing notetype" else mid,
        "only one field" if problem == "wrong field count" else "a\x1fb",
    )
    chunk = {"done": True, "notes": [good, bad], "cards": [card_row(1795600000003, good[0])]}
    assert status(client, "applyChunk", {"chunk": chunk}) == 400
    assert status(client, "sanityCheck2", {"client": [[0, 0, 0], 0, 0, 0, 0, 0, 0, 0]}) == 409


def test_aborting_after_apply_chunk_leaves_the_server_unchanged(
    client: RawClient, loaded: ServerProcess
) -> None:
    begin(client)
    call(client, "applyGraves", {"chunk": {"cards": [], "notes": [], "decks": [1]}})
    call(client, "applyChanges", {"changes": {**NO_CHANGES, "tags": ["brand-new"]}})
    call(client, "chunk", EMPTY)
    nid = 1795600000011
    chunk = {
        "done": True,
        "notes": [note_row(nid, basic_notetype(loaded))],
        "cards": [card_row(nid + 1, nid)],
    }
    assert call(client, "applyChunk", {"chunk": chunk}) is None
    # The fixture checks that every stored byte is as before once the sync is aborted.


@pytest.mark.parametrize("then", ["applyChunk", "applyChanges", "finish"])
def test_failed_sanity_check_ends_the_session(
    client: RawClient, loaded: ServerProcess, then: str
) -> None:
    """Nothing can be written after the check rolled the transaction back (the fixture checks
    that every stored byte is as before)."""
    begin(client)
    call(client, "applyChanges", {"changes": NO_CHANGES})
    call(client, "chunk", EMPTY)
    nid = 1795600000021
    call(
        client,
        "applyChunk",
        {
            "chunk": {
                "done": True,
                "notes": [note_row(nid, basic_notetype(loaded))],
                "cards": [card_row(nid + 1, nid)],
            }
        },
    )
    result = call(client, "sanityCheck2", {"client": [[0, 0, 0], 1, 1, 0, 0, 6, 1, 1]})
    assert result["status"] == "bad" and result["s"][1:3] != [1, 1]
    later = {
        "applyChunk": {
            "chunk": {"done": True, "notes": [note_row(nid + 5, basic_notetype(loaded))]}
        },
        "applyChanges": {"changes": {**NO_CHANGES, "tags": ["after-the-check"]}},
        "finish": EMPTY,
    }
    assert status(client, then, later[then]) == 409


def test_request_over_the_size_limit_is_400(client: RawClient) -> None:
    begin(client)
    ids = list(range(1795600000000, 1795600400000))
    assert status(client, "applyGraves", {"chunk": {"cards": ids, "notes": [], "decks": []}}) == 400
    assert status(client, "chunk", EMPTY) == 200


def test_crash_in_the_middle_of_a_sync_loses_nothing(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        server.add_user("bob", "pw")
        device = upload_notes(tmp_path / "dev", server.url, "bob", "pw", 3)
        raw = RawClient(server.url)
        raw.login("bob", "pw")
        before = raw.call("meta", {"v": 11, "cv": "t"})
        begin(raw)
        call(raw, "applyGraves", {"chunk": {"cards": [], "notes": [], "decks": [1]}})
        raw.close()
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        server.start()
        raw = RawClient(server.url)
        raw.login("bob", "pw")
        after = raw.call("meta", {"v": 11, "cv": "t"})
        assert {k: after[k] for k in ("mod", "scm", "usn")} == {
            k: before[k] for k in ("mod", "scm", "usn")
        }
        raw.close()
        assert device.sync()["required"] == 0
        assert len(device.dump()["notes"]) == 3
    finally:
        server.stop()


_BAD_CARD_VALUES = {
    3: [-1, 70_000, "0", 1.5],  # ord
    6: [4, -1],  # type
    7: [5, -4],  # queue
    10: [-1, 70_000],  # factor
    11: [-1, 1 << 32],  # reps
    16: [256, -1],  # flags
    17: [None, 5],  # data
    0: ["x", None, 1 << 63],  # id
}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(sorted(_BAD_CARD_VALUES)).flatmap(
        lambda i: st.tuples(st.just(i), st.sampled_from(_BAD_CARD_VALUES[i]))
    )
)
def test_out_of_range_or_mistyped_card_values_are_refused(
    client: RawClient, case: tuple[int, Any]
) -> None:
    index, value = case
    begin(client)
    row = card_row(1795600000031, 1795600000030)
    row[index] = value
    assert status(client, "applyChunk", {"chunk": {"done": True, "cards": [row]}}) == 400
    call(client, "abort", EMPTY)
