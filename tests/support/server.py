"""Run ankisyncd (or the official server) as a real process on a loopback port."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from ankisyncd.storage.locks import COLLECTION_LOCK, MEDIA_LOCK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OfficialServer:
    """The official server from the ``anki`` package, for reference runs of the same scenario."""

    def __init__(self, data_root: Path, users: dict[str, str]) -> None:
        self.data_root = data_root
        self.port = free_port()
        self.log_path = data_root.parent / f"{data_root.name}-official.log"
        self.env = {
            **os.environ,
            "SYNC_BASE": str(data_root),
            "SYNC_HOST": "127.0.0.1",
            "SYNC_PORT": str(self.port),
        }
        for i, (name, password) in enumerate(users.items(), 1):
            self.env[f"SYNC_USER{i}"] = f"{name}:{password}"
        self.proc: subprocess.Popen[bytes] | None = None

    url = property(lambda self: f"http://127.0.0.1:{self.port}/")

    def add_user(self, name: str, password: str) -> None:
        assert self.env.get("SYNC_USER1") == f"{name}:{password}", "users are fixed at start"

    def start(self) -> OfficialServer:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "anki.syncserver"], env=self.env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "health", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("official server did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class ServerProcess:
    """ankisyncd in a subprocess, with its own data root; can be stopped and started again."""

    def __init__(self, data_root: Path, env: Mapping[str, str] | None = None) -> None:
        self.data_root = data_root
        self.port = free_port()
        self.url_host = "127.0.0.1"  # the host clients put in their URL
        self.command = [sys.executable, "-m", "ankisyncd", "serve"]
        self.log_path = data_root.parent / f"{data_root.name}-server.log"
        self.env = {
            **os.environ,
            "ANKISYNCD_DATA_ROOT": str(data_root),
            "ANKISYNCD_HOST": "127.0.0.1",
            "ANKISYNCD_PORT": str(self.port),
            "ANKISYNCD_CONFIG": "",
            **(env or {}),
        }
        self.preexec: Callable[[], None] | None = None  # run in the child before exec
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def https(self) -> bool:
        return bool(self.env.get("ANKISYNCD_TLS_CERT")) or "--tls-cert" in self.command

    @property
    def url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.url_host}:{self.port}/"

    def _get_health(self, timeout: float) -> int:
        """Status of /health; over https without checking the certificate (liveness only)."""
        context = None
        if self.https:
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        url = self.url.replace(self.url_host, "127.0.0.1") + "health"
        with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:
            return int(resp.status)

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``ankisyncd ARGS`` against this server's configuration."""
        return subprocess.run(
            [sys.executable, "-m", "ankisyncd", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def add_user(self, name: str, password: str) -> None:
        result = self.cli("user", "add", name, "--password-stdin", stdin=password + "\n")
        assert result.returncode == 0, result.stderr

    def start(self) -> ServerProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=log, preexec_fn=self.preexec
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if self._get_health(timeout=1) == 200:
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def alive(self) -> bool:
        try:
            return self._get_health(timeout=2) == 200
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text()


def hash_tree(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``.

    Left out: SQLite's ``-shm`` index (shared memory, not data), empty ``-wal`` files,
    which exist while a connection is open and hold nothing, the empty per-user lock files,
    and the auth database (``.ankisyncd/``), which notes when devices were last seen.
    """
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and not p.name.endswith("-shm")
        and not (p.name.endswith("-wal") and p.stat().st_size == 0)
        and p.name not in (COLLECTION_LOCK, MEDIA_LOCK)
        and ".ankisyncd" not in p.relative_to(root).parts
    }


@contextlib.contextmanager
def serving(
    data_root: Path, env: Mapping[str, str] | None = None, users: Mapping[str, str] | None = None
) -> Iterator[ServerProcess]:
    """A started ServerProcess with ``users`` (name: password), stopped on exit."""
    server = ServerProcess(data_root, env).start()
    try:
        for name, password in (users or {}).items():
            server.add_user(name, password)
        yield server
    finally:
        server.stop()
