"""SQLite connections: one writer with serialised short transactions, a pool of readers.

WAL mode lets readers run while the writer commits, so a long query never blocks
ingestion or status polls. aiosqlite runs every connection on its own thread.

A full disk is an answer, not a crash: writes that grow the database are refused while the
disk is past the flood-stage watermark (``disk.py``), and a full disk met by SQLite itself
rolls the transaction back and answers the same 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Iterable

import aiosqlite
import structlog

from .disk import DiskMonitor, DiskPolicy, FloodStageBlock, is_disk_full
from .catalog import record_multi_valued
from .migrations import migrate

log = structlog.get_logger(__name__)

# Statements that change the database. On a full disk SQLite may cancel the whole transaction
# in the middle of a statement; the writer's authorizer then refuses these outside a
# transaction, so a statement already queued behind the failed one cannot autocommit half a
# request.
_CHANGES = frozenset({
    sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE, sqlite3.SQLITE_CREATE_TABLE,
    sqlite3.SQLITE_CREATE_INDEX, sqlite3.SQLITE_DROP_TABLE, sqlite3.SQLITE_DROP_INDEX, sqlite3.SQLITE_ALTER_TABLE,
})


async def _open(path: Path, synchronous: str, *, readonly: bool) -> aiosqlite.Connection:
    # The writer prepares every statement afresh: SQLite consults the authorizer only when a
    # statement is prepared, never when a cached one is run again.
    conn = await aiosqlite.connect(path, isolation_level=None, check_same_thread=False,
                                   cached_statements=128 if readonly else 0)
    try:
        await conn.execute("PRAGMA busy_timeout = 10000")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA temp_store = MEMORY")
        await conn.execute("PRAGMA cache_size = -65536")
        if readonly:
            await conn.execute("PRAGMA query_only = ON")
        else:
            # Creates the -wal and -shm files: the first thing to fail on a full disk.
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            # Builds with SQLITE_SECURE_DELETE (Debian's) zero every freed page through the WAL,
            # so dropping an index would need as much free disk as the index holds. FAST still
            # wipes deleted rows from the pages a write touches, without writing freed pages.
            await conn.execute("PRAGMA secure_delete = FAST")
    except BaseException:
        await conn.close()
        raise
    return conn


def query_connection(path: Path, cache_kib: int = 65536) -> sqlite3.Connection:
    """A plain read-only connection for one query in a worker process (or one blocking read
    on a thread); the caller closes it."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
    conn.execute("PRAGMA query_only = ON")
    return conn


async def _to_the_end(statement: Awaitable[Any]) -> Any:
    """Await ``statement`` to its end, even if the caller is cancelled meanwhile; then let the
    cancellation through."""
    running = asyncio.ensure_future(statement)
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        await asyncio.wait([running])
        raise


class Database:
    """The store's connections. ``write()`` serialises writers; ``read()`` borrows a reader."""

    def __init__(self, path: Path, *, synchronous: str = "full", readers: int = 4,
                 disk: DiskPolicy | None = None) -> None:
        self.path = path
        self.synchronous = synchronous
        self.reader_count = readers
        self.disk = DiskMonitor(path.parent, disk or DiskPolicy())
        self.writer: aiosqlite.Connection | None = None
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._write_lock = asyncio.Lock()
        self._page_size = 4096

    async def open(self) -> None:
        """Open the writer (migrating the schema) and the readers.

        On a full disk the space reserve is given up and the open tried once more; when that
        fails too, ``NoSpaceError`` says so in one line. A failed open leaves nothing open: an
        open connection's thread would keep the process alive, half-started.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in (1, 2):
            try:
                await self._connect()
                break
            except BaseException as exc:
                await self.close()
                if not is_disk_full(exc):
                    raise
                if attempt == 2 or not self.disk.release_reserve():
                    raise self.disk.no_space() from None
        await self.flood_stage()

    async def _connect(self) -> None:
        self.writer = await _open(self.path, self.synchronous, readonly=False)
        await migrate(self.writer)
        await record_multi_valued(self.writer)
        writer = self.writer
        await writer.set_authorizer(lambda action, *_: sqlite3.SQLITE_DENY
                                    if action in _CHANGES and not writer.in_transaction else sqlite3.SQLITE_OK)
        async with writer.execute("PRAGMA page_size") as cur:
            (self._page_size,) = await cur.fetchone()  # type: ignore[misc]
        for _ in range(self.reader_count):
            conn = await _open(self.path, self.synchronous, readonly=True)
            self._all_readers.append(conn)
            self._readers.put_nowait(conn)

    async def close(self) -> None:
        for conn in self._all_readers:
            await conn.close()
        self._all_readers.clear()
        self._readers = asyncio.Queue()
        if self.writer is not None:
            await self.writer.close()
            self.writer = None

    async def flood_stage(self) -> bool:
        """Whether writes that grow the database are blocked now (looked up at most every
        ``check_interval_s``)."""
        if self.disk.stale():
            async with self.read() as conn:
                async with conn.execute("PRAGMA freelist_count") as cur:
                    (pages,) = await cur.fetchone()  # type: ignore[misc]
            await self._refresh_disk(pages * self._page_size)
        return self.disk.blocked

    async def _refresh_disk(self, free_pages: int) -> None:
        try:
            await self.disk.update(free_pages)
        except OSError as exc:  # the directory vanished or the filesystem went away: SQLite will say
            log.warning("disk_check_failed", data_dir=str(self.disk.directory), error=str(exc))

    @contextlib.asynccontextmanager
    async def write(self, *, grows: bool = True, indices: Iterable[str] = ()) -> AsyncIterator[aiosqlite.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction on the writer, committed on success.

        A write that ``grows`` the database is refused with Elasticsearch's flood-stage block
        (429 ``cluster_block_exception`` naming ``indices``) while the disk is past the
        watermark. Deletes and small bookkeeping (``grows=False``) go on, the space reserve
        given up for them when the disk is that close to full. When SQLite itself finds the
        disk full, the transaction is rolled back, the reserve given up and the same 429
        answered; the database stays as it was.

        BEGIN, COMMIT and ROLLBACK run to their end even when the caller is cancelled
        meanwhile (a client that hangs up mid-bulk): the statement goes on in the
        connection's thread anyway, so the lock is released only once it is known whether
        a transaction is open, and it is rolled back if it is.
        """
        assert self.writer is not None, "database is not open"
        async with self._write_lock:
            if await self.flood_stage():
                if grows:
                    raise FloodStageBlock(indices)
                self.disk.make_room()
            conn = self.writer
            try:
                await _to_the_end(conn.execute("BEGIN IMMEDIATE"))
                yield conn
                await _to_the_end(conn.commit())
            except BaseException as exc:
                # A cancelled caller, or a failed COMMIT (SQLITE_FULL), leaves the transaction
                # open: roll it back, or every later BEGIN fails.
                if conn.in_transaction:
                    await _to_the_end(conn.rollback())
                if is_disk_full(exc):
                    self.disk.ran_out(exc)
                    raise FloodStageBlock(indices) from None
                raise

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        conn = await self._readers.get()
        try:
            yield conn
        finally:
            self._readers.put_nowait(conn)
