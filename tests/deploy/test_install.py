"""Install paths (pip, pipx, wheel, sdist) and the systemd unit."""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ankisyncd import __version__
from tests.support.docs import documented
from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "ankisyncd.service"


def run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=900, **kwargs
    )  # type: ignore[call-overload]
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def serves(ankisyncd: Path, data: Path, env: dict[str, str] | None = None) -> str:
    """Start ``ankisyncd serve``, wait for /health, stop it with SIGTERM; returns its log."""
    port = free_port()
    env = {
        **os.environ,
        "ANKISYNCD_DATA_ROOT": str(data),
        "ANKISYNCD_PORT": str(port),
        "ANKISYNCD_CONFIG": "",
        **(env or {}),
    }
    proc = subprocess.Popen(
        [str(ankisyncd), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "did not start"
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
    # uvicorn ends by re-raising the signal once shut down: systemd counts that as a clean stop.
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert b"Finished server process" in out
    return out.decode()


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build = documented(
        "python -m build --sdist --wheel --outdir dist .",
        {"python": sys.executable, "dist": str(out), ".": str(ROOT)},
    )
    run(*build)
    return out


def fresh_venv(folder: Path) -> Path:
    run(sys.executable, "-m", "venv", folder)
    return folder / "bin"


@pytest.mark.parametrize("kind", ["wheel", "sdist", "source tree"])
def test_a_fresh_venv_installs_and_serves(dists: Path, tmp_path: Path, kind: str) -> None:
    bin_dir = fresh_venv(tmp_path / "venv")
    pip = {"pip": str(bin_dir / "pip")}
    if kind == "wheel":
        wheel = dists / "ankisyncd-0.1.0-py3-none-any.whl"
        assert wheel.is_file(), "docs/deploy.md names the wheel of the current version"
        named = {"dist/ankisyncd-0.1.0-py3-none-any.whl": str(wheel)}
        run(*documented("pip install dist/ankisyncd-0.1.0-py3-none-any.whl", {**pip, **named}))
    elif kind == "sdist":
        run(bin_dir / "pip", "install", "-q", next(dists.glob("*.tar.gz")))
    else:
        run(*documented("pip install .", {**pip, ".": str(ROOT)}))
    version = run(
        *documented("ankisyncd --version", {"ankisyncd": str(bin_dir / "ankisyncd")})
    ).stdout
    assert version.strip() == f"ankisyncd, version {__version__}"
    assert "Application startup complete" in serves(bin_dir / "ankisyncd", tmp_path / "data")


def test_pipx_installs_a_working_command(tmp_path: Path) -> None:
    env = {**os.environ, "PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "bin")}
    pipx = documented("pipx install .", {"pipx": [sys.executable, "-m", "pipx"], ".": str(ROOT)})
    run(*pipx, env=env)
    ankisyncd = tmp_path / "bin" / "ankisyncd"
    assert run(ankisyncd, "--version").stdout.strip() == f"ankisyncd, version {__version__}"
    assert "Application startup complete" in serves(ankisyncd, tmp_path / "data")


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze comes with Debian's systemd package"
    # verify checks that ExecStart exists: point it at this checkout's command.
    text = UNIT.read_text().replace(
        "/opt/ankisyncd/bin/ankisyncd", str(Path(sys.executable).parent / "ankisyncd")
    )
    (tmp_path / "ankisyncd.service").write_text(text)
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / "ankisyncd.service")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # unknown keys are only warned about


def test_systemd_unit_runs_as_a_dedicated_hardened_user_and_restarts() -> None:
    service = unit()["Service"]
    assert service["User"] == "ankisyncd"
    assert service["StateDirectory"] == "ankisyncd"
    assert service["Restart"] == "on-failure"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    for option in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp"):
        assert option in service


def test_systemd_units_command_and_environment_serve(tmp_path: Path) -> None:
    """What systemd would start: ExecStart with the unit's Environment= lines."""
    service = UNIT.read_text().split("[Service]")[1]
    env = {}
    for line in service.splitlines():
        if line.startswith("Environment="):
            key, _, value = line.removeprefix("Environment=").partition("=")
            env[key] = value.replace("/var/lib/ankisyncd", str(tmp_path / "state"))
    exec_start = unit()["Service"]["ExecStart"].split()
    assert exec_start[1:] == ["serve"]
    env["ANKISYNCD_CONFIG"] = ""  # /etc/ankisyncd/ankisyncd.conf does not exist here
    out = serves(Path(sys.executable).parent / "ankisyncd", tmp_path / "state", env)
    assert f"data_root = {tmp_path / 'state'}" in out
