"""The admin web pages: a second front end beside ``cli``, calling the same functions.

Off unless an admin password hash is configured; ``http.serve`` mounts it at ``/admin``.
"""

from __future__ import annotations

from ankisyncd.admin.app import build_admin

__all__ = ["build_admin"]
