"""SQLite connections: one writer with serialised short transactions, a pool of readers.

WAL mode lets readers run while the writer commits, so a long query never blocks
ingestion or status polls. aiosqlite runs every connection on its own thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import AsyncIterator

import aiosqlite

from .migrations import migrate


async def _open(path: Path, synchronous: str, *, readonly: bool) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None, check_same_thread=False)
    await conn.execute("PRAGMA busy_timeout = 10000")
    await conn.execute("PRAGMA foreign_keys = ON")
    await conn.execute("PRAGMA temp_store = MEMORY")
    await conn.execute("PRAGMA cache_size = -65536")
    if readonly:
        await conn.execute("PRAGMA query_only = ON")
    else:
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    return conn


def query_connection(path: Path) -> sqlite3.Connection:
    """A plain read-only connection for one query in a worker process; the caller closes it."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA cache_size = -65536")
    conn.execute("PRAGMA query_only = ON")
    return conn


class Database:
    """The store's connections. ``write()`` serialises writers; ``read()`` borrows a reader."""

    def __init__(self, path: Path, *, synchronous: str = "full", readers: int = 4) -> None:
        self.path = path
        self.synchronous = synchronous
        self.reader_count = readers
        self.writer: aiosqlite.Connection | None = None
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = await _open(self.path, self.synchronous, readonly=False)
        await migrate(self.writer)
        for _ in range(self.reader_count):
            conn = await _open(self.path, self.synchronous, readonly=True)
            self._all_readers.append(conn)
            self._readers.put_nowait(conn)

    async def close(self) -> None:
        for conn in self._all_readers:
            await conn.close()
        self._all_readers.clear()
        if self.writer is not None:
            await self.writer.close()
            self.writer = None

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction on the writer, committed on success.

        The commit or rollback is shielded: a cancelled caller can neither leave the
        transaction open nor skip the commit of work it already did.
        """
        assert self.writer is not None, "database is not open"
        async with self._write_lock:
            conn = self.writer
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await asyncio.shield(conn.rollback())
                raise
            await asyncio.shield(conn.commit())

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        conn = await self._readers.get()
        try:
            yield conn
        finally:
            self._readers.put_nowait(conn)
