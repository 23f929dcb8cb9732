"""A raw v11 client for sending exactly the bytes a test wants (bad ones included)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import zstandard


def zstd(data: bytes) -> bytes:
    """Compress like the real client: a streamed frame that does not record its size."""
    out = zstandard.ZstdCompressor(write_content_size=False).compressobj()
    return out.compress(data) + out.flush()


def unzstd(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


class RawClient:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60)
        self.hkey = ""

    def close(self) -> None:
        self.http.close()

    def post(
        self,
        method: str,
        body: bytes,
        *,
        hkey: str | None = None,
        version: int = 11,
        header: str | None = None,
        compress: bool = True,
    ) -> httpx.Response:
        if header is None:
            header = json.dumps(
                {
                    "v": version,
                    "k": self.hkey if hkey is None else hkey,
                    "c": "test,1,linux",
                    "s": "skey1",
                }
            )
        return self.http.post(
            f"sync/{method}",
            content=zstd(body) if compress else body,
            headers={"anki-sync": header, "content-type": "application/octet-stream"},
        )

    def call(self, method: str, obj: Any, **kwargs: Any) -> Any:
        """Send JSON, expect 200, return the decoded JSON answer."""
        resp = self.post(method, json.dumps(obj).encode(), **kwargs)
        assert resp.status_code == 200, (resp.status_code, resp.text)
        body = unzstd(resp.content)
        assert int(resp.headers["anki-original-size"]) == len(body)
        return json.loads(body)

    def login(self, user: str, password: str) -> str:
        self.hkey = self.call("hostKey", {"u": user, "p": password})["key"]
        return self.hkey

    def upload(self, data: bytes) -> str:
        resp = self.post("upload", data)
        assert resp.status_code == 200, resp.status_code
        return unzstd(resp.content).decode()
