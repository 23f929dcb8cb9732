"""Configuration: precedence, aliases, validation messages, SYNC_USERn."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ankisyncd.config import (
    describe,
    load,
    parse_env_users,
    read_config_file,
    read_file_variables,
)
from ankisyncd.errors import ConfigError

HOME = {"HOME": "/home/u"}


def test_defaults() -> None:
    s = load({}, HOME)
    assert (s.host, s.port, s.log_level, s.max_sync_payload_megs) == (
        "127.0.0.1",
        27701,
        "info",
        100,
    )
    assert s.data_root == Path("/home/u/.local/share/ankisyncd")
    assert s.auth_db_path == s.data_root / ".ankisyncd" / "auth.db"
    assert s.max_decompressed_bytes == 300 * 1024 * 1024


def test_precedence_is_flag_then_env_then_alias_then_file() -> None:
    env = {**HOME, "ANKISYNCD_PORT": "2", "SYNC_PORT": "3"}
    file = {"port": 4}
    assert load({"port": "1"}, env, file).port == 1
    assert load({}, env, file).port == 2
    assert load({}, {**HOME, "SYNC_PORT": "3"}, file).port == 3
    assert load({}, HOME, file, "/etc/a.conf").sources["port"] == "/etc/a.conf: port"
    assert load({}, HOME, {}).sources["port"] == "default"


def test_official_names_are_aliases() -> None:
    s = load(
        {}, {**HOME, "SYNC_BASE": "/srv/anki", "SYNC_HOST": "0.0.0.0", "MAX_SYNC_PAYLOAD_MEGS": "5"}
    )
    assert (s.data_root, s.host, s.max_sync_payload_megs) == (Path("/srv/anki"), "0.0.0.0", 5)
    assert s.auth_db_path == Path("/srv/anki/.ankisyncd/auth.db")


@given(st.text(max_size=12))
def test_port_accepts_exactly_integers_0_to_65535(text: str) -> None:
    try:
        value = int(text.strip())
        valid = 0 <= value <= 65535
    except ValueError:
        valid = False
    if valid:
        assert load({}, {**HOME, "ANKISYNCD_PORT": text}).port == int(text.strip())
    else:
        with pytest.raises(ConfigError, match=r"^ANKISYNCD_PORT: "):
            load({}, {**HOME, "ANKISYNCD_PORT": text})


@given(st.sampled_from(["host", "port", "log_level", "max_sync_payload_megs", "data_root"]))
def test_errors_name_the_setting_and_its_source(name: str) -> None:
    with pytest.raises(ConfigError) as err:
        load({}, HOME, {name: " " if name != "port" else "x"}, "/c.conf")
    assert str(err.value).startswith(f"/c.conf: {name}: ")


def test_env_users_stop_at_the_first_gap_and_split_at_the_first_colon() -> None:
    users = parse_env_users({"SYNC_USER1": "a:p:q", "SYNC_USER2": "b:", "SYNC_USER4": "d:x"})
    assert [(u.name, str(u.secret), u.hashed) for u in users] == [
        ("a", "p:q", False),
        ("b", "", False),
    ]
    assert parse_env_users({"SYNC_USER1": "a:$h", "PASSWORDS_HASHED": ""})[0].hashed


def test_secrets_are_masked() -> None:
    s = load({}, {**HOME, "SYNC_USER1": "amy:hunter2"})
    assert "hunter2" not in repr(s) and "hunter2" not in str(describe(s))


def test_config_file_must_exist_when_named_and_know_its_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_config_file(str(tmp_path / "missing.conf"), HOME)
    assert read_config_file(None, {"HOME": str(tmp_path)}) == ({}, None)
    bad = tmp_path / "bad.conf"
    bad.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        read_config_file(str(bad), HOME)
    bad.write_text("port = [\n")
    with pytest.raises(ConfigError, match=r"bad\.conf"):
        read_config_file(str(bad), HOME)


def test_file_variants_read_secrets_from_files(tmp_path: Path) -> None:
    (tmp_path / "user").write_text("alice:s3cret\n")
    (tmp_path / "port").write_text("8443")
    environ = read_file_variables(
        {
            **HOME,
            "SYNC_USER1_FILE": str(tmp_path / "user"),
            "ANKISYNCD_PORT_FILE": str(tmp_path / "port"),
        }
    )
    s = load({}, environ)
    assert s.port == 8443
    assert [(u.name, str(u.secret)) for u in s.env_users] == [("alice", "s3cret")]
    assert "SYNC_USER1_FILE" not in environ
    assert read_file_variables({"OTHER_FILE": "/nonexistent"}) == {"OTHER_FILE": "/nonexistent"}


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SYNC_USER1_FILE": "/nonexistent/x"}, "SYNC_USER1_FILE (env): cannot read"),
        ({"SYNC_USER1_FILE": "/dev/null", "SYNC_USER1": "a:b"}, "SYNC_USER1 is set as well"),
    ],
)
def test_file_variants_fail_clearly(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        read_file_variables(environ)


def test_tls_cert_and_key_go_together() -> None:
    with pytest.raises(ConfigError, match="--tls-key: tls_key needs tls_cert as well"):
        load({"tls_key": "/k.pem"}, HOME)
    s = load({"tls_key": "/k.pem"}, {**HOME, "ANKISYNCD_TLS_CERT": "/c.pem"})
    assert (s.tls_cert, s.tls_key) == (Path("/c.pem"), Path("/k.pem"))
