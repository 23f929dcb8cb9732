"""The container image, built from the Dockerfile on a Debian base, with a real client."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.clients import Device
from tests.support.docker import (
    ROOT,
    Dockerd,
    build_context,
    build_image,
    image_size,
    import_base,
    wait_healthy,
)
from tests.support.server import free_port
from tests.support.tls import tls_init

IMAGE = "ankisyncd:test"
MB = 1024 * 1024


def ok(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    errors = [r for r in results if "error" in r]
    assert not errors, errors
    return results


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    daemon = Dockerd().start()
    try:
        base = import_base(daemon)
        context = build_context(tmp_path_factory.mktemp("context"))
        build_image(daemon, context, base, IMAGE)
        yield daemon
    finally:
        daemon.stop()


def test_image_adds_little_to_its_base(dockerd: Dockerd) -> None:
    added = image_size(dockerd, IMAGE) - image_size(dockerd, "ankisyncd-test-base:bookworm")
    print(f"image adds {added / MB:.1f} MB to its base")
    assert added < 40 * MB


@pytest.fixture
def container(dockerd: Dockerd) -> Iterator[str]:
    yield "anki"
    dockerd.run("rm", "-f", "anki", check=False)
    dockerd.run("volume", "rm", "anki-data", check=False)


def test_container_serves_a_real_client_and_keeps_data_across_stops(
    dockerd: Dockerd, container: str, tmp_path: Path
) -> None:
    port = str(free_port())
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "user1").write_text("alice:pw-from-a-secret\n")
    secrets.chmod(0o755)
    (secrets / "user1").chmod(0o644)
    dockerd.run("volume", "create", "anki-data")
    dockerd.run(
        "run", "-d", "--name", "anki", "--network", "host",
        "--health-interval", "2s",  # the image checks every 30 s; the test needs less waiting
        "-v", "anki-data:/data",
        "-v", f"{secrets / 'user1'}:/run/secrets/user1:ro",
        "-e", "SYNC_USER1_FILE=/run/secrets/user1",
        "-e", f"ANKISYNCD_PORT={port}",
        IMAGE,
    )  # fmt: skip
    wait_healthy(dockerd, "anki")
    added = dockerd.run(
        "exec", "-i", "anki", "ankisyncd", "user", "add", "bob", "--password-stdin", stdin="pw\n"
    )
    assert "added user 'bob'" in added.stdout
    assert dockerd.run("exec", "anki", "cat", "/proc/1/status").stdout.count("\t10001\t") >= 2
    assert dockerd.run("exec", "anki", "id", "-u").stdout.strip() == "10001"

    url = f"http://127.0.0.1:{port}/"
    a = Device(tmp_path / "a")
    a.login("alice", "pw-from-a-secret", url)
    ok(
        a.run(
            {"op": "add_notes", "count": 20, "prefix": "a"},
            {"op": "full_upload"},
            {"op": "add_media", "name": "clip.mp3", "size": 300_000},
            {"op": "add_media", "name": "note.txt", "text": "from a"},
            {"op": "sync_media"},
            {"op": "add_notes", "count": 3, "prefix": "late"},
            {"op": "sync"},
        )
    )
    started = time.monotonic()
    stop = dockerd.run("stop", "-t", "30", "anki")
    assert stop.returncode == 0
    assert time.monotonic() - started < 25  # stopped by SIGTERM, not killed at the timeout
    state = dockerd.run("inspect", "-f", "{{.State.ExitCode}}", "anki").stdout.strip()
    assert state == "0"
    check = dockerd.run(
        "run", "--rm", "-v", "anki-data:/data", "--entrypoint", "python3", IMAGE, "-c",
        "import os, pathlib; from ankisyncd.storage.sqlite import connect;"
        "c = connect(pathlib.Path('/data/alice/collection.anki2'));"
        "print(c.execute('pragma integrity_check').fetchone()[0],"
        " c.execute('select count() from notes').fetchone()[0],"
        " sorted(os.listdir('/data/alice/media')))",
    )  # fmt: skip
    assert check.stdout.strip() == "ok 23 ['clip.mp3', 'note.txt']"

    dockerd.run("start", "anki")
    wait_healthy(dockerd, "anki")
    b = Device(tmp_path / "b")
    b.login("alice", "pw-from-a-secret", url)
    ok(b.run({"op": "full_download"}, {"op": "sync_media"}))
    assert len(b.dump()["notes"]) == 23
    assert b.step("media_files") == a.step("media_files")
    bob = Device(tmp_path / "bob")
    assert "hkey" in bob.login("bob", "pw", url)
    dockerd.run("stop", "-t", "30", "anki")


def compose_project(folder: Path, source: str, port: str) -> Path:
    """Our compose file, made to run here: no published ports (no bridge network on these
    machines), the host's network, the test image, quick health checks."""
    spec = yaml.safe_load((ROOT / source).read_text())
    service = spec["services"]["ankisyncd"]
    assert service["restart"] == "unless-stopped"
    assert service["healthcheck"]["test"][1:3] == ["ankisyncd", "health"]
    assert int(service["stop_grace_period"].rstrip("s")) > 10  # our own shutdown takes 10 s
    assert "ankisyncd-data:/data" in service["volumes"]
    del service["ports"]
    service.update(image=IMAGE, network_mode="host")
    service["environment"] = {**service["environment"], "ANKISYNCD_PORT": port}
    service["healthcheck"]["interval"] = "2s"
    (folder / "compose.yaml").write_text(yaml.safe_dump(spec))
    return folder / "compose.yaml"


@pytest.mark.parametrize("source", ["compose.yaml", "compose.https.yaml"])
def test_compose_file_runs_the_server_with_its_volume(
    dockerd: Dockerd, tmp_path: Path, source: str
) -> None:
    port = str(free_port())
    project = compose_project(tmp_path, source, port)
    url, env = f"http://127.0.0.1:{port}/", {}
    if source == "compose.https.yaml":
        tls_init(tmp_path / "tls", "localhost", "127.0.0.1")
        for p in (tmp_path / "tls", *(tmp_path / "tls").iterdir()):
            os.chown(p, 10001, 10001)
        url, env = f"https://127.0.0.1:{port}/", {"SSL_CERT_FILE": str(tmp_path / "tls/ca.pem")}
    compose = ["docker-compose", "-p", "ankitest", "-f", str(project)]
    denv = {**os.environ, "DOCKER_HOST": f"unix://{dockerd.sock}"}
    try:
        subprocess.run([*compose, "up", "-d", "--no-build"], env=denv, check=True, timeout=300)
        wait_healthy(dockerd, "ankitest_ankisyncd_1")
        subprocess.run(
            [*compose, "exec", "-T", "ankisyncd", "ankisyncd", "user", "add", "alice",
             "--password-stdin"],
            env=denv, input=b"pw\n", check=True, timeout=120,
        )  # fmt: skip
        device = Device(tmp_path / "a", env=env)
        assert "hkey" in device.login("alice", "pw", url)
        ok(device.run({"op": "add_notes", "count": 2, "prefix": "c"}, {"op": "full_upload"}))
        subprocess.run([*compose, "stop"], env=denv, check=True, timeout=120)
        state = dockerd.run("inspect", "-f", "{{.State.ExitCode}}", "ankitest_ankisyncd_1")
        assert state.stdout.strip() == "0"
    finally:
        subprocess.run([*compose, "down", "-v"], env=denv, timeout=300, capture_output=True)
