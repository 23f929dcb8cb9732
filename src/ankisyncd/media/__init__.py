"""The server side of media sync: per-user media folder and ``media.db``."""
