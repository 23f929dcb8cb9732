"""Fixtures shared by the deployment tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tls import tls_init


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    """A CA and a server certificate for localhost and 127.0.0.1, by ``ankisyncd tls init``."""
    tls_init(tmp_path / "tls", "localhost", "127.0.0.1")
    return tmp_path / "tls"
