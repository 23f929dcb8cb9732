"""Media sync over raw HTTP: hostile names, bad zips, limits. Nothing is written outside the
user's media folder, and media.db always agrees with the files."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.media import server_media
from tests.support.server import ServerProcess, hash_tree
from tests.support.wire import RawClient, unzstd, zstd


@pytest.fixture(scope="module")
def media_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("media")
    server = ServerProcess(tmp / "data", {"MAX_SYNC_PAYLOAD_MEGS": "2"}).start()
    server.add_user("alice", "pw")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(media_server: ServerProcess) -> Iterator[RawClient]:
    raw = RawClient(media_server.url)
    raw.login("alice", "pw")
    yield raw
    raw.close()
    assert media_server.alive()
    server_media(media_server.data_root / "alice")
    assert not list((media_server.data_root / "alice").glob(".ankisyncd-tmp-*"))


def msync(raw: RawClient, method: str, body: bytes) -> Any:
    header = json.dumps({"v": 11, "k": raw.hkey, "c": "test", "s": "m1"})
    return raw.http.post(f"msync/{method}", content=zstd(body), headers={"anki-sync": header})


def ok_json(resp: Any) -> Any:
    assert resp.status_code == 200, (resp.status_code, resp.text)
    body = unzstd(resp.content)
    assert int(resp.headers["anki-original-size"]) == len(body)
    envelope = json.loads(body)
    assert envelope["err"] == ""
    return envelope["data"]


def upload_zip(
    entries: list[tuple[str, bytes | None]],
    *,
    meta: Any = None,
    compression: int = zipfile.ZIP_STORED,
) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        plan = []
        for i, (name, data) in enumerate(entries):
            if data is None:
                plan.append([name, None])
            else:
                archive.writestr(str(i), data)
                plan.append([name, str(i)])
        archive.writestr("_meta", json.dumps(meta if meta is not None else plan))
    return out.getvalue()


def upload(raw: RawClient, entries: list[tuple[str, bytes | None]], **kw: Any) -> Any:
    return msync(raw, "uploadChanges", upload_zip(entries, **kw))


def usn(raw: RawClient) -> int:
    return int(ok_json(msync(raw, "begin", b'{"v":"test"}'))["usn"])


HOSTILE = [
    "..",
    ".",
    "",
    "../escape.txt",
    "/etc/passwd",
    "a/b.txt",
    "a\\b.txt",
    "nul\x00.txt",
    "x" * 256,
    "e\u0301.txt",
    "ctrl\x07.txt",
]


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_names_are_refused_before_anything_is_written(
    client: RawClient, media_server: ServerProcess, name: str
) -> None:
    before = hash_tree(media_server.data_root.parent)
    resp = upload(client, [("fine.txt", b"fine"), (name, b"evil")])
    assert resp.status_code == 400
    after = hash_tree(media_server.data_root.parent)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert {k for k in changed if not k.endswith("-server.log")} == set()


def test_deleting_a_backslash_name_is_accepted_but_hostile_deletions_are_not(
    client: RawClient,
) -> None:
    start = usn(client)
    assert ok_json(upload(client, [("a\\b.txt", None)])) == [1, start]
    for name in ("..", "../x", "a/b", ""):
        assert upload(client, [(name, None)]).status_code == 400


def test_files_deletions_and_no_ops_count_and_use_usns(client: RawClient) -> None:
    start = usn(client)
    assert ok_json(upload(client, [("one.txt", b"1"), ("two.txt", b"2"), ("gone.txt", None)])) == [
        3,
        start + 2,
    ]
    assert ok_json(upload(client, [("one.txt", b"1")])) == [1, start + 2]  # identical: no-op
    assert ok_json(upload(client, [("one.txt", b"1!"), ("two.txt", None)])) == [2, start + 4]
    changes = ok_json(msync(client, "mediaChanges", json.dumps({"lastUsn": start}).encode()))
    assert changes == [
        ["one.txt", start + 3, hashlib.sha1(b"1!").hexdigest()],
        ["two.txt", start + 4, ""],
    ]


def test_media_changes_are_paged_by_1000_in_usn_order(client: RawClient) -> None:
    start = usn(client)
    for batch in range(42):
        entries = [(f"page{batch:02d}-{i:02d}.txt", f"{batch}-{i}".encode()) for i in range(25)]
        assert ok_json(upload(client, entries))[0] == 25
    first = ok_json(msync(client, "mediaChanges", json.dumps({"lastUsn": start}).encode()))
    assert len(first) == 1000
    assert [row[1] for row in first] == sorted(row[1] for row in first)
    rest = ok_json(msync(client, "mediaChanges", json.dumps({"lastUsn": first[-1][1]}).encode()))
    assert len(rest) == 50
    last = json.dumps({"lastUsn": rest[-1][1]}).encode()
    assert ok_json(msync(client, "mediaChanges", last)) == []


def test_download_returns_a_prefix_of_about_2_5_mib(client: RawClient) -> None:
    big = os.urandom(2 << 20)
    ok_json(upload(client, [("big1.bin", big)]))
    ok_json(upload(client, [("big2.bin", big[::-1]), ("small.txt", b"s")]))
    resp = msync(
        client,
        "downloadFiles",
        json.dumps({"files": ["big1.bin", "big2.bin", "small.txt"]}).encode(),
    )
    assert resp.status_code == 200
    data = unzstd(resp.content)
    assert int(resp.headers["anki-original-size"]) == len(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        meta = json.loads(archive.read("_meta"))
        assert meta == {"0": "big1.bin", "1": "big2.bin"}
        assert archive.read("0") == big


def test_an_upload_larger_than_the_memory_spool_is_stored_whole(tmp_path: Path) -> None:
    """Zips over 16 MiB are staged on disk instead of in memory; nothing of them is left."""
    server = ServerProcess(tmp_path / "data").start()
    try:
        server.add_user("bob", "pw")
        raw = RawClient(server.url)
        raw.login("bob", "pw")
        big = os.urandom(17 << 20)
        assert ok_json(upload(raw, [("large.bin", big), ("tiny.txt", b"t")]))[0] == 2
        raw.close()
        folder = server.data_root / "bob"
        assert (folder / "media" / "large.bin").read_bytes() == big
        assert len(server_media(folder)) == 2
        assert not list(folder.rglob(".ankisyncd-tmp-*"))
    finally:
        server.stop()


def test_download_of_a_missing_or_deleted_file_is_409(
    client: RawClient, media_server: ServerProcess
) -> None:
    ok_json(upload(client, [("vanish.txt", b"v"), ("deleted.txt", b"d")]))
    ok_json(upload(client, [("deleted.txt", None)]))
    for name in ("deleted.txt", "never.txt"):
        body = json.dumps({"files": [name]}).encode()
        assert msync(client, "downloadFiles", body).status_code == 409
    before = usn(client)
    (media_server.data_root / "alice" / "media" / "vanish.txt").unlink()
    body = json.dumps({"files": ["vanish.txt"]}).encode()
    assert msync(client, "downloadFiles", body).status_code == 409
    assert usn(client) == before  # forgotten without spreading a deletion
    changes = ok_json(msync(client, "mediaChanges", json.dumps({"lastUsn": 0}).encode()))
    assert "vanish.txt" not in {row[0] for row in changes}


def test_more_than_25_names_or_entries_is_400(client: RawClient) -> None:
    body = json.dumps({"files": [f"f{i}" for i in range(26)]}).encode()
    assert msync(client, "downloadFiles", body).status_code == 400
    entries = [(f"many{i}.txt", b"x") for i in range(26)]
    assert upload(client, entries).status_code == 400


@pytest.mark.parametrize(
    "archive",
    [
        b"not a zip at all",
        upload_zip([("a.txt", b"a")], meta={"0": "a.txt"}),
        upload_zip([("a.txt", b"a")], meta=[["a.txt", "0", "extra"]]),
        upload_zip([("a.txt", b"a")], meta=[["a.txt", "7"]]),
        upload_zip([("a.txt", b"")]),
    ],
    ids=["not-zip", "meta-object", "three-elements", "missing-member", "empty-file"],
)
def test_malformed_zips_are_400(client: RawClient, archive: bytes) -> None:
    assert msync(client, "uploadChanges", archive).status_code == 400


def test_zip_without_meta_is_400(client: RawClient) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("0", b"data")
    assert msync(client, "uploadChanges", out.getvalue()).status_code == 400


def test_a_meta_with_a_byte_order_mark_is_400(client: RawClient) -> None:
    """The official server's JSON parser refuses a BOM; Python's, given bytes, skips it."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("0", b"a")
        archive.writestr("_meta", b"\xef\xbb\xbf" + json.dumps([["bom.txt", "0"]]).encode())
    assert msync(client, "uploadChanges", out.getvalue()).status_code == 400


