"""The legacy wire format (multipart form + gzip) over raw HTTP, bad input included."""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clients import upload_notes
from tests.support.server import ServerProcess, hash_tree


@pytest.fixture(scope="module")
def legacy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("legacy")
    server = ServerProcess(tmp / "data", {"MAX_SYNC_PAYLOAD_MEGS": "1"}).start()
    server.add_user("alice", "pw")
    upload_notes(tmp / "dev", server.url, "alice", "pw", 4)
    try:
        yield server
    finally:
        server.stop()


class Legacy:
    def __init__(self, server: ServerProcess) -> None:
        self.http = httpx.Client(base_url=server.url, timeout=60)
        self.hkey = ""

    def post(
        self, path: str, data: bytes | None, *, c: str | None = "1", **fields: str
    ) -> httpx.Response:
        form = dict(fields)
        if c is not None:
            form["c"] = c
        files = None
        if data is not None:
            payload = gzip.compress(data) if c not in (None, "0") else data
            files = {"data": ("data", payload, "application/octet-stream")}
        return self.http.post(path, data=form, files=files or {"_": ("", b"")})

    def call(self, path: str, obj: Any, **fields: str) -> Any:
        resp = self.post(path, json.dumps(obj).encode(), k=self.hkey, s="legacy1", **fields)
        assert resp.status_code == 200, (resp.status_code, resp.text)
        assert "anki-original-size" not in resp.headers
        return json.loads(resp.content)

    def login(self) -> None:
        self.hkey = self.call("sync/hostKey", {"u": "alice", "p": "pw"})["key"]


@pytest.fixture
def legacy(legacy_server: ServerProcess) -> Iterator[Legacy]:
    client = Legacy(legacy_server)
    client.login()
    before = hash_tree(legacy_server.data_root)
    yield client
    client.http.close()
    assert legacy_server.alive()
    after = hash_tree(legacy_server.data_root)
    # A download bumps the collection's usn and mod, and the media test adds and removes a
    # file (recorded in media.db or, while the server keeps it open, its WAL); nothing else
    # may change.
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed <= {"alice/collection.anki2", "alice/media.db", "alice/media.db-wal"}


def test_meta_answers_plain_json(legacy: Legacy) -> None:
    meta = legacy.call("sync/meta", {"v": 10, "cv": "ankidesktop,2.1.49,lin:arch"})
    assert meta["cont"] is True and meta["usn"] >= 1


@pytest.mark.parametrize(
    ("v", "message"),
    [
        (8, "Your client does not support the v2 scheduler"),
        (9, "Your client does not support the new timezone handling."),
    ],
)
def test_too_old_clients_are_refused_in_meta(legacy: Legacy, v: int, message: str) -> None:
    meta = legacy.call("sync/meta", {"v": v, "cv": "old"})
    assert (meta["cont"], meta["msg"]) == (False, message)


def test_graves_inside_start_and_empty_bodies(legacy: Legacy) -> None:
    meta = legacy.call("sync/meta", {"v": 10, "cv": "x"})
    graves = {"cards": ["123"], "notes": [], "decks": []}  # very old clients send strings
    start = legacy.call(
        "sync/start", {"minUsn": meta["usn"], "lnewer": False, "graves": graves, "offset": 60}
    )
    assert set(start) == {"cards", "notes", "decks"}
    assert legacy.call("sync/chunk", {})["done"] is True
    assert legacy.call("sync/abort", {}) is None


def test_download_is_a_schema_11_file_and_the_store_stays_18(
    legacy: Legacy, legacy_server: ServerProcess, tmp_path: Path
) -> None:
    resp = legacy.post("sync/download", None, c=None, k=legacy.hkey)  # old AnkiDroid: no data
    assert resp.status_code == 200
    assert int(resp.headers["content-length"]) == len(resp.content)
    assert resp.content[18:20] == b"\x01\x01"  # rollback journal, as legacy clients expect
    path = tmp_path / "legacy.anki2"
    path.write_bytes(resp.content)
    con = sqlite3.connect(path)
    assert con.execute("pragma integrity_check").fetchone() == ("ok",)
    assert con.execute("select ver from col").fetchone() == (11,)
    assert len(json.loads(con.execute("select models from col").fetchone()[0])) >= 5
    assert con.execute("select count() from notes").fetchone() == (4,)
    con.close()
    stored = sqlite3.connect(legacy_server.data_root / "alice" / "collection.anki2")
    assert stored.execute("select ver from col").fetchone() == (18,)
    stored.close()


