"""What the commands share: the per-setting options, settings from flags, environment and
config file, reading a password, and failing with an exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from ankisyncd.config import (
    Settings,
    load,
    read_config_file,
    read_file_variables,
    setting_fields,
)
from ankisyncd.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


def setting_options(func: F) -> F:
    """Add one ``--<setting>`` option per field of Settings."""
    for f in reversed(setting_fields()):
        func = click.option(
            f"--{f.name.replace('_', '-')}", f.name, default=None, help=f.metadata["help"]
        )(func)
    return func


def settings(ctx: click.Context, flags: dict[str, Any]) -> Settings:
    """The settings in effect: these flags over the root command's, environment, file."""
    merged = {**ctx.find_root().meta.get("flags", {})}
    merged.update({k: v for k, v in flags.items() if v is not None})
    config_path = ctx.find_root().meta.get("config")
    try:
        environ = read_file_variables(os.environ)
        file_values, file_path = read_config_file(config_path, environ)
        return load(merged, environ, file_values, file_path)
    except ConfigError as exc:
        fail(str(exc), 2)


def writing_settings(ctx: click.Context) -> Settings:
    """The settings, for a command that writes under the data root: refused for root when
    another user owns the data root, since the files it made would be root's, and the server,
    running as that user, could then not open them."""
    current = settings(ctx, {})
    if os.geteuid() == 0:
        try:
            owner = current.data_root.stat().st_uid
        except FileNotFoundError:
            return current
        if owner != 0:
            name = _user_name(owner)
            fail(
                f"the data root {current.data_root} belongs to {name}, not root: run this as"
                f" {name} (sudo -u {name} ankisyncd ...), so that the server can still open"
                " what it writes",
                2,
            )
    return current


def _user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
