"""Commands of docs/deploy.md, run by the tests with example values swapped for test ones.

``documented(line, replace)`` fails unless ``line`` is a command of the page, and returns it as
an argument list with tokens replaced (a token may become several, or none). A docs test checks
that every command of the page is named by some ``documented("…")`` call in the tests.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_MD = ROOT / "docs" / "deploy.md"
# The test machines have no systemd running: the unit file is verified instead.
NOT_RUN_SECTIONS = ("## systemd",)


def doc_commands() -> list[str]:
    """Every line of the ``sh`` blocks, outside the sections that cannot run here."""
    commands, section, in_block = [], "", False
    for line in DEPLOY_MD.read_text().splitlines():
        if line.startswith("## "):
            section = line
        elif line.startswith("```"):
            in_block = line == "```sh"
        elif in_block and line.strip() and not section.startswith(NOT_RUN_SECTIONS):
            commands.append(line.strip())
    return commands


def documented(line: str, replace: Mapping[str, str | Sequence[str]] | None = None) -> list[str]:
    assert line in doc_commands(), f"not a command of docs/deploy.md: {line}"
    argv: list[str] = []
    for token in shlex.split(line):
        new = (replace or {}).get(token, token)
        argv += [new] if isinstance(new, str) else list(new)
    return argv


def referenced_commands(tests: Path) -> set[str]:
    """The lines named by ``documented("…")`` calls in the test sources."""
    found = set()
    for path in tests.rglob("*.py"):
        text = path.read_text()
        found.update(m[1] for m in re.findall(r"""documented\(\s*(["'])(.+?)\1""", text))
    return found
