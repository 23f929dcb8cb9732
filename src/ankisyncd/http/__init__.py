"""The HTTP edge: routes, wire framing, error responses. Only this package imports Starlette."""

from __future__ import annotations

from ankisyncd.http.app import build_app
from ankisyncd.http.serving import serve

__all__ = ["build_app", "serve"]
