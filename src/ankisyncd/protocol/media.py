"""Media sync messages and the ``{"data": …, "err": ""}`` envelope."""

from __future__ import annotations

from typing import Any

from ankisyncd.errors import BadRequest
from ankisyncd.protocol.limits import MAX_MEDIA_FILES, SMALL
from ankisyncd.protocol.wirejson import I32, encode_json, expect_int, expect_object, parse_json


def envelope(data: Any) -> bytes:
    """Wrap a media answer; ``err`` is always sent, as old clients read it unconditionally."""
    return encode_json({"data": data, "err": ""})


def _obj(body: bytes) -> dict[str, Any]:
    return expect_object(parse_json(body, SMALL.values), "body")


def parse_begin(body: bytes) -> str:
    """The client version from a ``begin`` body; it must not be empty."""
    version = _obj(body).get("v")
    if not isinstance(version, str) or not version:
        raise BadRequest("missing client version")
    return version


def parse_media_changes(body: bytes) -> int:
    return expect_int(_obj(body).get("lastUsn"), I32, "lastUsn")


def parse_download_files(body: bytes) -> list[str]:
    files = _obj(body).get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise BadRequest("invalid json: 'files' must be a list of names")
    if len(files) > MAX_MEDIA_FILES:
        raise BadRequest(f"more than {MAX_MEDIA_FILES} files requested")
    return files


def parse_media_sanity(body: bytes) -> int:
    return expect_int(_obj(body).get("local"), (0, (1 << 32) - 1), "local")
