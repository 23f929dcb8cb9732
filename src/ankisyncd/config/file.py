"""The TOML config file: where it is, reading it, and setting one value in it."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ankisyncd.config.settings import ENV_PREFIX, setting_fields
from ankisyncd.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def default_config_path(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    return Path(base).expanduser() / "ankisyncd" / "ankisyncd.conf"


def config_file_path(flag_path: str | None, environ: Mapping[str, str]) -> tuple[Path, str | None]:
    """The config file to read, and what named it (None: the default path, which may be absent)."""
    if flag_path:
        return Path(flag_path).expanduser(), "--config"
    if environ.get(ENV_PREFIX + "CONFIG"):
        return Path(environ[ENV_PREFIX + "CONFIG"]).expanduser(), "ANKISYNCD_CONFIG"
    return default_config_path(environ), None


def read_config_file(
    flag_path: str | None, environ: Mapping[str, str]
) -> tuple[dict[str, Any], str | None]:
    """Read the TOML config file; returns its values and its path (None when there is none)."""
    path, explicit = config_file_path(flag_path, environ)
    if not path.is_file():
        if explicit:
            raise ConfigError(f"{explicit}: config file {str(path)!r} does not exist")
        return {}, None
    try:
        with path.open("rb") as fh:
            values = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {str(path)!r}: {exc}") from exc
    known = {f.name for f in setting_fields()}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"config file {str(path)!r}: unknown setting {unknown[0]!r}")
    return values, str(path)


def set_file_value(path: Path, name: str, value: str) -> None:
    """Set top-level key ``name`` to the string ``value`` in the TOML file at ``path``.

    Replaces the key's line or appends one; creates the file (mode 0600) when missing. Other
    lines and comments are kept. The file must parse before and after.
    """
    lines: list[str] = []
    if path.exists():
        text = path.read_text(encoding="utf-8")
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {str(path)!r}: {exc}") from exc
        lines = text.splitlines()
    line = f"{name} = '{value}'"
    for i, old in enumerate(lines):
        if old.split("=", 1)[0].strip() == name:
            lines[i] = line
            break
    else:
        lines.append(line)  # every setting is top-level: the file has no tables to land in
    new_text = "\n".join(lines) + "\n"
    try:
        written = tomllib.loads(new_text).get(name)
    except tomllib.TOMLDecodeError:  # control characters, say
        written = None
    if written != value:  # a quote or a newline would end the literal string early
        raise ConfigError(f"{name}: the value cannot be written to a TOML file")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(new_text)
    if path.exists():
        os.chmod(tmp, path.stat().st_mode & 0o777)
    os.replace(tmp, path)
