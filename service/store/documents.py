"""Writing and reading documents: index creation, ``_bulk``, ``_doc``, mappings.

Every write request is one transaction on the writer connection, committed before the
response is sent: an acknowledged write is never lost. Documents are parsed against
the index mapping; dynamic mapping adds columns (``ALTER TABLE ... ADD COLUMN``) the
first time a field appears, inside the same transaction as the document. Versions and
sequence numbers follow Elasticsearch's optimistic concurrency rules (``versioning.py``).

Nothing of a rejected action is kept. Limits are checked on a copy of the mapping before
any column is added, and an action that changes the schema (a new index, new fields) runs
inside a savepoint with the in-memory index restored if it fails, so a rejected document
leaves mapping, columns and catalog exactly as they were, and a failed write creates no index.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import itertools
import secrets
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, NamedTuple, Sequence

import aiosqlite
import orjson

from ..errors import IndexNotFound, ServiceError
from .catalog import (
    TIMESTAMP_FIELD, Catalog, Index, column_affinity, save_index, validate_index_name,
)
from .db import Database
from .document_parser import DocumentError, DocumentParser, fill_row
from .index_settings import setting_int, validate_settings
from .disk import block_writes
from .jsonenc import dumps
from .mapping import Field, add_field, iter_fields, merge_mappings
from .mapping_parser import DEPTH_LIMIT, FIELDS_LIMIT, check_limits, check_object_depth, count_fields, parse_mapping
from .sql import quote
from .versioning import (
    MATCH_ANY, NO_VERSIONING, PRIMARY_TERM, Current, Tombstones, Versioning, VersionType, conflict,
)

SHARDS = {"total": 2, "successful": 1, "failed": 0}


def new_uuid() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


def _b64(raw: bytes) -> str:
    """URL-safe base64 (``base64.urlsafe_b64encode``'s alphabet, without its two calls)."""
    return binascii.b2a_base64(raw, newline=False).translate(_URL_SAFE).decode()


_URL_SAFE = bytes.maketrans(b"+/", b"-_")
_ID_NODE = _b64(secrets.token_bytes(6))
_ID_SEQUENCE = itertools.count(secrets.randbelow(1 << 24))
_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Base64 turns each 3 bytes into 4 characters of their own: a 12-bit half of the 3-byte
# sequence number is 2 characters, looked up here.
_B64_PAIRS = [a + b for a in _B64_ALPHABET for b in _B64_ALPHABET]


def auto_ids(n: int) -> list[str]:
    """``n`` 20-character URL-safe ids like Elasticsearch's generated ones: 6 bytes of time
    first, so ids arrive in order and inserts into the ``_id`` index stay at its right edge,
    then a 3-byte sequence number and 6 bytes naming this process. Each part is a whole
    number of base64 groups, so the time and node parts are encoded once for all ``n``."""
    head = _b64((time.time_ns() // 1_000_000).to_bytes(6, "big"))
    pairs = _B64_PAIRS
    return [f"{head}{pairs[(seq >> 12) & 0xFFF]}{pairs[seq & 0xFFF]}{_ID_NODE}"
            for seq in itertools.islice(_ID_SEQUENCE, n)]


@dataclass(slots=True)
class BulkOp:
    """One action of a bulk request, already split from its NDJSON lines."""

    action: str  # index | create | update | delete
    index: str | None
    id: str | None
    source: dict[str, Any] | None = None  # index/create document, or the update body
    raw: bytes | None = None  # the document exactly as sent (kept as _source)
    error: ServiceError | None = None  # a problem found while parsing the request
    auto_id: bool = False  # the id was generated here, so no earlier version can exist
    versioning: Versioning = NO_VERSIONING  # version, version_type, if_seq_no, if_primary_term
    # Set by ``map_ahead``: the index tree ``source`` was mapped against, and the row it gave
    # (None: ``fill_row`` could not map it whole).
    row_tree: dict[str, Any] | None = None
    row: list[Any] | None = None


def map_ahead(ops: list[BulkOp], trees: dict[str | None, tuple[dict[str, Any], int]]) -> None:
    """Fill the row of each index and create document with ``fill_row``, against ``trees``
    (index name -> the index's tree and row width, as they were when the bulk arrived).

    Run on a worker thread before the write transaction, so a bulk's mapping work overlaps
    another bulk's SQLite writes and commit instead of waiting for them. It reads only the
    snapshot: an index's tree is never changed once built, only replaced (with its columns),
    so a row is used later only if its index still has that tree (``_WriteSession._row``)."""
    for op in ops:
        if op.source is None or op.error is not None or op.action not in _DOCUMENT_ACTIONS:
            continue
        snapshot = trees.get(op.index)
        if snapshot is not None:
            tree, width = snapshot
            row: list[Any] = [None] * width
            op.row_tree, op.row = tree, row if fill_row(op.source, tree, row) else None


class BulkResult(NamedTuple):
    """The items of a bulk, in order, and whether any failed (the response's ``errors``)."""

    items: list[dict[str, Any]]
    errors: bool


# --- the store ------------------------------------------------------------------------


class DocumentStore:
    def __init__(self, db: Database, catalog: Catalog) -> None:
        self.db = db
        self.catalog = catalog
        self.tombstones = Tombstones()

    async def reload_catalog(self) -> None:
        async with self.db.read() as conn:
            await self.catalog.load(conn)

    async def create_index(self, name: str, settings: Any, mappings: Any) -> Index:
        """``PUT /<index>``: settings, then mappings, are validated as ES validates them before
        anything is stored."""
        flat = validate_settings(settings)
        depth_limit = setting_int(flat, "index.mapping.depth.limit", DEPTH_LIMIT)
        mapping = parse_mapping(mappings, depth_limit=depth_limit)
        check_limits(mapping, fields_limit=setting_int(flat, "index.mapping.total_fields.limit", FIELDS_LIMIT),
                     depth_limit=depth_limit)
        try:
            async with self.db.write(indices=[name]) as conn:
                if name in self.catalog.indices:
                    existing = self.catalog.indices[name]
                    raise ServiceError(f"index [{name}/{existing.uuid}] already exists", status=400,
                                       type="resource_already_exists_exception", index_uuid=existing.uuid,
                                       index=name)
                return await _insert_index(conn, self.catalog, name, flat, mapping)
        except BaseException:
            await self.reload_catalog()
            raise

    async def delete_indices(self, indices: list[Index]) -> None:
        try:
            async with self.db.write(grows=False, indices=[i.name for i in indices]) as conn:
                for index in indices:
                    await conn.execute(f"DROP TABLE IF EXISTS {quote(index.table)}")
                    await conn.execute("DELETE FROM indices WHERE id = ?", (index.id,))
                    self.catalog.indices.pop(index.name, None)
        except BaseException:
            await self.reload_catalog()
            raise

    async def put_mapping(self, indices: list[Index], update: Any) -> None:
        """``PUT /<index>/_mapping``: the update is merged into each index's mapping and every
        merged mapping checked (parse, type changes, limits) before any is stored; then all are
        stored in one transaction."""
        try:
            async with self.db.write(indices=[i.name for i in indices]) as conn:
                plans = []
                for stale in indices:
                    index = self.catalog.indices.get(stale.name)
                    if index is None:
                        raise IndexNotFound(stale.name)
                    merged = merge_mappings(index.mapping, parse_mapping(update, depth_limit=index.depth_limit))
                    check_limits(merged, fields_limit=index.fields_limit, depth_limit=index.depth_limit)
                    plans.append((index, merged))
                for index, merged in plans:
                    index.mapping = merged
                    await _add_columns(conn, index, [f for f in iter_fields(merged) if f.path not in index.columns])
                    await save_index(conn, index)
        except BaseException:
            await self.reload_catalog()
            raise

    async def bulk(self, ops: list[BulkOp]) -> BulkResult:
        """Apply every action in one transaction; return the per-item results in order.
        In the flood stage every action but ``delete`` fails with the block, item by item."""
        if len(ops) >= _MAP_AHEAD_MIN:
            await asyncio.to_thread(map_ahead, ops, self._trees(ops))
        if await self.db.flood_stage():
            block_writes(ops)
        grows = any(op.action != "delete" and op.error is None for op in ops)
        try:
            async with self.db.write(grows=grows, indices=[op.index for op in ops if op.index]) as conn:
                session = _WriteSession(conn, self.catalog, self.tombstones)
                try:
                    await session.prefetch(ops)
                    items = await session.apply_all(ops)
                    await session.finish()
                except BaseException:
                    await asyncio.shield(session.abandon())
                    raise
            # Committed: only now may its deletes count as tombstones.
            self.tombstones.record(session.changes)
            return BulkResult(items, session.errors)
        except BaseException:
            await self.reload_catalog()
            raise

    def _trees(self, ops: list[BulkOp]) -> dict[str | None, tuple[dict[str, Any], int]]:
        """The tree and row width of each existing index the actions name (for ``map_ahead``)."""
        out = {}
        for name in {op.index for op in ops}:
            index = self.catalog.indices.get(name or "")
            if index is not None:
                out[name] = index.tree, 4 + len(index.columns)
        return out

    async def get(self, index: Index, doc_id: str, version: int = MATCH_ANY,
                  version_type: VersionType = VersionType.INTERNAL) -> tuple[int, int, bytes] | None:
        """``(_version, _seq_no, _source)`` of a document, or None; ``Conflict`` when a
        ``version`` is given and the document has another."""
        async with self.db.read() as conn:
            async with conn.execute(
                f"SELECT _version, _seq_no, _source FROM {quote(index.table)} WHERE _id = ?", (doc_id,)
            ) as cur:
                row = await cur.fetchone()
        if row is None:
            return None
        reason = version_type.read_conflict(row[0], version)
        if reason is not None:
            raise conflict(doc_id, reason, index_uuid=index.uuid, shard="0", index=index.name)
        return row[0], row[1], bytes(row[2])

    async def count(self, index: Index) -> int:
        async with self.db.read() as conn:
            async with conn.execute(f"SELECT count(*) FROM {quote(index.table)}") as cur:
                (n,) = await cur.fetchone()  # type: ignore[misc]
        return n


async def _insert_index(conn: aiosqlite.Connection, catalog: Catalog, name: str,
                        settings: dict[str, Any], mappings: dict[str, Any]) -> Index:
    uuid = new_uuid()
    table = "docs_" + uuid.replace("-", "_")
    created = int(time.time() * 1000)
    async with conn.execute(
        "INSERT INTO indices (name, uuid, table_name, created_ms, settings, mappings, columns, multi_valued) "
        "VALUES (?, ?, ?, ?, ?, ?, '{}', '[]') RETURNING id",
        (name, uuid, table, created, orjson.dumps(settings).decode(), dumps(mappings).decode()),
    ) as cur:
        (index_id,) = await cur.fetchone()  # type: ignore[misc]
    await conn.execute(
        f"CREATE TABLE {quote(table)} (_id TEXT NOT NULL UNIQUE, _version INTEGER NOT NULL, "
        f"_seq_no INTEGER NOT NULL, _source BLOB NOT NULL)"
    )
    index = Index(index_id, name, uuid, table, created, settings, mappings, {})
    await _add_columns(conn, index, iter_fields(mappings))
    await save_index(conn, index)
    catalog.indices[name] = index
    return index


async def _add_columns(conn: aiosqlite.Connection, index: Index, fields: list[Field]) -> None:
    """Give each new leaf field a column (and ``@timestamp`` an index), then rebuild. The
    caller has checked the mapping's limits."""
    for f in fields:
        if f.target is not None or f.path in index.columns:
            continue
        column = f"c{len(index.columns) + 1}"
        await conn.execute(f"ALTER TABLE {quote(index.table)} ADD COLUMN {quote(column)} {column_affinity(f.type)}")
        if f.path == TIMESTAMP_FIELD and f.type in ("date", "date_nanos"):
            await conn.execute(f"CREATE INDEX {quote(index.table + '_ts')} ON {quote(index.table)} ({quote(column)})")
        index.columns[f.path] = column
    index.rebuild()


@contextlib.asynccontextmanager
async def _savepoint(conn: aiosqlite.Connection) -> AsyncIterator[None]:
    """A nested transaction: if the block raises, everything it did is undone."""
    await conn.execute("SAVEPOINT action")
    try:
        yield
    except BaseException:
        # Cancelled or not, the statements already handed to the connection's thread run
        # in order, so the rollback still comes after them.
        await asyncio.shield(conn.execute("ROLLBACK TO action"))
        await asyncio.shield(conn.execute("RELEASE action"))
        raise
    await conn.execute("RELEASE action")


def _limit_failure(reason: str) -> DocumentError:
    """How ES's document parser reports a limit hit while mapping a document's fields."""
    return DocumentError(f"failed to parse: {reason}",
                         caused_by=ServiceError(reason, status=400, type="illegal_argument_exception"))


def _plan_dynamic_update(index: Index, new_fields: list[tuple[str, dict[str, Any]]]
                         ) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """The index's mapping with a document's new fields added (a copy), and the fields added.

    As ES checks each new mapper in document order: an object deeper than
    ``index.mapping.depth.limit``, or more fields than ``index.mapping.total_fields.limit``,
    refuses the document, unless ``ignore_dynamic_beyond_limit`` is set, which leaves the
    fields that do not fit unmapped.
    """
    room = index.fields_limit - count_fields(index.mapping)
    ignore = index.ignore_dynamic_beyond_limit
    mapping = copy.deepcopy(index.mapping)
    added, created, accepted = 0, set(), []
    for path, spec in new_fields:
        parts = path.split(".")
        objects = [p for p in (".".join(parts[:i]) for i in range(1, len(parts)))
                   if p not in index.objects and p not in created]
        for obj in objects:
            try:
                check_object_depth(obj, index.depth_limit)
            except ServiceError as err:
                raise _limit_failure(err.reason or "") from None
        cost = len(objects) + 1 + len(spec.get("fields", {}))
        if added + cost > room:
            if ignore:
                continue
            # ES counts each new object as it meets it, then the field with its multi-fields
            extra = next((k + 1 for k in range(len(objects)) if added + k + 1 > room), cost)
            raise _limit_failure(f"Limit of total fields [{index.fields_limit}] has been exceeded while adding "
                                 f"new fields [{added + extra}]")
        added += cost
        created.update(objects)
        add_field(mapping, path, spec)
        accepted.append((path, spec))
    return mapping, accepted


def _item(op: BulkOp, index_name: str, doc_id: str | None, status: int, **body: Any) -> dict[str, Any]:
    return {op.action: {"_index": index_name, "_id": doc_id, **body, "status": status}}


_INDEX_LEVEL_ERRORS = ("index_not_found_exception", "invalid_index_name_exception")


def _error_item(op: BulkOp, index: Index | None, index_name: str, doc_id: str | None,
                err: ServiceError, *, on_shard: bool = True) -> dict[str, Any]:
    """A failed item. Errors raised on the shard name it, as ES's do (``_na_`` for the uuid
    of an index that a failed write did not create)."""
    error = err.to_dict()
    if on_shard and err.type not in _INDEX_LEVEL_ERRORS:
        error.update(index_uuid=index.uuid if index is not None else "_na_", shard="0", index=index_name)
    return _item(op, index_name, doc_id, err.status, error=error)


def _document_missing(doc_id: str) -> ServiceError:
    return ServiceError(f"[{doc_id}]: document missing", status=404, type="document_missing_exception")


def _upserts(body: dict[str, Any] | None) -> bool:
    """Whether an update creates the document when it is missing."""
    body = body or {}
    return bool(body.get("doc_as_upsert")) and isinstance(body.get("doc"), dict) or isinstance(body.get("upsert"), dict)


_MISSING = object()
_FLUSH_ROWS = 1000
_YIELD_EVERY = 256  # actions applied between turns of the event loop
_ID_BLOCK = 256  # ids generated at a time
_MAP_AHEAD_MIN = 64  # actions in a bulk worth a turn on a worker thread for map_ahead
_DOCUMENT_ACTIONS = ("index", "create")  # the actions whose source is a document to store


class _WriteSession:
    """The state of one write transaction: known versions, queued statements, touched indices."""

    def __init__(self, conn: aiosqlite.Connection, catalog: Catalog, tombstones: Tombstones) -> None:
        self.conn = conn
        self.catalog = catalog
        self.tombstones = tombstones
        # Statements to run, in order: an index's upserts (batched by ``Index.upserts``) or
        # SQL; runs of the same one (the same object) go to one executemany. New columns are
        # added only after a flush, so every row pending for an index has its current columns.
        self.pending: list[tuple[Index | str, Sequence[Any]]] = []
        # Statements handed to the connection's thread but not yet awaited: aiosqlite runs
        # them in order, so parsing the next documents overlaps SQLite writing these.
        self.inflight: list[asyncio.Future[Any]] = []
        # (index name, id) -> the id's state as this transaction sees it; None = never seen
        self.known: dict[tuple[str, str], Current | None] = {}
        # (index name, id) -> the source this transaction wrote, so an update need not read it back
        self.sources: dict[tuple[str, str], bytes] = {}
        # (index uuid, id) -> tombstones made or cleared, handed to the store once committed
        self.changes: dict[tuple[str, str], Current] = {}
        self.touched: dict[str, Index] = {}
        self.parsers: dict[str, DocumentParser] = {}
        self.ids: list[str] = []  # generated ids not yet handed out, the next one last
        self.errors = False  # whether an item failed (only ``apply`` answers failures)

    async def prefetch(self, ops: list[BulkOp]) -> None:
        """Load the versions of every explicit id in one query per index and chunk."""
        wanted: dict[str, set[str]] = {}
        for op in ops:
            if op.id is not None and op.index in self.catalog.indices and op.error is None:
                wanted.setdefault(op.index, set()).add(op.id)
        for name, ids in wanted.items():
            index = self.catalog.indices[name]
            for key in ids:
                self.known[(name, key)] = self.tombstones.get(index.uuid, key)
            id_list = list(ids)
            for start in range(0, len(id_list), 500):
                chunk = id_list[start:start + 500]
                async with self.conn.execute(
                    f"SELECT _id, _version, _seq_no FROM {quote(index.table)} "
                    f"WHERE _id IN ({', '.join('?' * len(chunk))})", chunk
                ) as cur:
                    async for doc_id, version, seq_no in cur:
                        self.known[(name, doc_id)] = Current(version, seq_no)

    async def _lookup(self, index: Index, doc_id: str) -> Current | None:
        """The live document's version, a recent delete's tombstone, or None."""
        key = (index.name, doc_id)
        state = self.known.get(key, _MISSING)
        if state is _MISSING:
            async with self.conn.execute(
                f"SELECT _version, _seq_no FROM {quote(index.table)} WHERE _id = ?", (doc_id,)
            ) as cur:
                row = await cur.fetchone()
            state = self.tombstones.get(index.uuid, doc_id) if row is None else Current(row[0], row[1])
            self.known[key] = state
        return state  # type: ignore[return-value]

    def _remember(self, index: Index, doc_id: str, before: Current | None, after: Current) -> None:
        self.known[(index.name, doc_id)] = after
        if after.deleted or (before is not None and before.deleted):  # a tombstone made or cleared
            self.changes[(index.uuid, doc_id)] = after

    async def _source_of(self, index: Index, doc_id: str) -> bytes:
        source = self.sources.get((index.name, doc_id))
        if source is not None:
            return source
        await self._flush()
        async with self.conn.execute(
            f"SELECT _source FROM {quote(index.table)} WHERE _id = ?", (doc_id,)
        ) as cur:
            (source,) = await cur.fetchone()  # type: ignore[misc]
        return bytes(source)

    async def apply_all(self, ops: list[BulkOp]) -> list[dict[str, Any]]:
        """Every action's item, in order: runs of the common action through ``apply_mapped``,
        the others one by one through ``apply``. The event loop gets a turn every
        ``_YIELD_EVERY`` actions: a huge bulk must not hold it."""
        items: list[dict[str, Any]] = []
        done = 0
        while done < len(ops):
            end = min(len(ops), done + _YIELD_EVERY)
            while done < end:
                done = self.apply_mapped(ops, done, end, items)
                if done < end:
                    op = ops[done]
                    item = await self.apply(op)
                    self.errors = self.errors or "error" in item[op.action]
                    items.append(item)
                    done += 1
            await asyncio.sleep(0)
        return items

    def _new_id(self) -> str:
        if not self.ids:
            self.ids = auto_ids(_ID_BLOCK)[::-1]
        return self.ids.pop()

    async def apply(self, op: BulkOp) -> dict[str, Any]:
        name = op.index or ""
        if op.id is None and op.action in ("index", "create"):
            op.id, op.auto_id = self._new_id(), True
        index = self.catalog.indices.get(name)
        if op.error is not None:  # found while parsing: only a bad document is the shard's error
            return _error_item(op, index, name, op.id, op.error,
                               on_shard=op.error.type == "document_parsing_exception")
        try:
            if index is None:
                return await self._apply_to_new_index(op, name)
            self.touched[name] = index
            return await self._dispatch(op, index)
        except ServiceError as err:
            return _error_item(op, self.catalog.indices.get(name), name, op.id, err)

    async def _dispatch(self, op: BulkOp, index: Index) -> dict[str, Any]:
        doc_id = op.id or ""  # index and create got theirs in apply()
        if op.action in ("index", "create"):
            if op.auto_id:  # ES appends these without any version check
                return await self._write(op, index, doc_id, op.source or {}, op.raw, None, 1)
            state = await self._lookup(index, doc_id)
            version = op.versioning.resolve(doc_id, state, create=op.action == "create")
            return await self._write(op, index, doc_id, op.source or {}, op.raw, state, version)
        if op.action == "delete":
            return await self._delete(op, index, doc_id)
        return await self._update(op, index, doc_id)

    async def _apply_to_new_index(self, op: BulkOp, name: str) -> dict[str, Any]:
        """A write to a missing index creates it, but only if the write succeeds: a delete is
        ``index_not_found_exception``, an update without upsert a missing document, and any
        other failure undoes the creation with the rest of the action."""
        if op.action == "delete":
            raise IndexNotFound(name)
        if op.action == "update" and not _upserts(op.source):
            raise _document_missing(op.id or "")
        validate_index_name(name)
        await self._flush()
        try:
            async with _savepoint(self.conn):
                index = await _insert_index(self.conn, self.catalog, name, {}, {})
                self.touched[name] = index
                return await self._dispatch(op, index)
        except BaseException:
            self.catalog.indices.pop(name, None)
            self.touched.pop(name, None)
            self.parsers.pop(name, None)
            raise

    async def _extend_mapping(self, index: Index, new_fields: list[tuple[str, dict[str, Any]]],
                              values: dict[str, Any]) -> None:
        """Map a document's new fields and give them columns, all or nothing: the limits are
        checked on a copy of the mapping first, and a failure part-way restores the index."""
        mapping, accepted = _plan_dynamic_update(index, new_fields)
        if len(accepted) < len(new_fields):  # the rest stay unmapped (ignore_dynamic_beyond_limit)
            mapped = {path for path, _ in accepted}
            for path, spec in new_fields:
                if path not in mapped:
                    values.pop(path, None)
                    for sub in spec.get("fields", {}):
                        values.pop(f"{path}.{sub}", None)
        await self._flush()
        old_mapping, old_columns = index.mapping, dict(index.columns)
        try:
            async with _savepoint(self.conn):
                index.mapping = mapping
                await _add_columns(self.conn, index, [f for f in iter_fields(mapping) if f.path not in index.columns])
        except BaseException:
            index.mapping, index.columns = old_mapping, old_columns
            index.rebuild()
            raise

    async def _write(self, op: BulkOp, index: Index, doc_id: str, doc: dict[str, Any], raw: bytes | None,
                     state: Current | None, version: int) -> dict[str, Any]:
        """Store ``doc`` as ``version`` (already checked against ``state``, the id's current state)."""
        row = self._row(op, index, doc)
        if row is None:
            parser = self.parsers.get(index.name)
            if parser is None or parser.index is not index:
                parser = self.parsers[index.name] = DocumentParser(index)
            values, new_fields = parser.parse(doc, doc_id)
            if new_fields:
                await self._extend_mapping(index, new_fields, values)
            row = [None] * (4 + len(index.columns))
            positions = index.positions
            for path, value in values.items():
                position = positions.get(path)
                if position is not None:  # fields inside nested objects live in _source only
                    row[position] = value
                    if type(value) is bytes:  # only a multi-value is a BLOB (encode_values)
                        index.multi_valued.add(path)
        return self._store(op, index, doc_id, row, raw if raw is not None else dumps(doc), state, version)

    def apply_mapped(self, ops: list[BulkOp], start: int, end: int, items: list[dict[str, Any]]) -> int:
        """Apply ``ops[start:end]`` without a turn through coroutines while each is the common
        action, an index or create with a generated id (no version to check) into an existing
        index whose document ``fill_row`` maps whole, appending their items. Return where it
        stopped: the position of the first action that needs ``apply``, or ``end``."""
        index: Index | None = None
        for position in range(start, end):
            op = ops[position]
            if op.id is not None or op.error is not None or op.source is None:
                return position
            if op.action not in _DOCUMENT_ACTIONS:
                return position
            if index is None or op.index != index.name:  # a bulk's actions mostly share one index
                index = self.catalog.indices.get(op.index or "")
                if index is None:
                    return position
                self.touched[index.name] = index
                # The item of a new document with a generated id: only _id and _seq_no vary.
                created = {"_index": index.name, "_id": None, "_version": 1, "result": "created", "_shards": SHARDS,
                           "_seq_no": None, "_primary_term": PRIMARY_TERM, "status": 201}
            row = self._row(op, index, op.source)
            if row is None:
                return position
            op.id = doc_id = self._new_id()
            op.auto_id = True
            item = created.copy()
            item["_id"] = doc_id
            item["_seq_no"] = self._queue(index, doc_id, row, op.raw if op.raw is not None else dumps(op.source), 1)
            items.append({op.action: item})
        return end

    @staticmethod
    def _row(op: BulkOp, index: Index, doc: dict[str, Any]) -> list[Any] | None:
        """``doc``'s row if ``fill_row`` maps it whole, else None: the one ``map_ahead`` found
        while the index still has the tree it was mapped against (no column has come or gone
        since: columns change only with a rebuild, which replaces the tree), else filled now."""
        if doc is op.source and op.row_tree is index.tree:
            row = op.row
            if row is not None:  # handed over once, so that it lives no longer than its flush
                op.row_tree = op.row = None
            return row
        row: list[Any] = [None] * (4 + len(index.columns))
        return row if fill_row(doc, index.tree, row) else None

    def _queue(self, index: Index, doc_id: str, row: list[Any], source: bytes, version: int) -> int:
        """Queue the row (its field columns filled) under the index's next seq_no, returned."""
        seq_no = index.next_seq_no
        index.next_seq_no = seq_no + 1
        row[0], row[1], row[2], row[3] = doc_id, version, seq_no, source
        self.pending.append((index, row))
        if len(self.pending) >= _FLUSH_ROWS:
            self._start_flush()
        return seq_no

    def _store(self, op: BulkOp, index: Index, doc_id: str, row: list[Any], source: bytes,
               state: Current | None, version: int) -> dict[str, Any]:
        """Queue the row (its field columns filled) and answer the item."""
        seq_no = self._queue(index, doc_id, row, source, version)
        if not op.auto_id:
            self._remember(index, doc_id, state, Current(version, seq_no))
            self.sources[(index.name, doc_id)] = source
        created = state is None or state.deleted
        return {op.action: {"_index": index.name, "_id": doc_id, "_version": version,
                            "result": "created" if created else "updated", "_shards": SHARDS, "_seq_no": seq_no,
                            "_primary_term": PRIMARY_TERM, "status": 201 if created else 200}}

    async def _delete(self, op: BulkOp, index: Index, doc_id: str) -> dict[str, Any]:
        state = await self._lookup(index, doc_id)
        version = op.versioning.resolve(doc_id, state)
        seq_no = index.next_seq_no
        index.next_seq_no += 1
        # Deleting a missing id still takes a seq_no and leaves a tombstone, as in ES.
        self._remember(index, doc_id, state, Current(version, seq_no, deleted=True))
        self.sources.pop((index.name, doc_id), None)
        if state is None or state.deleted:
            return _item(op, index.name, doc_id, 404, _version=version, result="not_found", _shards=SHARDS,
                         _seq_no=seq_no, _primary_term=PRIMARY_TERM)
        self.pending.append((index.delete_sql, (doc_id,)))
        return _item(op, index.name, doc_id, 200, _version=version, result="deleted", _shards=SHARDS,
                     _seq_no=seq_no, _primary_term=PRIMARY_TERM)

    async def _update(self, op: BulkOp, index: Index, doc_id: str) -> dict[str, Any]:
        body = op.source or {}
        state = await self._lookup(index, doc_id)
        partial = body.get("doc")
        if state is None or state.deleted:
            if body.get("doc_as_upsert") and isinstance(partial, dict):
                upsert = partial
            elif isinstance(body.get("upsert"), dict):
                upsert = body["upsert"]
            else:
                raise _document_missing(doc_id)
            # ES upserts as op_type create; validation keeps if_seq_no away from upserts.
            version = NO_VERSIONING.resolve(doc_id, state, create=True)
            return await self._write(op, index, doc_id, upsert, None, state, version)
        # ES checks if_seq_no when it reads the document, before noop detection.
        version = op.versioning.resolve(doc_id, state)
        current = orjson.loads(await self._source_of(index, doc_id))
        merged, changed = _deep_merge(current, partial or {})
        if not changed and body.get("detect_noop", True):
            return _item(op, index.name, doc_id, 200, _version=state.version, result="noop",
                         _shards={"total": 0, "successful": 0, "failed": 0}, _seq_no=state.seq_no,
                         _primary_term=PRIMARY_TERM)
        return await self._write(op, index, doc_id, merged, None, state, version)

    def _start_flush(self) -> None:
        pending, self.pending = self.pending, []
        i = 0
        while i < len(pending):
            statement = pending[i][0]
            j = i
            while j < len(pending) and pending[j][0] is statement:
                j += 1
            rows = [params for _, params in pending[i:j]]
            batches = statement.upserts(rows) if isinstance(statement, Index) else [(statement, rows)]
            for sql, params in batches:
                self.inflight.append(asyncio.ensure_future(self.conn.executemany(sql, params)))
            i = j

    async def _flush(self) -> None:
        self._start_flush()
        inflight, self.inflight = self.inflight, []
        await asyncio.gather(*inflight)

    async def finish(self) -> None:
        await self._flush()
        for index in self.touched.values():
            await save_index(self.conn, index)

    async def abandon(self) -> None:
        """Wait for statements already handed over, so the rollback comes after them."""
        await asyncio.gather(*self.inflight, return_exceptions=True)


def _deep_merge(current: dict[str, Any], partial: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``partial`` merged into a copy of ``current``, objects key by key, and whether that
    changed anything (with a stack, not recursion: both may nest a thousand levels)."""
    out = dict(current)
    changed = False
    stack = [(out, partial)]
    while stack:
        target, updates = stack.pop()
        for key, value in updates.items():
            existing = target.get(key, _MISSING)
            if isinstance(value, dict) and isinstance(existing, dict):
                target[key] = merged = dict(existing)
                stack.append((merged, value))
            else:
                changed = changed or existing is _MISSING or type(existing) is not type(value) or existing != value
                target[key] = value
    return out, changed
