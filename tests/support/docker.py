"""A Docker daemon of the test's own, a base image made from Debian packages, and our image.

No registry is reachable here, so the base image is made with debootstrap (cached as a tarball
under ~/.cache/ankisyncd/, rebuilt when missing) and the image's Python packages come from
wheels built on the host (``--no-index --find-links``), as docs/deploy.md describes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.docs import documented

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path.home() / ".cache" / "ankisyncd"
BASE_TAR = CACHE / "docker-base-bookworm.tar"
BASE_IMAGE = "ankisyncd-test-base:bookworm"
DOCKER = "/usr/bin/docker"  # Debian's client matches Debian's daemon; a newer one may not
SUITE = "bookworm"
BASE_PACKAGES = "python3,python3-venv,binutils"


class Dockerd:
    """``dockerd`` with its own folders and socket, no network setup (containers use the host's)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ankd-docker-"))
        self.sock = self.dir / "sock"
        self.log_path = self.dir / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Dockerd:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    "dockerd",
                    f"--data-root={self.dir / 'data'}",
                    f"--exec-root={self.dir / 'exec'}",
                    f"--pidfile={self.dir / 'pid'}",
                    f"--host=unix://{self.sock}",
                    "--iptables=false",
                    "--ip6tables=false",
                    "--bridge=none",
                ],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited: {self.log_path.read_text()[-2000:]}")
            if self.sock.exists() and self.run("version", check=False).returncode == 0:
                return self
            time.sleep(0.2)
        raise RuntimeError("dockerd did not start")

    def run(
        self, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [DOCKER, "-H", f"unix://{self.sock}", *args],
            capture_output=True,
            text=True,
            input=stdin,
            timeout=timeout,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)}: {result.stderr[-3000:]}")
        return result

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        # dockerd leaves its network namespace mounted (and layers, if it died): unmount
        # everything under its folder, deepest first, before removing it.
        inside = str(self.dir) + "/"
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(inside)), key=len, reverse=True):
            subprocess.run(["umount", mount], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def base_tarball() -> Path:
    """A Debian root file system with python3 and venv, built once with debootstrap."""
    if BASE_TAR.exists():
        return BASE_TAR
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ankd-debootstrap-") as tmp:
        root = Path(tmp) / "root"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={BASE_PACKAGES}",
                SUITE,
                str(root),
                "http://deb.debian.org/debian",
            ],
            check=True,
            capture_output=True,
            timeout=1200,
        )
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for p in (root / junk).glob("*"):
                if p.is_file():
                    p.unlink()
        partial = BASE_TAR.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
        partial.replace(BASE_TAR)
    return BASE_TAR


def import_base(dockerd: Dockerd) -> str:
    tar = base_tarball()
    with tar.open("rb") as fh:
        subprocess.run(
            [DOCKER, "-H", f"unix://{dockerd.sock}", "import", "-", BASE_IMAGE],
            stdin=fh,
            check=True,
            capture_output=True,
            timeout=600,
        )
    return BASE_IMAGE


def build_context(folder: Path) -> Path:
    """The files a clone has for the build, plus a wheelhouse of every dependency."""
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, folder / name)
    shutil.copytree(ROOT / "src", folder / "src", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = folder / "wheelhouse"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--wheel-dir",
            str(wheels),
            str(ROOT),
            "hatchling",
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    for own in wheels.glob("ankisyncd-*.whl"):
        own.unlink()  # the image builds its own wheel from the source
    return folder


def build_image(dockerd: Dockerd, context: Path, base: str) -> str:
    """``docker build`` as docs/deploy.md shows it, with the offline build arguments."""
    dockerd.run(
        *documented(
            "docker build -t ankisyncd .",
            {
                "docker": [],
                "build": ["build", "-q"],
                ".": [
                    *("--build-arg", f"BASE_IMAGE={base}"),
                    *("--build-arg", "PIP_NO_INDEX=1"),
                    *("--build-arg", "PIP_FIND_LINKS=/src/wheelhouse"),
                    str(context),
                ],
            },
        ),
        timeout=1800,
    )
    return "ankisyncd"


def image_size(dockerd: Dockerd, image: str) -> int:
    return int(dockerd.run("image", "inspect", "-f", "{{.Size}}", image).stdout.strip())


def wait_healthy(dockerd: Dockerd, container: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = dockerd.run(
            "inspect", "-f", "{{.State.Status}} {{.State.Health.Status}}", container
        ).stdout.strip()
        if status == "running healthy":
            return
        if not status.startswith("running"):
            break
        time.sleep(0.5)
    logs = dockerd.run("logs", container, check=False)
    raise RuntimeError(f"{container} is {status!r}: {(logs.stdout + logs.stderr)[-3000:]}")
