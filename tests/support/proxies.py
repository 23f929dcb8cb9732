"""Caddy and nginx (Debian's packages) run by the tests with the recipes in deploy/.

The recipes name example hosts, port 443, certbot's paths and ankisyncd on 127.0.0.1:27701; the
tests substitute loopback ports, ``localhost`` (whole host) and ``127.0.0.1`` (the sub-path
site), and a certificate from ``ankisyncd tls init``. Nothing else in the recipes changes.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


class Proxy:
    def __init__(self, kind: str, folder: Path, upstream: int, tls: Path) -> None:
        self.kind, self.folder, self.upstream, self.tls = kind, folder, upstream, tls
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.log_path = folder / f"{kind}.log"

    whole_host = property(lambda self: f"https://localhost:{self.port}/")
    sub_path = property(lambda self: f"https://127.0.0.1:{self.port}/anki/")

    def render(self, drop: str | None = None) -> list[str]:
        """The recipe with this test's ports and certificate; returns the command to run it.
        ``drop`` removes every line containing that text (to show what a line is for)."""
        cert, key = self.tls / "server.pem", self.tls / "server.key"
        if self.kind == "caddy":
            text = (DEPLOY / "Caddyfile").read_text()
            text = text.replace(
                "anki.example.com {", f"localhost:{self.port} {{\n\ttls {cert} {key}"
            )
            text = re.sub(
                r"^example\.com \{",
                f"127.0.0.1:{self.port} {{\n\ttls {cert} {key}",
                text,
                flags=re.M,
            )
            text = text.replace("127.0.0.1:27701", f"127.0.0.1:{self.upstream}")
            storage = self.folder / "data"
            glob = (
                "{\n\tadmin off\n\tauto_https disable_redirects\n"
                f"\tstorage file_system {storage}\n}}\n"
            )
            conf = self.folder / "Caddyfile"
            conf.write_text(glob + _drop(text, drop))
            return ["caddy", "run", "--config", str(conf), "--adapter", "caddyfile"]
        text = (DEPLOY / "nginx.conf").read_text()
        text = text.replace("listen 443 ssl", f"listen 127.0.0.1:{self.port} ssl")
        text = text.replace("server_name anki.example.com", "server_name localhost")
        text = text.replace("server_name example.com", "server_name 127.0.0.1")
        text = re.sub(r"/etc/letsencrypt/live/[^/]+/fullchain\.pem", str(cert), text)
        text = re.sub(r"/etc/letsencrypt/live/[^/]+/privkey\.pem", str(key), text)
        text = text.replace("/etc/nginx/ankisyncd-proxy.conf", str(DEPLOY / "ankisyncd-proxy.conf"))
        text = text.replace("127.0.0.1:27701", f"127.0.0.1:{self.upstream}")
        (self.folder / "site.conf").write_text(_drop(text, drop))
        f = self.folder
        (f / "tmp").mkdir(exist_ok=True)
        main = (
            f"user root;\nworker_processes 1;\npid {f / 'nginx.pid'};\n"
            f"error_log {f / 'error.log'};\n"
            "events {}\nhttp {\n"
            f"  access_log {f / 'access.log'};\n"
            f"  client_body_temp_path {f / 'tmp'};\n  proxy_temp_path {f / 'tmp'};\n"
            f"  include {f / 'site.conf'};\n}}\n"
        )
        (f / "nginx.conf").write_text(main)
        return ["nginx", "-p", str(f), "-c", str(f / "nginx.conf"), "-g", "daemon off;"]

    def start(self, drop: str | None = None) -> Proxy:
        command = self.render(drop)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=log, cwd=self.folder)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited: {self.log_path.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.kind} did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def _drop(text: str, drop: str | None) -> str:
    if not drop:
        return text
    return "".join(line for line in text.splitlines(True) if drop not in line)
