"""The configuration page lists every setting, so it cannot silently fall behind."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from corral.core.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_setting_has_its_environment_variable_documented() -> None:
    page = (DOCS / "configuration.md").read_text()
    missing = [
        f"CORRAL_{field.name.upper()}"
        for field in dataclasses.fields(Settings)
        if f"`CORRAL_{field.name.upper()}`" not in page
    ]
    assert missing == []
