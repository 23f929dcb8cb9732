"""Media sync messages and the ``{"data": …, "err": ""}`` envelope."""

from __future__ import annotations

from typing import Any

from ankisyncd.errors import BadRequest
from ankisyncd.protocol.messages import encode_json, parse_json

I32 = (-(1 << 31), (1 << 31) - 1)
MAX_DOWNLOAD_NAMES = 25


def envelope(data: Any) -> bytes:
    """Wrap a media answer; ``err`` is always sent, as old clients read it unconditionally."""
    return encode_json({"data": data, "err": ""})


def _obj(body: bytes) -> dict[str, Any]:
    value = parse_json(body)
    if not isinstance(value, dict):
        raise BadRequest("invalid json: expected an object")
    return value


def _int(obj: dict[str, Any], key: str, low: int, high: int) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"invalid json: {key!r} must be an integer")
    return value


def parse_begin(body: bytes) -> str:
    """The client version from a ``begin`` body; it must not be empty."""
    version = _obj(body).get("v")
    if not isinstance(version, str) or not version:
        raise BadRequest("missing client version")
    return version


def parse_media_changes(body: bytes) -> int:
    return _int(_obj(body), "lastUsn", *I32)


def parse_download_files(body: bytes) -> list[str]:
    files = _obj(body).get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise BadRequest("invalid json: 'files' must be a list of names")
    if len(files) > MAX_DOWNLOAD_NAMES:
        raise BadRequest(f"more than {MAX_DOWNLOAD_NAMES} files requested")
    return files


def parse_media_sanity(body: bytes) -> int:
    return _int(_obj(body), "local", 0, (1 << 32) - 1)
