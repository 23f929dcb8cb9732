"""Real ``anki`` clients: the newest from the test venv, older ones from cached venvs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

NEWEST = "26.9.3"
OLDER_V11 = "23.12.1"
LEGACY_V10 = "2.1.50"  # sync version 10: multipart + gzip, schema-11 full syncs
DRIVER = Path(__file__).with_name("anki_driver.py")
CACHE = Path(os.environ.get("ANKISYNCD_CLIENT_CACHE", Path.home() / ".cache/ankisyncd/clients"))


def client_python(version: str) -> str:
    """The interpreter of a venv with ``anki==version``; builds and caches it when missing."""
    if version == NEWEST:
        return sys.executable
    venv = CACHE / f"anki-{version}"
    python = venv / "bin" / "python"
    marker = venv / ".complete"
    if not marker.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"anki=={version}"],
            check=True,
            timeout=900,
        )
        marker.write_text(version)
    return str(python)


class Device:
    """One device: a collection folder synced by one client version."""

    def __init__(
        self, folder: Path, version: str = NEWEST, env: dict[str, str] | None = None
    ) -> None:
        self.folder = folder
        self.version = version
        self.python = client_python(version)
        self.env = env  # extra environment, e.g. SSL_CERT_FILE

    def trust(self, pem: str) -> None:
        """Give the client one extra trusted certificate (its custom-certificate setting)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "custom_certificate.pem").write_text(pem)

    def run(self, *steps: dict[str, Any]) -> list[dict[str, Any]]:
        result = subprocess.run(
            [self.python, str(DRIVER), str(self.folder), json.dumps(list(steps))],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **self.env} if self.env else None,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return list(json.loads(result.stdout.strip().splitlines()[-1]))

    def step(self, op: str, **args: Any) -> dict[str, Any]:
        return self.run({"op": op, **args})[0]

    def login(self, user: str, password: str, endpoint: str) -> dict[str, Any]:
        return self.step("login", user=user, password=password, endpoint=endpoint)

    def sync(self) -> dict[str, Any]:
        return self.step("sync")

    def dump(self) -> dict[str, Any]:
        return self.step("dump")


def ok(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``results`` of driver steps, after checking that none of them failed."""
    errors = [r for r in results if "error" in r]
    assert not errors, errors
    return results


def upload_notes(folder: Path, url: str, user: str, password: str, count: int) -> Device:
    """A device of ``user`` with ``count`` new notes, full-uploaded: the server then holds a
    collection the official client wrote."""
    device = Device(folder)
    device.login(user, password, url)
    device.run({"op": "add_notes", "count": count, "prefix": "x"}, {"op": "full_upload"})
    return device


if __name__ == "__main__":
    for older in (OLDER_V11, LEGACY_V10):
        print(f"anki {older}: {client_python(older)}")
