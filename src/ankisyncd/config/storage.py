"""Settings of what is kept on disk: the data root, the auth database, snapshots, and the
free-space warning."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ankisyncd.config.values import meta, parse_count, parse_duration, parse_path, parse_positive


@dataclass(frozen=True, kw_only=True)
class StorageSettings:
    data_root: Path = field(
        metadata=meta(parse_path, "folder holding one sub-folder per user", "SYNC_BASE")
    )
    auth_db_path: Path = field(metadata=meta(parse_path, "SQLite database of users and host keys"))
    snapshot_interval: int = field(
        default=0,
        metadata=meta(
            parse_duration, "snapshot every changed collection this often (30m, 6h, 1d; 0: off)"
        ),
    )
    snapshot_keep_last: int = field(
        default=10, metadata=meta(parse_positive, "snapshots kept per user: the newest N")
    )
    snapshot_keep_daily: int = field(
        default=14,
        metadata=meta(parse_count, "also kept: the newest snapshot of each of the last D days"),
    )
    snapshot_max_megs: int = field(
        default=0,
        metadata=meta(parse_count, "disk cap on one user's snapshots in MiB (0: no cap)"),
    )
    low_space_megs: int = field(
        default=256,
        metadata=meta(
            parse_count,
            "warn (log, /health) when fewer MiB than this are free under data_root; 0: never",
        ),
    )

    @property
    def snapshot_root(self) -> Path:
        """Where snapshots are kept: one folder per user."""
        return self.data_root / ".ankisyncd" / "snapshots"
