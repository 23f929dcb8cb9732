"""ankisyncd: a self-hosted sync server for Anki."""

__version__ = "0.1.0"
