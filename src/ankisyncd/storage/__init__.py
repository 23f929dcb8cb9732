"""On-disk state: per-user folders, collection files, SQLite connections."""
