"""Bad input gets the official status or in-band error, the server keeps serving, and no
stored file changes (checked by hashing the whole data root before and after)."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ankisyncd.storage.sqlite import connect
from tests.support.clients import upload_notes
from tests.support.server import ServerProcess, hash_tree
from tests.support.wire import RawClient, unzstd, zstd

CORRUPT = "Your upload was corrupt. Please use Check Database, or restore from backup."
TOO_LARGE = "collection exceeds size limit"
LIMIT_MEGS = 1


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, bytes]]:
    """A server (L = 1 MiB) where alice has uploaded a real collection; yields it and the file."""
    tmp = tmp_path_factory.mktemp("bad-input")
    server = ServerProcess(tmp / "data", {"MAX_SYNC_PAYLOAD_MEGS": str(LIMIT_MEGS)}).start()
    server.add_user("alice", "pw")
    upload_notes(tmp / "dev", server.url, "alice", "pw", 30)
    stored = (server.data_root / "alice" / "collection.anki2").read_bytes()
    try:
        yield server, stored
    finally:
        server.stop()


@pytest.fixture
def client(loaded: tuple[ServerProcess, bytes]) -> Iterator[RawClient]:
    """A logged-in raw client; on teardown, checks that nothing stored changed."""
    server, _ = loaded
    raw = RawClient(server.url)
    raw.login("alice", "pw")
    before = hash_tree(server.data_root)
    yield raw
    assert server.alive()
    assert raw.call("meta", {"v": 11, "cv": "test"})["usn"] >= 1
    raw.close()
    assert hash_tree(server.data_root) == before
    assert not list(server.data_root.glob("*/.ankisyncd-tmp-*"))


def meta_body(**extra: object) -> bytes:
    return json.dumps({"v": 11, "cv": "test", **extra}).encode()


@pytest.mark.parametrize(
    "header",
    [
        "not json",
        "[]",
        '{"v":11,"k":"","c":"x"}',  # no s
        '{"v":"11","k":"","c":"x","s":"a"}',
        '{"v":12,"k":"","c":"x","s":"a"}',
        '{"v":7,"k":"","c":"x","s":"a"}',
    ],
)
def test_bad_sync_header_is_400(client: RawClient, header: str) -> None:
    assert client.post("meta", meta_body(), header=header).status_code == 400


def test_missing_header_and_no_multipart_is_400(client: RawClient) -> None:
    resp = client.http.post("sync/meta", content=zstd(meta_body()))
    assert resp.status_code == 400


@pytest.mark.parametrize("hkey", ["", "0" * 40, "x"])
def test_unknown_host_key_is_403(client: RawClient, hkey: str) -> None:
    assert client.post("meta", meta_body(), hkey=hkey).status_code == 403


def test_login_with_unsafe_name_is_403(client: RawClient) -> None:
    for name in ["..", "../alice", "alice/..", "\x00", ".ankisyncd"]:
        resp = client.post("hostKey", json.dumps({"u": name, "p": "pw"}).encode(), hkey="")
        assert resp.status_code == 403


@pytest.mark.parametrize("version", [0, 7, 12, 255])
def test_meta_with_unsupported_version_is_501(client: RawClient, version: int) -> None:
    body = json.dumps({"v": version, "cv": "x"}).encode()
    assert client.post("meta", body).status_code == 501


@pytest.mark.parametrize(
    "body", [b'{"v":300,"cv":"x"}', b'{"v":11}', b'{"cv":"x"}', b"[]", b"{", b"\xff\xfe", b""]
)
def test_unreadable_meta_body_is_400(client: RawClient, body: bytes) -> None:
    assert client.post("meta", body).status_code == 400


def test_body_that_is_not_zstd_is_400(client: RawClient) -> None:
    assert client.post("meta", meta_body(), compress=False).status_code == 400
    assert client.post("upload", os.urandom(5000), compress=False).status_code == 400


def test_empty_input_methods_refuse_other_keys(client: RawClient) -> None:
    assert client.post("abort", b'{"x":1}').status_code == 400
    assert client.post("download", b'{"_pad":null,"y":2}').status_code == 400
    assert client.call("abort", {}) is None
    assert client.call("abort", {"_pad": None}) is None


def test_zstd_bomb_stops_at_the_limit(client: RawClient) -> None:
    bomb = zstd(b"{" + b" " * (64 << 20))
    assert len(bomb) < 64 << 10
    resp = client.post("meta", bomb, compress=False)
    assert resp.status_code == 400


def test_zstd_bomb_before_login_is_refused_cheaply(client: RawClient) -> None:
    bomb = zstd(b'{"u":"alice","p":"' + b"a" * (64 << 20) + b'"}')
    assert client.post("hostKey", bomb, hkey="", compress=False).status_code == 400
    assert client.post("meta", bomb, hkey="f" * 40, compress=False).status_code == 403


def test_upload_bomb_is_refused_in_band(client: RawClient) -> None:
    assert client.upload(b"SQLite format 3\x00" + bytes(64 << 20)) == TOO_LARGE


def test_oversize_upload_is_refused_in_band(client: RawClient) -> None:
    assert client.upload(os.urandom(3 * LIMIT_MEGS << 20)) == TOO_LARGE


def test_random_bytes_upload_is_corrupt(client: RawClient) -> None:
    assert client.upload(os.urandom(100_000)) == CORRUPT
    assert client.upload(b"") == CORRUPT


def test_non_anki_sqlite_upload_is_corrupt(client: RawClient, tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("create table col (id integer primary key, ver integer)")
    con.execute("insert into col values (1, 18)")
    con.commit()
    con.close()
    assert client.upload(path.read_bytes()) == CORRUPT


def test_truncated_collection_upload_is_corrupt(
    client: RawClient, loaded: tuple[ServerProcess, bytes]
) -> None:
    _, stored = loaded
    for size in (len(stored) // 2, len(stored) - 4096, 100):
        assert client.upload(stored[:size]) == CORRUPT


def _variant(stored: bytes, tmp_path: Path, sql: str) -> bytes:
    path = tmp_path / "variant.anki2"
    path.write_bytes(stored)
    con = connect(path)
    con.executescript(sql)
    con.execute("pragma journal_mode = delete")
    con.close()
    return path.read_bytes()


@pytest.mark.parametrize(
    "sql",
    [
        "update col set ver = 12",
        "update col set ver = 19",
        "update col set ver = 11",
        "create trigger t after insert on notes begin delete from cards; end",
        "drop table deck_config",
        "update config set val = cast(val as text)",
        "insert into col (id, crt, mod, scm, ver, dty, usn, ls, conf, models, decks, dconf, tags)"
        " select 2, crt, mod, scm, ver, dty, usn, ls, conf, models, decks, dconf, tags from col",
    ],
    ids=["ver12", "ver19", "ver11-not-yet", "trigger", "no-deck_config", "text-blob", "two-col"],
)
def test_collection_that_anki_could_not_use_is_corrupt(
    client: RawClient, loaded: tuple[ServerProcess, bytes], tmp_path: Path, sql: str
) -> None:
    _, stored = loaded
    assert client.upload(_variant(stored, tmp_path, sql)) == CORRUPT


def test_unknown_method_and_wrong_http_verb(client: RawClient) -> None:
    resp = client.post("nonsense", meta_body())
    assert resp.status_code == 400 and "unknown variant" in resp.text
    assert client.http.get("sync/meta").status_code == 405
    assert client.http.post("health").status_code == 405
    assert client.http.get("").status_code == 404
    assert client.http.get("health").status_code == 200


def test_interrupted_upload_changes_nothing(
    client: RawClient, loaded: tuple[ServerProcess, bytes]
) -> None:
    server, stored = loaded
    header = json.dumps({"v": 11, "k": client.hkey, "c": "test", "s": "s1"})
    part = zstd(stored)[:20_000]
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /sync/upload HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n"
            + f"anki-sync: {header}\r\n\r\n".encode()
            + f"{len(part):x}\r\n".encode()
            + part
            + b"\r\n"
        )
    # The server notices the disconnect and removes its temporary file.
    deadline = time.monotonic() + 10
    while "upload user=alice addr=127.0.0.1: client disconnected" not in server.log():
        assert time.monotonic() < deadline, "the server never noticed the disconnect"
        time.sleep(0.05)
    assert server.alive()


def test_error_bodies_are_the_status_number(client: RawClient) -> None:
    resp = client.post("meta", meta_body(), hkey="nope")
    assert resp.text == "403" and "anki-original-size" not in resp.headers


def test_meta_answers_every_key_the_client_needs(client: RawClient) -> None:
    meta = client.call("meta", {"v": 11, "cv": "test"})
    assert set(meta) == {"mod", "scm", "usn", "ts", "msg", "cont", "hostNum", "empty", "media_usn"}
    assert meta["cont"] is True and meta["hostNum"] == 0 and meta["empty"] is False


def test_download_is_a_complete_collection(
    loaded: tuple[ServerProcess, bytes], tmp_path: Path
) -> None:
    server, _ = loaded
    raw = RawClient(server.url)
    raw.login("alice", "pw")
    usn_before = raw.call("meta", {"v": 11, "cv": "t"})["usn"]
    resp = raw.post("download", b'{"_pad":null}')
    data = unzstd(resp.content)
    assert int(resp.headers["anki-original-size"]) == len(data)
    path = tmp_path / "downloaded.anki2"
    path.write_bytes(data)
    con = connect(path)
    assert con.execute("pragma integrity_check").fetchall() == [("ok",)]
    assert con.execute("select ver, usn from col").fetchone() == (18, usn_before + 1)
    assert con.execute("select count() from notes").fetchone() == (30,)
    con.close()
    raw.close()
