"""The ``ankisyncd`` command: users, config, health, start-up errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ankisyncd.storage.collection import TEMPLATE
from tests.support.server import ServerProcess


@pytest.fixture
def offline(tmp_path: Path) -> ServerProcess:
    """A configuration whose server is not running."""
    return ServerProcess(tmp_path / "data")


@pytest.mark.parametrize("name", ["..", ".", "a/b", "a\\b", ".hidden", "", " x", "CON", "a:b"])
def test_user_add_refuses_unsafe_names(offline: ServerProcess, name: str) -> None:
    result = offline.cli("user", "add", name, "--password-stdin", stdin="pw\n")
    assert result.returncode == 1
    assert result.stderr.startswith("error: user name") and "not allowed" in result.stderr
    assert not offline.data_root.exists() or not any(
        p.name not in (".ankisyncd",) for p in offline.data_root.iterdir()
    )


def test_user_lifecycle(offline: ServerProcess) -> None:
    assert offline.cli("user", "add", "ana", "--password-stdin", stdin="pw\n").returncode == 0
    dup = offline.cli("user", "add", "ana", "--password-stdin", stdin="pw\n")
    assert dup.returncode == 1 and "already exists" in dup.stderr
    assert offline.cli("user", "add", "bo", "--password-stdin", stdin="\n").returncode == 1
    listed = json.loads(offline.cli("user", "list", "--json").stdout)
    assert [u["name"] for u in listed] == ["ana"]
    assert offline.cli("user", "passwd", "nobody", "--password-stdin", stdin="x\n").returncode == 1
    assert offline.cli("user", "remove", "ana", "--yes").returncode == 0
    assert json.loads(offline.cli("user", "list", "--json").stdout) == []


def test_health_reports_a_stopped_and_a_running_server(offline: ServerProcess) -> None:
    assert offline.cli("health", "--timeout", "1").returncode == 1
    offline.start()
    try:
        result = offline.cli("health")
        assert result.returncode == 0, result.stderr
    finally:
        offline.stop()


def test_config_show_names_sources_and_masks_secrets(offline: ServerProcess) -> None:
    offline.env.update({"SYNC_PORT": "9999", "SYNC_USER1": "kim:topsecret"})
    out = offline.cli("config", "show").stdout
    assert f"port = {offline.port}\t# ANKISYNCD_PORT" in out  # ANKISYNCD_ wins over SYNC_
    assert "topsecret" not in out and "user kim" in out


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ANKISYNCD_PORT": "http"}, "error: ANKISYNCD_PORT: 'http' is not an integer"),
        ({"MAX_SYNC_PAYLOAD_MEGS": "0"}, "error: MAX_SYNC_PAYLOAD_MEGS: '0' must be at least 1"),
        ({"ANKISYNCD_LOG_LEVEL": "loud"}, "error: ANKISYNCD_LOG_LEVEL: 'loud' is not one of"),
        ({"SYNC_USER1": "../x:pw"}, "error: SYNC_USER1 (env): user name '../x' is not allowed"),
        ({"SYNC_USER1": "nopassword"}, "error: SYNC_USER1 (env): should be in 'username:pass"),
        ({"SYNC_USER1": "a:$x$", "PASSWORDS_HASHED": ""}, "error: SYNC_USER1 (env): not an"),
        ({"ANKISYNCD_CONFIG": "/nonexistent.conf"}, "error: ANKISYNCD_CONFIG: config file"),
    ],
)
def test_bad_setting_stops_startup_with_one_clear_line(
    offline: ServerProcess, env: dict[str, str], message: str
) -> None:
    offline.env.update(env)
    result = subprocess.run(
        [sys.executable, "-m", "ankisyncd"],
        env=offline.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(message), result.stderr


def test_config_file_is_read_and_overridden_by_env(offline: ServerProcess, tmp_path: Path) -> None:
    conf = tmp_path / "ankisyncd.conf"
    conf.write_text('log_level = "debug"\nmax_sync_payload_megs = 7\nport = 1234\n')
    offline.env["ANKISYNCD_CONFIG"] = str(conf)
    out = offline.cli("config", "show").stdout
    assert f"max_sync_payload_megs = 7\t# {conf}: max_sync_payload_megs" in out
    assert "log_level = debug" in out
    assert f"port = {offline.port}\t# ANKISYNCD_PORT" in out
    flag = offline.cli("--port", "4321", "config", "show").stdout
    assert "port = 4321\t# --port" in flag


def test_serve_script_passes_its_arguments_to_the_server(tmp_path: Path) -> None:
    """README: ``scripts/serve --host 0.0.0.0``. The arguments reach ``ankisyncd serve`` and
    not the venv set-up, which must find the install up to date and run no pip."""
    repo = Path(__file__).parents[2]
    tree = tmp_path / "tree"
    (tree / "scripts").mkdir(parents=True)
    for name in ("serve", "_venv.sh"):
        shutil.copy2(repo / "scripts" / name, tree / "scripts" / name)
    shutil.copy2(repo / "pyproject.toml", tree / "pyproject.toml")
    bin_dir = tree / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    # A python that fails loudly if the script tries to install anything with it.
    (bin_dir / "python").write_text('#!/bin/sh\necho "pip run: $*" >&2\nexit 1\n')
    (bin_dir / "python").chmod(0o755)
    (bin_dir / "ankisyncd").symlink_to(Path(sys.executable).with_name("ankisyncd"))
    (tree / ".venv" / ".installed").touch()
    server = ServerProcess(tmp_path / "data")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(tree / "scripts" / "serve"), "--host", "0.0.0.0", "--port", str(server.port)],
            env={**server.env, "ANKISYNCD_HOST": "127.0.0.2"},
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 60
        while not server.alive():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(30)
    text = log.read_text()
    assert "pip run" not in text and "installing" not in text, text
    assert "0.0.0.0" in text  # the flag won over the environment's host
    assert [p.name for p in (tree / ".venv").glob(".installed*")] == [".installed"]


def test_user_add_refuses_a_name_that_differs_only_in_case_or_unicode_form(
    offline: ServerProcess,
) -> None:
    assert offline.cli("user", "add", "émile", "--password-stdin", stdin="pw\n").returncode == 0
    for twin in ("Émile", "e\u0301mile", "ÉMILE"):
        result = offline.cli("user", "add", twin, "--password-stdin", stdin="pw\n")
        assert result.returncode == 1 and "share a folder" in result.stderr, result.stderr
    offline.env["SYNC_USER1"] = "Carol:pw"
    result = offline.cli("user", "add", "carol", "--password-stdin", stdin="pw\n")
    assert result.returncode == 1 and "share a folder" in result.stderr, result.stderr
    assert [u["name"] for u in json.loads(offline.cli("user", "list", "--json").stdout)] == [
        "émile"
    ]


def test_sync_users_that_fold_to_one_name_stop_start_up(offline: ServerProcess) -> None:
    offline.env.update({"SYNC_USER1": "dave:pw", "SYNC_USER2": "DAVE:pw"})
    result = offline.cli("serve")
    assert result.returncode == 2 and "SYNC_USER2" in result.stderr, result.stderr
    assert "share a folder" in result.stderr


def test_root_is_refused_writing_under_a_data_root_another_user_owns(
    offline: ServerProcess,
) -> None:
    """Run as root (as CI is), commands that write would leave files the server's user cannot
    open; they stop before touching anything and say whom to run them as."""
    assert offline.cli("user", "add", "ana", "--password-stdin", stdin="pw\n").returncode == 0
    folder = offline.data_root / "ana"
    folder.mkdir()
    shutil.copyfile(TEMPLATE, folder / "collection.anki2")
    every = [offline.data_root, *offline.data_root.rglob("*")]
    for p in every:
        os.chown(p, 10001, 10001)
    before = {p: (p.stat().st_uid, p.stat().st_mtime_ns) for p in every}
    for command in (
        ["user", "add", "bo", "--password-stdin"],
        ["user", "passwd", "ana", "--password-stdin"],
        ["snapshot", "create", "ana"],
        ["snapshot", "restore", "ana", "20261130-000000-manual"],
        ["check", "--repair"],
        ["backup", str(offline.data_root.parent / "backup")],
    ):
        result = offline.cli(*command, stdin="pw\n")
        assert result.returncode == 2, (command, result.stderr)
        assert "belongs to uid 10001, not root" in result.stderr, result.stderr
    after = [offline.data_root, *offline.data_root.rglob("*")]
    assert {p: (p.stat().st_uid, p.stat().st_mtime_ns) for p in after} == before
    assert not (offline.data_root.parent / "backup").exists()
    for p in every:
        os.chown(p, 0, 0)
    assert offline.cli("snapshot", "create", "ana").returncode == 0  # as its owner, it runs
