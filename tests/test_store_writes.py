"""The one writer connection survives its callers: a write cancelled at any point (a client
that hangs up mid-bulk cancels its handler) leaves no transaction open, so every later write
still begins. Real SQLite file, no server needed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from service.store.db import Database


async def _insert(db: Database, value: int) -> None:
    async with db.write(grows=False) as conn:
        await conn.execute("INSERT INTO scratch (n) VALUES (?)", (value,))


@pytest.mark.parametrize("ticks", range(12))
async def test_a_write_cancelled_anywhere_leaves_the_writer_usable(tmp_path: Path, ticks: int) -> None:
    db = Database(tmp_path / "esquire.db")
    await db.open()
    try:
        async with db.write(grows=False) as conn:
            await conn.execute("CREATE TABLE scratch (n INTEGER)")
        cancelled = asyncio.ensure_future(_insert(db, 1))
        for _ in range(ticks):  # cancel it at its ticks-th step: before, during or after BEGIN, the insert, COMMIT
            await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.gather(cancelled, return_exceptions=True)
        assert db.writer is not None and not db.writer.in_transaction
        await _insert(db, 2)
        async with db.read() as conn:
            rows = await conn.execute_fetchall("SELECT n FROM scratch ORDER BY n")
        assert [r[0] for r in rows] in ([2], [1, 2])  # the cancelled insert is all there or not at all
    finally:
        await db.close()
