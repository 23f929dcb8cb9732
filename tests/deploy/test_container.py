"""The container image, built from the Dockerfile on a Debian base, with a real client.

The docker commands are those of docs/deploy.md. Containers use the host's network (these
machines' dockerd runs without a bridge), so ``-p 27701:27701`` becomes ``--network host`` and a
free port.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.clients import Device, ok
from tests.support.docker import (
    ROOT,
    Dockerd,
    build_context,
    build_image,
    image_size,
    import_base,
    wait_healthy,
)
from tests.support.docs import documented
from tests.support.server import free_port
from tests.support.tls import tls_init

IMAGE = "ankisyncd"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    daemon = Dockerd().start()
    try:
        base = import_base(daemon)
        build_image(daemon, build_context(tmp_path_factory.mktemp("context")), base)
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def container(dockerd: Dockerd) -> Iterator[str]:
    yield "ankisyncd"
    dockerd.run("rm", "-f", "ankisyncd", check=False)
    dockerd.run("volume", "rm", "ankisyncd-data", check=False)


def host_network(port: str) -> dict[str, Any]:
    return {
        "docker": [],
        "-p": ["--network", "host"],
        # The image checks every 30 s; the test needs less waiting.
        "27701:27701": ["-e", f"ANKISYNCD_PORT={port}", "--health-interval", "2s"],
    }


def test_image_adds_little_to_its_base_and_runs_as_non_root(
    dockerd: Dockerd, container: str
) -> None:
    added = image_size(dockerd, IMAGE) - image_size(dockerd, "ankisyncd-test-base:bookworm")
    print(f"image adds {added / MB:.1f} MB to its base")
    assert added < 40 * MB
    dockerd.run(
        *documented(
            "docker run -d --name ankisyncd -p 27701:27701 -v ankisyncd-data:/data ankisyncd",
            host_network(str(free_port())),
        )
    )
    wait_healthy(dockerd, container)
    assert dockerd.run("exec", container, "cat", "/proc/1/status").stdout.count("\t10001\t") >= 2
    assert dockerd.run("exec", container, "id", "-u").stdout.strip() == "10001"


def test_container_serves_a_real_client_and_keeps_data_across_stops(
    dockerd: Dockerd, container: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = str(free_port())
    monkeypatch.chdir(tmp_path)
    Path("user1").write_text("bob:pw-from-a-secret\n")
    Path("user1").chmod(0o644)
    dockerd.run(*documented("docker volume create ankisyncd-data", {"docker": []}))
    dockerd.run(
        *documented(
            'docker run -d --name ankisyncd -p 27701:27701 -v ankisyncd-data:/data -v "$PWD/user1:/run/secrets/user1:ro" -e SYNC_USER1_FILE=/run/secrets/user1 ankisyncd',  # noqa: E501
            {
                **host_network(port),
                "$PWD/user1:/run/secrets/user1:ro": f"{tmp_path}/user1:/run/secrets/user1:ro",
            },
        )
    )
    wait_healthy(dockerd, container)
    add = documented(
        "docker exec -i ankisyncd ankisyncd user add alice --password-stdin", {"docker": []}
    )
    assert "added user 'alice'" in dockerd.run(*add, stdin="pw\n").stdout

    url = f"http://127.0.0.1:{port}/"
    a = Device(tmp_path / "a")
    a.login("alice", "pw", url)
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
    dockerd.run(*documented("docker stop -t 30 ankisyncd", {"docker": []}))
    assert time.monotonic() - started < 25  # stopped by SIGTERM, not killed at the timeout
    assert dockerd.run("inspect", "-f", "{{.State.ExitCode}}", container).stdout.strip() == "0"
    check = dockerd.run(
        "run", "--rm", "-v", "ankisyncd-data:/data", "--entrypoint", "python3", IMAGE, "-c",
        "import os, pathlib; from ankisyncd.storage.sqlite import connect;"
        "c = connect(pathlib.Path('/data/alice/collection.anki2'));"
        "print(c.execute('pragma integrity_check').fetchone()[0],"
        " c.execute('select count() from notes').fetchone()[0],"
        " sorted(os.listdir('/data/alice/media')))",
    )  # fmt: skip
    assert check.stdout.strip() == "ok 23 ['clip.mp3', 'note.txt']"

    dockerd.run(*documented("docker start ankisyncd", {"docker": []}))
    wait_healthy(dockerd, container)
    b = Device(tmp_path / "b")
    b.login("alice", "pw", url)
    ok(b.run({"op": "full_download"}, {"op": "sync_media"}))
    assert len(b.dump()["notes"]) == 23
    assert b.step("media_files") == a.step("media_files")
    assert "hkey" in Device(tmp_path / "bob").login("bob", "pw-from-a-secret", url)
    dockerd.run("stop", "-t", "30", container)


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
    service["volumes"] = [v.replace("./tls", str(folder / "tls")) for v in service["volumes"]]
    (folder / "compose.yaml").write_text(yaml.safe_dump(spec))
    return folder / "compose.yaml"


@pytest.mark.parametrize("source", ["compose.yaml", "compose.https.yaml"])
def test_compose_file_runs_the_server_with_its_volume(
    dockerd: Dockerd, tmp_path: Path, source: str
) -> None:
    """Run with Debian's docker-compose (v1): ``docker compose`` (v2) is not packaged there."""
    port = str(free_port())
    project = compose_project(tmp_path, source, port)
    url, env = f"http://127.0.0.1:{port}/", {}
    if source == "compose.https.yaml":
        tls_init(tmp_path / "tls", "localhost", "127.0.0.1")
        for p in (tmp_path / "tls", *(tmp_path / "tls").iterdir()):
            os.chown(p, 10001, 10001)
        url, env = f"https://127.0.0.1:{port}/", {"SSL_CERT_FILE": str(tmp_path / "tls/ca.pem")}
    compose = {"docker": ["docker-compose", "-p", "ankitest", "-f", str(project)], "compose": []}
    denv = {**os.environ, "DOCKER_HOST": f"unix://{dockerd.sock}"}
    name = "ankitest_ankisyncd_1"

    def run(argv: list[str], stdin: bytes | None = None) -> None:
        subprocess.run(argv, env=denv, input=stdin, check=True, timeout=300)

    try:
        run(documented("docker compose up -d", {**compose, "-d": ["-d", "--no-build"]}))
        wait_healthy(dockerd, name)
        add = documented(
            "docker compose exec ankisyncd ankisyncd user add alice --password-stdin",
            {**compose, "exec": ["exec", "-T"]},
        )
        run(add, stdin=b"pw\n")
        device = Device(tmp_path / "a", env=env)
        assert "hkey" in device.login("alice", "pw", url)
        ok(device.run({"op": "add_notes", "count": 2, "prefix": "c"}, {"op": "full_upload"}))
        if source == "compose.https.yaml":
            tls_init(tmp_path / "tls", "localhost", "127.0.0.1")  # renewed, owned by root
            for p in (tmp_path / "tls").iterdir():
                os.chown(p, 10001, 10001)
            dockerd.run(
                *documented(
                    "docker kill -s HUP ankisyncd-ankisyncd-1",
                    {"docker": [], "ankisyncd-ankisyncd-1": name},
                )
            )
            deadline = time.monotonic() + 60
            while "tls: loaded certificate" not in dockerd.run("logs", name).stderr:
                assert time.monotonic() < deadline, "no reload after SIGHUP"
                time.sleep(0.5)
            assert "hkey" in Device(tmp_path / "b", env=env).login("alice", "pw", url)
        run(documented("docker compose stop", compose))
        state = dockerd.run("inspect", "-f", "{{.State.ExitCode}}", name)
        assert state.stdout.strip() == "0"
    finally:
        subprocess.run(
            ["docker-compose", "-p", "ankitest", "-f", str(project), "down", "-v"],
            env=denv, timeout=300, capture_output=True,
        )  # fmt: skip
