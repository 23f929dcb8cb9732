"""``Settings``: the settings of every area in one frozen value, plus what ``load`` adds."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ankisyncd.config.admin import AdminSettings
from ankisyncd.config.limits import LimitSettings
from ankisyncd.config.server import ServerSettings
from ankisyncd.config.storage import StorageSettings
from ankisyncd.config.tls import TlsSettings
from ankisyncd.config.values import Secret

ENV_PREFIX = "ANKISYNCD_"


@dataclass(frozen=True)
class EnvUser:
    """A user defined the official server's way: ``SYNC_USERn=name:password``."""

    name: str
    secret: Secret  # a password, or a PHC hash when ``hashed``
    hashed: bool
    source: str  # e.g. "SYNC_USER1"


# Fields come in the order of the bases from last to first: storage, server, tls, limits, admin.
@dataclass(frozen=True, kw_only=True)
class Settings(AdminSettings, LimitSettings, TlsSettings, ServerSettings, StorageSettings):
    """Every setting of the server; see docs/configuration.md."""

    env_users: tuple[EnvUser, ...] = field(default=(), metadata={"internal": True})
    sources: Mapping[str, str] = field(default_factory=dict, metadata={"internal": True})


def setting_fields() -> list[dataclasses.Field[Any]]:
    """The user-facing settings, in declaration order."""
    return [f for f in dataclasses.fields(Settings) if not f.metadata.get("internal")]


def env_name(f: dataclasses.Field[Any]) -> str:
    return ENV_PREFIX + f.name.upper()