def test_a_corrupted_member_fails_its_checksum(client: RawClient) -> None:
    data = bytearray(upload_zip([("crc.txt", b"original content here")]))
    at = data.find(b"original content here")
    data[at] ^= 0xFF
    assert msync(client, "uploadChanges", bytes(data)).status_code == 400


def test_zip_bomb_is_refused(client: RawClient) -> None:
    bomb = upload_zip([("bomb.bin", bytes(101 << 20))], compression=zipfile.ZIP_DEFLATED)
    assert len(bomb) < 1 << 20
    assert msync(client, "uploadChanges", bomb).status_code == 400
    # A member whose header understates its size is stopped at the stated size.
    lying = bytearray(upload_zip([("liar.bin", bytes(1 << 20))], compression=zipfile.ZIP_DEFLATED))
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        pos = lying.find(sig)
        field = 22 if sig == b"PK\x03\x04" else 24
        lying[pos + field : pos + field + 4] = (100).to_bytes(4, "little")
    assert msync(client, "uploadChanges", bytes(lying)).status_code == 400


def test_deflated_members_from_old_clients_are_accepted(client: RawClient) -> None:
    start = usn(client)
    result = ok_json(
        upload(
            client,
            [("deflated.txt", b"z" * 5000), ("gone2.txt", None)],
            compression=zipfile.ZIP_DEFLATED,
        )
    )
    assert result == [2, start + 1]


