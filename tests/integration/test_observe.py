"""/metrics and structured logs, driven by real clients."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clients import Device
from tests.support.server import ServerProcess
from tests.support.wire import RawClient

TOKEN = "s3cret-token-for-tests"


def scrape(server: ServerProcess, token: str | None = TOKEN) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    resp = httpx.get(server.url + "metrics", headers=headers, timeout=30)
    assert resp.status_code == 200, resp.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def value(samples: dict[tuple[str, tuple], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_syncs_media_and_logins(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", {"ANKISYNCD_METRICS_TOKEN": TOKEN}).start()
    try:
        server.add_user("alice", "pw")
        server.add_user("bob", "pw")
        a, b = Device(tmp_path / "a"), Device(tmp_path / "b")
        a.login("alice", "pw", server.url)
        assert b.login("alice", "wrong", server.url)["kind"] == "AUTH"
        before = scrape(server)
        assert value(before, "ankisyncd_users") == 2
        assert value(before, "ankisyncd_logins_total", result="ok") == 1
        assert value(before, "ankisyncd_logins_total", result="failed") == 1

        a.run(
            {"op": "add_notes", "count": 5, "prefix": "a"},
            {"op": "add_media_batch", "count": 3, "size": 1000, "prefix": "m"},
            {"op": "full_upload"},
            {"op": "sync_media"},
        )
        a.run({"op": "add_notes", "count": 2, "prefix": "b"}, {"op": "sync"})
        b.login("alice", "pw", server.url)
        b.run({"op": "full_download"}, {"op": "sync_media"}, {"op": "sync"})
        after = scrape(server)
    finally:
        server.stop()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("ankisyncd_syncs_total", outcome="full_upload") == 1
    assert moved("ankisyncd_syncs_total", outcome="full_download") == 1
    assert moved("ankisyncd_syncs_total", outcome="normal") == 1
    assert moved("ankisyncd_sync_rows_total", kind="notes", direction="up") == 2
    assert moved("ankisyncd_sync_rows_total", kind="cards", direction="up") == 4
    assert moved("ankisyncd_media_files_total", direction="up") == 3
    assert moved("ankisyncd_media_files_total", direction="down") == 3
    assert value(after, "ankisyncd_active_sync_sessions") == 0
    assert moved("ankisyncd_requests_total", endpoint="sync/upload", method="POST", status="200")
    assert moved("ankisyncd_request_duration_seconds_count", endpoint="sync/meta") == 2
    assert moved("ankisyncd_received_bytes_total", endpoint="sync/upload") > 1000
    assert moved("ankisyncd_sent_bytes_total", endpoint="sync/download") > 1000
    assert value(after, "ankisyncd_user_collection_bytes", user="alice") > 10_000
    assert value(after, "ankisyncd_user_media_bytes", user="alice") == 3000


def test_small_answers_count_their_exact_status_and_bytes(server: ServerProcess) -> None:
    """Answers sent as two raw messages (http/direct.py) are counted as streamed ones are."""
    server.add_user("carol", "pw")
    raw = RawClient(server.url)
    try:
        raw.login("carol", "pw")
        before = scrape(server, token=None)
        meta = raw.post("meta", json.dumps({"v": 11, "cv": "test,1,linux"}).encode())
        refused = raw.post("meta", b"{}", hkey="not-a-key")
        after = scrape(server, token=None)
    finally:
        raw.close()
    assert (meta.status_code, refused.status_code) == (200, 403)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    sent = moved("ankisyncd_sent_bytes_total", endpoint="sync/meta")
    assert sent == len(meta.content) + len(refused.content)
    for status in ("200", "403"):
        labels = {"endpoint": "sync/meta", "method": "POST", "status": status}
        assert moved("ankisyncd_requests_total", **labels) == 1


def test_metrics_need_the_token_when_one_is_set(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", {"ANKISYNCD_METRICS_TOKEN": TOKEN}).start()
    try:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}):
            resp = httpx.get(server.url + "metrics", headers=headers)
            assert resp.status_code == 401 and "ankisyncd" not in resp.text
        assert value(scrape(server), "ankisyncd_users") == 0
    finally:
        server.stop()


def test_metrics_are_open_without_a_token(server: ServerProcess) -> None:
    assert value(scrape(server, token=None), "ankisyncd_active_sync_sessions") == 0


def test_json_logs_carry_the_fields_on_every_line(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", {"ANKISYNCD_LOG_FORMAT": "json"}).start()
    try:
        server.add_user("alice", "pw")
        a = Device(tmp_path / "a")
        auth = a.login("alice", "pw", server.url)
        a.run(
            {"op": "add_notes", "count": 3, "prefix": "a"},
            {"op": "full_upload"},
            {"op": "add_notes", "count": 1, "prefix": "b"},
            {"op": "sync"},
        )
    finally:
        server.stop()
    events = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in events)
    requests = [e for e in events if e.get("event") == "request"]
    fields = {"request_id", "user", "device", "client_version", "client_address", "method"}
    fields |= {"status", "duration_ms", "bytes_in", "bytes_out", "endpoint"}
    assert requests and all(fields <= r.keys() for r in requests)
    meta = next(r for r in requests if r["endpoint"] == "sync/meta")
    assert meta["user"] == "alice" and meta["client_address"] == "127.0.0.1"
    assert meta["client_version"].startswith("26.09.3") and len(meta["device"]) == 12
    assert auth["hkey"] not in server.log()  # the device is named, its key never shown
    assert len({r["request_id"] for r in requests}) == len(requests)
    [normal] = [e for e in events if e.get("event") == "sync"]
    assert normal["outcome"] == "normal" and normal["notes_up"] == 1 and normal["cards_up"] == 2
    [full] = [e for e in events if e.get("event") == "full_sync"]
    assert full["direction"] == "upload" and full["bytes"] > 0
