"""Persistent cluster settings: every statement on the ``cluster_settings`` table."""

from __future__ import annotations

from typing import Mapping

from .db import Database


class ClusterSettingsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self) -> dict[str, str]:
        async with self.db.read() as conn:
            async with conn.execute("SELECT name, value FROM cluster_settings ORDER BY name") as cur:
                return {name: value for name, value in await cur.fetchall()}

    async def apply(self, changes: Mapping[str, str | None]) -> None:
        """Set each setting to its value, or remove it (None), in one transaction."""
        async with self.db.write(grows=False) as conn:
            for name, value in changes.items():
                if value is None:
                    await conn.execute("DELETE FROM cluster_settings WHERE name = ?", (name,))
                else:
                    await conn.execute("INSERT INTO cluster_settings (name, value) VALUES (?, ?) "
                                       "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (name, value))
