"""Login throttling: per user name and per address, answered without checking passwords, with
the message real clients show for a 503."""

from __future__ import annotations

from pathlib import Path

from tests.support.clients import Device
from tests.support.compare import NO_CHANGES
from tests.support.server import ServerProcess
from tests.support.wire import RawClient

TRY_LATER = "Please try again in a few minutes."


def test_failed_logins_for_a_name_make_it_wait_and_others_carry_on(tmp_path: Path) -> None:
    env = {"ANKISYNCD_LOGIN_FAILURES_PER_USER": "3", "ANKISYNCD_LOGIN_FAILURES_PER_ADDRESS": "0"}
    server = ServerProcess(tmp_path / "data", env)
    server.add_user("alice", "right")
    server.add_user("bob", "pw")
    server.start()
    try:
        bob = Device(tmp_path / "bob")
        bob.login("bob", "pw", server.url)
        alice = Device(tmp_path / "alice")
        for _ in range(3):
            assert alice.login("alice", "wrong", server.url)["kind"] == "AUTH"
        # Even the right password waits now: the client says to try again later.
        refused = alice.login("alice", "right", server.url)
        assert refused["kind"] == "OTHER" and TRY_LATER in refused["message"], refused
        raw = RawClient(server.url)
        try:
            resp = raw.post("hostKey", b'{"u":"alice","p":"wrong"}')
            assert resp.status_code == 503 and 1 <= int(resp.headers["retry-after"]) <= 300
        finally:
            raw.close()
        # Other users log in and sync as usual, from the same address.
        assert bob.sync()["required"] == NO_CHANGES
        assert len(Device(tmp_path / "bob2").login("bob", "pw", server.url)["hkey"]) == 40
    finally:
        server.stop()
    assert "too many failed logins" in server.log_path.read_text()


def test_failed_logins_from_an_address_make_it_wait(tmp_path: Path) -> None:
    env = {"ANKISYNCD_LOGIN_FAILURES_PER_ADDRESS": "4", "ANKISYNCD_LOGIN_FAILURES_PER_USER": "0"}
    server = ServerProcess(tmp_path / "data", env)
    server.add_user("carol", "pw")
    server.start()
    raw = RawClient(server.url)
    try:
        statuses = [
            raw.post("hostKey", f'{{"u":"user{i}","p":"x"}}'.encode()).status_code for i in range(6)
        ]
        assert statuses == [403, 403, 403, 403, 503, 503]
        refused = Device(tmp_path / "carol").login("carol", "pw", server.url)
        assert TRY_LATER in refused["message"], refused
    finally:
        raw.close()
        server.stop()


def test_right_passwords_never_use_up_the_allowance(tmp_path: Path) -> None:
    env = {"ANKISYNCD_LOGIN_FAILURES_PER_USER": "2", "ANKISYNCD_LOGIN_FAILURES_PER_ADDRESS": "2"}
    server = ServerProcess(tmp_path / "data", env)
    server.add_user("dan", "pw")
    server.start()
    raw = RawClient(server.url)
    try:
        for _ in range(5):
            assert len(raw.login("dan", "pw")) == 40
        assert raw.post("hostKey", b'{"u":"dan","p":"no"}').status_code == 403
    finally:
        raw.close()
        server.stop()