@pytest.mark.parametrize(
    "kind", ["not-gzip", "truncated-gzip", "gzip-bomb", "raw-too-big", "truncated-form"]
)
def test_bad_forms_are_400(legacy: Legacy, legacy_server: ServerProcess, kind: str) -> None:
    if kind == "not-gzip":
        resp = legacy.http.post(
            "sync/meta",
            data={"c": "1", "k": legacy.hkey},
            files={"data": ("data", b"plain text, not gzip")},
        )
    elif kind == "truncated-gzip":
        body = gzip.compress(json.dumps({"v": 10, "cv": "x"}).encode())[:-12]
        resp = legacy.http.post(
            "sync/meta", data={"c": "1", "k": legacy.hkey}, files={"data": ("data", body)}
        )
    elif kind == "gzip-bomb":
        bomb = gzip.compress(b'{"v":10,"cv":"' + b"x" * (64 << 20) + b'"}')
        resp = legacy.http.post(
            "sync/meta", data={"c": "1", "k": legacy.hkey}, files={"data": ("data", bomb)}
        )
    elif kind == "raw-too-big":
        resp = legacy.http.post(
            "sync/meta",
            data={"c": "0", "k": legacy.hkey},
            files={"data": ("data", b" " * (2 << 20))},
        )
    else:
        boundary = "Anki-sync-boundary"
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="k"\r\n\r\n'
            f"{legacy.hkey}\r\n--{boundary}\r\nContent-Disposition: form-data; "
            'name="data"; filename="data"\r\n\r\n{"v":10'
        ).encode()
        resp = legacy.http.post(
            "sync/meta",
            content=body,
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
    assert resp.status_code == 400


def test_url_encoded_form_is_400(legacy: Legacy) -> None:
    resp = legacy.http.post("sync/meta", data={"k": legacy.hkey, "c": "0"})
    assert resp.status_code == 400


def test_wrong_key_is_403(legacy: Legacy) -> None:
    resp = legacy.post("sync/meta", json.dumps({"v": 10, "cv": "x"}).encode(), k="nope")
    assert resp.status_code == 403


def test_upload_gzip_bomb_is_refused_in_band(legacy: Legacy) -> None:
    bomb = b"SQLite format 3\x00" + bytes(64 << 20)
    resp = legacy.post("sync/upload", bomb, k=legacy.hkey)
    assert resp.status_code == 200 and resp.text == "collection exceeds size limit"


def test_media_with_the_session_key_field(legacy: Legacy) -> None:
    begin = legacy.http.post(
        "msync/begin",
        data={"k": legacy.hkey, "v": "ankidesktop,2.1.49", "c": "0"},
        files={"_": ("", b"")},
    )
    assert begin.status_code == 200
    sk = json.loads(begin.content)["data"]["sk"]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("0", b"legacy media")
        archive.writestr("_meta", json.dumps([["old.txt", "0"], ["gone.txt", ""]]))
    resp = legacy.http.post(
        "msync/uploadChanges", data={"sk": sk, "c": "0"}, files={"data": ("data", out.getvalue())}
    )
    assert resp.status_code == 200
    processed, usn = json.loads(resp.content)["data"]
    assert processed == 2
    changes = legacy.http.post(
        "msync/mediaChanges",
        data={"sk": sk, "c": "1"},
        files={"data": ("data", gzip.compress(b'{"lastUsn": 0}'))},
    )
    assert [row[0] for row in json.loads(changes.content)["data"]] == ["old.txt"]
    download = legacy.http.post(
        "msync/downloadFiles",
        data={"sk": sk, "c": "1"},
        files={"data": ("data", gzip.compress(json.dumps({"files": ["old.txt"]}).encode()))},
    )
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        assert archive.read("0") == b"legacy media"
    # Undo, so the fixture's check of unchanged files holds.
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("_meta", json.dumps([["old.txt", None]]))
    legacy.http.post(
        "msync/uploadChanges", data={"sk": sk, "c": "0"}, files={"data": ("data", out.getvalue())}
    )
    assert usn >= 1
