"""Admin settings, the config-file writer behind ``admin set-password``, sessions, activity."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ankisyncd.admin.sessions import Sessions
from ankisyncd.config import describe, load, read_config_file, set_file_value
from ankisyncd.errors import ConfigError
from ankisyncd.observe.events import Moved
from ankisyncd.server.activity import Activity

HOME = {"HOME": "/home/u"}
PHC = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


def test_the_admin_page_is_off_by_default() -> None:
    s = load({}, HOME)
    assert (s.admin_password_hash, s.admin_host, s.admin_port) == (None, None, None)
    assert s.admin_session_minutes == 60


def test_the_admin_hash_is_masked_and_must_be_argon2() -> None:
    s = load({}, {**HOME, "ANKISYNCD_ADMIN_PASSWORD_HASH": PHC})
    assert s.admin_password_hash == PHC
    shown = dict((name, value) for name, value, _ in describe(s))
    assert PHC not in shown["admin_password_hash"] and "****" in shown["admin_password_hash"]
    assert PHC not in repr(s)
    with pytest.raises(ConfigError, match=r"ANKISYNCD_ADMIN_PASSWORD_HASH: .*not an argon2"):
        load({}, {**HOME, "ANKISYNCD_ADMIN_PASSWORD_HASH": "hunter2"})


def test_admin_host_needs_admin_port() -> None:
    with pytest.raises(ConfigError, match="admin_host needs admin_port"):
        load({"admin_host": "127.0.0.1"}, HOME)
    s = load({"admin_host": "127.0.0.1", "admin_port": "8080"}, HOME)
    assert (s.admin_host, s.admin_port) == ("127.0.0.1", 8080)
    with pytest.raises(ConfigError, match="ANKISYNCD_ADMIN_SESSION_MINUTES"):
        load({}, {**HOME, "ANKISYNCD_ADMIN_SESSION_MINUTES": "0"})


def test_set_file_value_creates_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "ankisyncd.conf"
    set_file_value(path, "admin_password_hash", PHC)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values, _ = read_config_file(str(path), HOME)
    assert values == {"admin_password_hash": PHC}


def test_set_file_value_keeps_other_lines_and_replaces_its_own(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text("# comment\nport = 1\nadmin_password_hash = 'old'\nhost = 'x'\n")
    set_file_value(path, "admin_password_hash", PHC)
    assert path.read_text() == f"# comment\nport = 1\nadmin_password_hash = '{PHC}'\nhost = 'x'\n"


def test_set_file_value_refuses_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text("port = = 1\n")
    with pytest.raises(ConfigError, match=r"a\.toml"):
        set_file_value(path, "admin_password_hash", PHC)
    assert path.read_text() == "port = = 1\n"


@given(st.text(max_size=40))
@example("\x1f")
@example("it's")
@example("x' # ")
def test_any_written_value_reads_back(value: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.toml"
        try:
            set_file_value(path, "admin_password_hash", value)
        except ConfigError:
            return  # a value TOML cannot hold literally is refused, and nothing is written
        values, _ = read_config_file(str(path), HOME)
        assert values == {"admin_password_hash": value}


def test_sessions_expire_and_end() -> None:
    sessions = Sessions(lifetime_seconds=3600)
    token, session = sessions.create("127.0.0.1")
    assert sessions.get(token) is session
    assert sessions.get(token + "x") is None and sessions.get(None) is None
    assert session.csrf_ok(session.csrf) and not session.csrf_ok(session.csrf[:-1])
    assert not session.csrf_ok(None)
    session.expires = 0
    assert sessions.get(token) is None
    token, _ = sessions.create("127.0.0.1")
    sessions.end(token)
    assert sessions.get(token) is None


def test_activity_counts_outcomes_and_keeps_errors_and_last_syncs() -> None:
    activity = Activity()
    activity.login(False)
    activity.login(True)
    activity.record("hostKey", "ann", "26.09.3,x,linux", 403)
    activity.record("meta", "bob", "26.09.3,x,linux", 200)
    activity.full_sync("bob", "upload", 1000)
    activity.sync_ended("bob", "normal", Moved(notes=1), Moved())
    activity.sync_ended("bob", "no_changes", Moved(), Moved())
    activity.record("meta", "cy", "-", 403)
    activity.record("applyChanges", "bob", "-", 500)
    assert activity.syncs_today() == {
        "login_refused": 1,
        "full_upload": 1,
        "normal": 1,
        "no_changes": 1,
    }
    assert [(e.method, e.status) for e in activity.recent_errors()] == [
        ("applyChanges", 500),
        ("meta", 403),
        ("hostKey", 403),
    ]
    last = activity.last_sync("bob")
    assert last is not None and last.client == "26.09.3,x,linux"
    assert activity.last_sync("ann") is None and activity.last_sync("cy") is None
