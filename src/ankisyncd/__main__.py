"""Entry point for ``python -m ankisyncd``."""

from ankisyncd.cli import main

if __name__ == "__main__":
    main()
