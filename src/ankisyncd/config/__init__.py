"""Settings: one table of fields drives parsing, ``config show`` and the docs.

The table is split by area (``storage``, ``server``, ``tls``, ``limits``, ``admin``), each a
frozen dataclass whose fields carry a parser, a help text and any official alias
(``values``); ``settings.Settings`` joins them. ``loading`` builds it from flags, environment
and config file; ``file`` finds, reads and edits that file.
"""

from __future__ import annotations

from ankisyncd.config.file import (
    config_file_path,
    default_config_path,
    read_config_file,
    set_file_value,
)
from ankisyncd.config.loading import describe, load, parse_env_users, read_file_variables
from ankisyncd.config.settings import ENV_PREFIX, EnvUser, Settings, env_name, setting_fields
from ankisyncd.config.values import IP_HEADER_SOURCES, LOG_FORMATS, LOG_LEVELS, IpNetwork, Secret

__all__ = [
    "ENV_PREFIX",
    "IP_HEADER_SOURCES",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "EnvUser",
    "IpNetwork",
    "Secret",
    "Settings",
    "config_file_path",
    "default_config_path",
    "describe",
    "env_name",
    "load",
    "parse_env_users",
    "read_config_file",
    "read_file_variables",
    "set_file_value",
    "setting_fields",
]
