"""Media file names: what may be stored, and where it lives on disk."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from ankisyncd.storage.collection import TEMP_PREFIX

MAX_NAME_BYTES = 255


class BadName(ValueError):
    """A name that must not reach the filesystem; the whole request is refused."""


def check_name(name: str, *, deletion: bool = False) -> str:
    """Return ``name`` if it is safe to store (or, with ``deletion``, to delete), else raise.

    Refused everywhere: empty, ``.``, ``..``, ``/``, NUL, longer than 255 bytes, not NFC, and
    names of the server's temporary files (which live in the media folder).
    Additions also refuse ``\\`` and control characters, which no current client produces;
    deletions of such names are accepted, because data moved from the official server can
    hold them and clients then send their deletion.
    """
    if not isinstance(name, str) or name in ("", ".", ".."):
        raise BadName(f"invalid media name {name!r}")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise BadName(f"media name {name!r} is not valid unicode") from None
    if len(encoded) > MAX_NAME_BYTES:
        raise BadName(f"media name longer than {MAX_NAME_BYTES} bytes")
    if "/" in name or "\x00" in name:
        raise BadName(f"media name {name!r} contains a path separator or NUL")
    if unicodedata.normalize("NFC", name) != name:
        raise BadName(f"media name {name!r} is not NFC")
    if name.startswith(TEMP_PREFIX):
        raise BadName(f"media name {name!r} is reserved for the server's temporary files")
    if not deletion and ("\\" in name or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)):
        raise BadName(f"media name {name!r} contains a backslash or control character")
    return name


def media_path(media_dir: Path, name: str) -> str:
    """The path of a checked name, confined to ``media_dir`` (a string: pathlib would cost
    a tenth of the work per file in a media batch)."""
    folder = str(media_dir)
    path = os.path.join(folder, name)
    if os.path.dirname(path) != folder:
        raise BadName(f"media name {name!r} leaves the media folder")
    return path
