"""Every setting is documented."""

from __future__ import annotations

from pathlib import Path

from ankisyncd.config import env_name, setting_fields

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_in_the_configuration_docs() -> None:
    text = DOCS.read_text()
    for f in setting_fields():
        assert f"`{f.name}`" in text
        assert f"`{env_name(f)}`" in text
        assert f"`--{f.name.replace('_', '-')}`" in text
        if f.metadata["alias"]:
            assert f"`{f.metadata['alias']}`" in text
