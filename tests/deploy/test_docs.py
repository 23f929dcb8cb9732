"""docs/deploy.md shows only commands the tests run, and the README points to it."""

from __future__ import annotations

from tests.support.docs import ROOT, doc_commands, referenced_commands


def test_every_command_of_the_deploy_page_is_run_by_a_test() -> None:
    commands = doc_commands()
    assert len(commands) > 15
    missing = set(commands) - referenced_commands(ROOT / "tests")
    assert not missing, f"commands in docs/deploy.md that no test runs: {sorted(missing)}"


def test_readme_points_to_the_deploy_page() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docs/deploy.md" in readme
    for line in ("pipx install .", "ankisyncd tls init --dir ./tls"):
        assert line in readme
