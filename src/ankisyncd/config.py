"""Settings: one table of fields drives parsing, ``config show`` and the docs.

Precedence: CLI flag > environment > config file > default. ``load`` is pure: it takes
mappings and never reads ``os.environ`` or the disk itself, except the config file it is given.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ankisyncd.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_PREFIX = "ANKISYNCD_"
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


class Secret(str):
    """A string whose repr never shows its value."""

    def __repr__(self) -> str:
        return "Secret('**********')"


@dataclass(frozen=True)
class EnvUser:
    """A user defined the official server's way: ``SYNC_USERn=name:password``."""

    name: str
    secret: Secret  # a password, or a PHC hash when ``hashed``
    hashed: bool
    source: str  # e.g. "SYNC_USER1"


def _default_data_root(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME", "~")) / ".local/share")
    return Path(base).expanduser() / "ankisyncd"


def _parse_port(text: str) -> int:
    port = _parse_int(text)
    if not 0 <= port <= 65535:
        raise ValueError(f"{text!r} is not a port number (0-65535)")
    return port


def _parse_int(text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None


def _parse_positive(text: str) -> int:
    megs = _parse_int(text)
    if megs < 1:
        raise ValueError(f"{text!r} must be at least 1")
    return megs


def _parse_seconds(text: str) -> float:
    try:
        seconds = float(str(text).strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not 0 < seconds <= 86400:
        raise ValueError(f"{text!r} must be more than 0 and at most 86400 seconds")
    return seconds


def _parse_count(text: str) -> int:
    count = _parse_int(text)
    if count < 0:
        raise ValueError(f"{text!r} must not be negative")
    return count


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _parse_duration(text: str) -> int:
    """Seconds from ``90``, ``90s``, ``30m``, ``6h`` or ``1d``; 0 means off."""
    value = str(text).strip().lower()
    unit = _UNITS.get(value[-1:], 0)
    number = value[:-1] if unit else value
    try:
        seconds = int(number) * (unit or 1)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration (e.g. 3600, 30m, 6h, 1d)") from None
    if seconds < 0:
        raise ValueError(f"{text!r} must not be negative")
    return seconds


# The official server's SYNC_IP_HEADER values; ConnectInfo (the connection's peer) is its default.
IP_HEADER_SOURCES = (
    "ConnectInfo",
    "RightmostXForwardedFor",
    "XRealIp",
    "CfConnectingIp",
    "TrueClientIp",
    "FlyClientIp",
    "RightmostForwarded",
    "CloudFrontViewerAddress",
)


def _parse_ip_header(text: str) -> str:
    value = str(text).strip()
    if value not in IP_HEADER_SOURCES:
        raise ValueError(f"{text!r} is not one of {', '.join(IP_HEADER_SOURCES)}")
    return value


def _parse_networks(text: str) -> tuple[IpNetwork, ...]:
    try:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in str(text).split(",")
            if part.strip()
        )
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None


def _parse_level(text: str) -> str:
    level = str(text).strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


def _parse_host(text: str) -> str:
    host = str(text).strip()
    if not host:
        raise ValueError("an empty host")
    return host


def _parse_path(text: str) -> Path:
    if not str(text).strip():
        raise ValueError("an empty path")
    return Path(str(text)).expanduser()


def _parse_admin_hash(text: str) -> Secret:
    # Only argon2: the hash is made by ``ankisyncd admin set-password``; checked fully at start.
    phc = str(text).strip()
    if not phc.startswith("$argon2"):
        raise ValueError("not an argon2 PHC string (make one with `ankisyncd admin set-password`)")
    return Secret(phc)


def _parse_log_format(text: str) -> str:
    value = str(text).strip().lower()
    if value not in LOG_FORMATS:
        raise ValueError(f"{text!r} is not one of {', '.join(LOG_FORMATS)}")
    return value


def _parse_token(text: str) -> Secret:
    token = str(text).strip()
    if len(token) < 16 or any(c.isspace() for c in token):
        raise ValueError("a metrics token needs at least 16 characters and no spaces")
    return Secret(token)


def _parse_minutes(text: str) -> int:
    minutes = _parse_int(text)
    if not 1 <= minutes <= 7 * 24 * 60:
        raise ValueError(f"{text!r} must be between 1 and 10080 (a week)")
    return minutes


def _meta(parse: Callable[[str], Any], help: str, alias: str | None = None) -> dict[str, Any]:
    return {"parse": parse, "help": help, "alias": alias}


@dataclass(frozen=True)
class Settings:
    """Every setting of the server; see docs/configuration.md."""

    data_root: Path = field(
        metadata=_meta(_parse_path, "folder holding one sub-folder per user", "SYNC_BASE")
    )
    auth_db_path: Path = field(
        metadata=_meta(_parse_path, "SQLite database of users and host keys")
    )
    host: str = field(
        default="127.0.0.1", metadata=_meta(_parse_host, "address to listen on", "SYNC_HOST")
    )
    port: int = field(
        default=27701, metadata=_meta(_parse_port, "TCP port to listen on", "SYNC_PORT")
    )
    log_level: str = field(
        default="info", metadata=_meta(_parse_level, "debug, info, warning or error")
    )
    max_sync_payload_megs: int = field(
        default=100,
        metadata=_meta(
            _parse_positive,
            "L in MiB: legacy forms up to L, full uploads and media zips decompressed to 3 x L",
            "MAX_SYNC_PAYLOAD_MEGS",
        ),
    )
    tls_cert: Path | None = field(
        default=None,
        metadata=_meta(
            _parse_path, "PEM certificate chain: serve HTTPS (reloaded when it changes)"
        ),
    )
    tls_key: Path | None = field(
        default=None, metadata=_meta(_parse_path, "PEM private key of tls_cert")
    )
    max_json_megs: int = field(
        default=16,
        metadata=_meta(
            _parse_positive, "MiB a start, applyChanges or applyChunk body may decompress to"
        ),
    )
    header_timeout: float = field(
        default=30.0,
        metadata=_meta(_parse_seconds, "seconds to receive a request's line and headers"),
    )
    body_timeout: float = field(
        default=90.0,
        metadata=_meta(_parse_seconds, "seconds a request body may go without any byte arriving"),
    )
    # Above the client's connection-pool idle timeout (hyper/reqwest: 90 s), so a client never
    # reuses a connection at the moment the server closes it (e.g. after a full-sync prompt).
    keep_alive_timeout: float = field(
        default=120.0,
        metadata=_meta(_parse_seconds, "seconds an idle connection is kept between requests"),
    )
    ip_header: str = field(
        default="ConnectInfo",
        metadata=_meta(
            _parse_ip_header,
            "where the client address comes from (a proxy header)",
            "SYNC_IP_HEADER",
        ),
    )
    trusted_proxies: tuple[IpNetwork, ...] = field(
        default=(),
        metadata=_meta(_parse_networks, "comma-separated proxy addresses or networks"),
    )
    max_connections: int = field(
        default=1000,
        metadata=_meta(_parse_positive, "open connections (and requests) before answering 503"),
    )
    snapshot_interval: int = field(
        default=0,
        metadata=_meta(
            _parse_duration, "snapshot every changed collection this often (30m, 6h, 1d; 0: off)"
        ),
    )
    snapshot_keep_last: int = field(
        default=10, metadata=_meta(_parse_positive, "snapshots kept per user: the newest N")
    )
    snapshot_keep_daily: int = field(
        default=14,
        metadata=_meta(_parse_count, "also kept: the newest snapshot of each of the last D days"),
    )
    snapshot_max_megs: int = field(
        default=0,
        metadata=_meta(_parse_count, "disk cap on one user's snapshots in MiB (0: no cap)"),
    )
    admin_password_hash: Secret | None = field(
        default=None,
        metadata=_meta(
            _parse_admin_hash, "argon2 hash of the admin password: enables the /admin/ page"
        ),
    )
    admin_host: str | None = field(
        default=None,
        metadata=_meta(_parse_host, "serve the admin page on this address only (with admin_port)"),
    )
    admin_port: int | None = field(
        default=None,
        metadata=_meta(_parse_port, "serve the admin page on this port only, not on port"),
    )
    admin_session_minutes: int = field(
        default=60, metadata=_meta(_parse_minutes, "admin logins expire after this many minutes")
    )
    log_format: str = field(
        default="text", metadata=_meta(_parse_log_format, "text (for a console) or json")
    )
    metrics_token: Secret | None = field(
        default=None,
        metadata=_meta(_parse_token, "require 'Authorization: Bearer <token>' for /metrics"),
    )
    low_space_megs: int = field(
        default=256,
        metadata=_meta(
            _parse_count,
            "warn (log, /health) when fewer MiB than this are free under data_root; 0: never",
        ),
    )
    login_threads: int = field(
        default=0,
        metadata=_meta(_parse_count, "threads checking passwords (64 MiB each); 0: one per core"),
    )
    login_failures_per_address: int = field(
        default=20,
        metadata=_meta(
            _parse_count, "failed logins from one address before it must wait; 0: no limit"
        ),
    )
    login_failures_per_user: int = field(
        default=10,
        metadata=_meta(
            _parse_count, "failed logins for one user name before it must wait; 0: no limit"
        ),
    )
    login_throttle_seconds: float = field(
        default=300.0,
        metadata=_meta(_parse_seconds, "time in which a full failure count is forgiven"),
    )
    max_open_users: int = field(
        default=100,
        metadata=_meta(_parse_positive, "users whose databases stay open between requests"),
    )
    user_idle_seconds: float = field(
        default=300.0,
        metadata=_meta(_parse_seconds, "idle time after which a user's databases are closed"),
    )
    sync_idle_seconds: float = field(
        default=300.0,
        metadata=_meta(_parse_seconds, "idle time after which an unfinished sync is rolled back"),
    )
    env_users: tuple[EnvUser, ...] = field(default=(), metadata={"internal": True})
    sources: Mapping[str, str] = field(default_factory=dict, metadata={"internal": True})

    @property
    def max_payload_bytes(self) -> int:
        """L in bytes."""
        return self.max_sync_payload_megs * 1024 * 1024

    @property
    def snapshot_root(self) -> Path:
        """Where snapshots are kept: one folder per user."""
        return self.data_root / ".ankisyncd" / "snapshots"

    @property
    def max_decompressed_bytes(self) -> int:
        """The cap on a decompressed request body: 3 x L, as the official server uses."""
        return 3 * self.max_payload_bytes


def setting_fields() -> list[dataclasses.Field[Any]]:
    """The user-facing settings, in declaration order."""
    return [f for f in dataclasses.fields(Settings) if not f.metadata.get("internal")]


def env_name(f: dataclasses.Field[Any]) -> str:
    return ENV_PREFIX + f.name.upper()


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
