"""The ``capacity_providers`` table."""

from __future__ import annotations

import sqlite3

from corral.core import models
from corral.store import codec
from corral.store.db import Database

__all__ = ["CapacityProviderTable"]


def _row_to_provider(row: sqlite3.Row) -> models.CapacityProvider:
    return codec.provider_from_json(
        row["name"], row["state"], row["last_modified_s"], row["config"]
    )


class CapacityProviderTable:
    """Rows of ``capacity_providers``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def put(self, provider: models.CapacityProvider) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO capacity_providers (name, state, config, last_modified_s)"
                " VALUES (?, ?, ?, ?)",
                (
                    provider.name,
                    provider.state.value,
                    codec.provider_to_json(provider),
                    provider.last_modified_s,
                ),
            )

    def get(self, name: str) -> models.CapacityProvider | None:
        rows = self._db.query("SELECT * FROM capacity_providers WHERE name = ?", (name,))
        return _row_to_provider(rows[0]) if rows else None

    def list(self) -> list[models.CapacityProvider]:
        rows = self._db.query("SELECT * FROM capacity_providers ORDER BY name")
        return [_row_to_provider(r) for r in rows]

    def delete(self, name: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM capacity_providers WHERE name = ?", (name,))
