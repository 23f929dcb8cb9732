"""Building ``Settings`` from CLI flags, the environment (``ANKISYNCD_*``, the official
server's ``SYNC_*`` names, ``_FILE`` variables) and the config file's values; describing them.

Precedence: CLI flag > environment > config file > default. ``load`` is pure: it takes
mappings and never reads ``os.environ`` or the disk itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ankisyncd.config.settings import ENV_PREFIX, EnvUser, Settings, env_name, setting_fields
from ankisyncd.config.values import Secret
from ankisyncd.errors import ConfigError


def load(
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    file_values: Mapping[str, Any] | None = None,
    file_path: str | None = None,
) -> Settings:
    """Build Settings from CLI flags, environment and config-file values; validate each."""
    file_values = file_values or {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for f in setting_fields():
        candidates: list[tuple[str, Any]] = []
        if flags.get(f.name) is not None:
            candidates.append((f"--{f.name.replace('_', '-')}", flags[f.name]))
        if env_name(f) in environ:
            candidates.append((env_name(f), environ[env_name(f)]))
        alias = f.metadata["alias"]
        if alias and alias in environ:
            candidates.append((alias, environ[alias]))
        if f.name in file_values:
            candidates.append((f"{file_path or 'config file'}: {f.name}", file_values[f.name]))
        if not candidates:
            continue
        source, raw = candidates[0]
        try:
            values[f.name] = f.metadata["parse"](raw if isinstance(raw, str) else str(raw))
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        sources[f.name] = source
    if "data_root" not in values:
        values["data_root"] = _default_data_root(environ)
        sources["data_root"] = "default"
    if "auth_db_path" not in values:
        values["auth_db_path"] = values["data_root"] / ".ankisyncd" / "auth.db"
        sources["auth_db_path"] = "default (inside data_root)"
    if ("tls_cert" in values) != ("tls_key" in values):
        given, missing = (
            ("tls_cert", "tls_key") if "tls_cert" in values else ("tls_key", "tls_cert")
        )
        raise ConfigError(f"{sources[given]}: {given} needs {missing} as well")
    if "admin_host" in values and "admin_port" not in values:
        raise ConfigError(f"{sources['admin_host']}: admin_host needs admin_port as well")
    for f in setting_fields():
        sources.setdefault(f.name, "default")
    return Settings(**values, env_users=parse_env_users(environ), sources=sources)


def read_file_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with each ``NAME_FILE`` replaced by ``NAME`` = the file's text.

    Docker and systemd hand secrets over as files; this covers ``ANKISYNCD_*`` and the official
    server's variables. One trailing newline is dropped. Setting both forms is an error.
    """
    out = dict(environ)
    for key, path in environ.items():
        name = key.removesuffix("_FILE")
        if name == key or not _file_capable(name):
            continue
        if name in environ:
            raise ConfigError(f"{key} (env): {name} is set as well; set only one of them")
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            raise ConfigError(f"{key} (env): cannot read {path!r}: {exc}") from None
        out[name] = text.removesuffix("\n").removesuffix("\r")
        del out[key]
    return out


def _file_capable(name: str) -> bool:
    aliases = {f.metadata["alias"] for f in setting_fields()} - {None}
    return (
        name.startswith(ENV_PREFIX)
        or name in aliases
        or name == "PASSWORDS_HASHED"
        or (name.startswith("SYNC_USER") and name[len("SYNC_USER") :].isdigit())
    )


def parse_env_users(environ: Mapping[str, str]) -> tuple[EnvUser, ...]:
    """Read SYNC_USER1..N like the official server: the list ends at the first missing number."""
    hashed = "PASSWORDS_HASHED" in environ
    users: list[EnvUser] = []
    index = 1
    while (name := f"SYNC_USER{index}") in environ:
        user, sep, secret = environ[name].partition(":")
        if not sep:
            raise ConfigError(f"{name} (env): should be in 'username:password' format")
        users.append(EnvUser(user, Secret(secret), hashed, name))
        index += 1
    return tuple(users)


def describe(settings: Settings) -> list[tuple[str, str, str]]:
    """(name, value, source) rows for ``config show`` and the start-up log."""
    rows = [
        (f.name, _shown(getattr(settings, f.name)), settings.sources[f.name])
        for f in setting_fields()
    ]
    for user in settings.env_users:
        kind = "PHC hash" if user.hashed else "password"
        rows.append((f"user {user.name}", f"{kind} {user.secret!r}", user.source))
    return rows


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, Secret) else str(value)


def _default_data_root(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME", "~")) / ".local/share")
    return Path(base).expanduser() / "ankisyncd"