def test_sanity_compares_present_files(client: RawClient, media_server: ServerProcess) -> None:
    present = len(server_media(media_server.data_root / "alice"))
    body = json.dumps({"local": present}).encode()
    assert ok_json(msync(client, "mediaSanity", body)) == "OK"
    body = json.dumps({"local": present + 1}).encode()
    assert ok_json(msync(client, "mediaSanity", body)) == "mediaSanity"
    assert msync(client, "mediaSanity", b'{"local":-1}').status_code == 400


def test_begin_forms_and_routing(client: RawClient) -> None:
    assert ok_json(msync(client, "begin", b'{"v":"x"}'))["sk"] == client.hkey
    assert msync(client, "begin", b'{"v":""}').status_code == 400
    legacy = client.http.get("msync/begin", params={"k": client.hkey, "v": "anki,2.1.50"})
    assert legacy.status_code == 200
    assert json.loads(legacy.content) == {
        "data": {"usn": usn(client), "sk": client.hkey},
        "err": "",
    }
    assert client.http.get("msync/begin", params={"k": client.hkey}).status_code == 400
    assert client.http.get("msync/begin", params={"k": "bad", "v": "x"}).status_code == 403
    assert client.http.get("msync/mediaChanges").status_code == 405
    header = json.dumps({"v": 11, "k": client.hkey, "c": "t", "s": "s"})
    doubled = client.http.post(
        "msync//begin", content=zstd(b'{"v":"x"}'), headers={"anki-sync": header}
    )
    assert doubled.status_code == 200
    assert msync(client, "nonsense", b"{}").status_code == 400
    bad_key = json.dumps({"v": 11, "k": "nope", "c": "t", "s": "s"})
    resp = client.http.post(
        "msync/begin", content=zstd(b'{"v":"x"}'), headers={"anki-sync": bad_key}
    )
    assert resp.status_code == 403


def test_interrupted_upload_leaves_nothing_behind(
    client: RawClient, media_server: ServerProcess
) -> None:
    before = usn(client)
    body = zstd(upload_zip([("half.bin", os.urandom(500_000))]))[:100_000]
    header = json.dumps({"v": 11, "k": client.hkey, "c": "t", "s": "s"})
    with socket.create_connection(("127.0.0.1", media_server.port)) as sock:
        sock.sendall(
            b"POST /msync/uploadChanges HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
            + f"anki-sync: {header}\r\n\r\n{len(body):x}\r\n".encode()
            + body
            + b"\r\n"
        )
    deadline = time.monotonic() + 10
    while "msync/uploadChanges user=alice addr=127.0.0.1: client disconnected" not in (
        media_server.log()
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert usn(client) == before
    assert not list((media_server.data_root / "alice").glob(".ankisyncd-tmp-*"))
    assert not (media_server.data_root / "alice" / "media" / "half.bin").exists()
