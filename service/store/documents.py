"""Writing and reading documents: index creation, ``_bulk``, ``_doc``, mappings.

Every write request is one transaction on the writer connection, committed before the
response is sent: an acknowledged write is never lost. Documents are parsed against
the index mapping; dynamic mapping adds columns (``ALTER TABLE ... ADD COLUMN``) the
first time a field appears, inside the same transaction as the document.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiosqlite
import orjson

from ..errors import ServiceError
from .catalog import (
    TIMESTAMP_FIELD, Catalog, Index, column_affinity, save_index, validate_index_name,
)
from .db import Database
from .disk import block_writes
from .mapping import (
    FIELDS_LIMIT, METADATA_FIELDS, Field, ValueConversionError, add_field, converter, dynamic_spec,
    iter_fields, merge_mappings, validate_mapping,
)
from .sql import quote

SHARDS = {"total": 2, "successful": 1, "failed": 0}
PRIMARY_TERM = 1


def new_uuid() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


_ID_NODE = secrets.token_bytes(6)
_ID_SEQUENCE = itertools.count(secrets.randbelow(1 << 24))


def auto_id() -> str:
    """A 20-character URL-safe id like Elasticsearch's: time first, so ids arrive in
    order and inserts into the ``_id`` index stay at its right edge."""
    raw = (time.time_ns() // 1_000_000).to_bytes(6, "big") + (next(_ID_SEQUENCE) & 0xFFFFFF).to_bytes(3, "big")
    return base64.urlsafe_b64encode(raw + _ID_NODE).decode()


class DocumentError(ServiceError):
    status = 400
    type = "document_parsing_exception"


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


# --- document parsing -----------------------------------------------------------------


def _flatten(obj: dict[str, Any], prefix: str, out: dict[str, list[Any]], objs: list[str]) -> None:
    for key, value in obj.items():
        if not key:
            raise DocumentError("field name cannot be an empty string")
        path = f"{prefix}.{key}" if prefix else key
        if type(value) is dict:
            objs.append(path)
            _flatten(value, path, out, objs)
        elif type(value) is list:
            _flatten_list(value, path, out, objs)
        else:
            bucket = out.get(path)
            if bucket is None:
                out[path] = [value]
            else:
                bucket.append(value)


def _flatten_list(values: list[Any], path: str, out: dict[str, list[Any]], objs: list[str]) -> None:
    bucket = out.setdefault(path, [])
    for value in values:
        if type(value) is dict:
            objs.append(path)
            _flatten(value, path, out, objs)
        elif type(value) is list:
            _flatten_list(value, path, out, objs)
        else:
            bucket.append(value)


def encode_values(values: list[Any], kind: str) -> Any:
    """Column value of a field: a scalar, ``None``, or a multi-value as a JSON BLOB.

    Multi-values are stored as doc values are: sorted (keyword-like de-duplicated). The
    BLOB storage class marks them unambiguously, whatever the column's type.
    """
    if len(values) == 1:
        return values[0]
    if not values:
        return None
    if kind == "dedup":
        values = sorted(set(values))
        if len(values) == 1:
            return values[0]
    elif kind == "sort":
        values = sorted(values)
    return orjson.dumps(values)


def fill_row(obj: dict[str, Any], tree: dict[str, Any], row: list[Any]) -> bool:
    """The common case in one pass: every key already mapped, single non-null values that
    convert cleanly, written straight into the row. Anything else (arrays, nulls, new or
    dotted keys, bad values) returns False, and the document goes through the general
    parser, which also reports the errors."""
    for key, value in obj.items():
        entry = tree.get(key)
        if entry is None:
            return False
        if type(entry) is dict:
            if type(value) is not dict or not fill_row(value, entry, row):
                return False
            continue
        if value is None or type(value) is dict or type(value) is list:
            return False
        try:
            for position, convert in entry:
                row[position] = convert(value)
        except ValueConversionError:
            return False
    return True


def _preview(value: Any) -> str:
    return "true" if value is True else "false" if value is False else str(value)


class DocumentParser:
    """Turns one JSON document into the column values of its index's table."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def parse(self, doc: dict[str, Any], doc_id: str) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
        """Return ``{field path: column value}`` and the new dynamic fields the document needs."""
        index = self.index
        flat: dict[str, list[Any]] = {}
        objs: list[str] = []
        for key in doc:
            if key in METADATA_FIELDS:
                raise DocumentError(f"Field [{key}] is a metadata field and cannot be added inside a document. "
                                    "Use the index API request parameters.")
        _flatten(doc, "", flat, objs)
        for path in objs:
            if path in index.fields:
                f = index.fields[path]
                raise DocumentError(self._failed(f, doc_id, "{...}"), caused_by=ServiceError(
                    f"Can't get text on a START_OBJECT", status=400, type="illegal_state_exception"))
        values = {}
        new_fields: list[tuple[str, dict[str, Any]]] = []
        for path, raw in flat.items():
            f = index.fields.get(path)
            if f is None:
                if path in index.objects:
                    if any(v is not None for v in raw):
                        raise DocumentError(f"object mapping for [{path}] tried to parse field [{path}] as object, "
                                            f"but found a concrete value")
                    continue
                spec = self._dynamic(path, raw)
                if spec is None:
                    continue
                new_fields.append((path, spec))
                f = Field(path, spec["type"], spec, convert=converter(spec["type"], spec))
                subs = [Field(f"{path}.{n}", s["type"], s, parent=path, convert=converter(s["type"], s))
                        for n, s in spec.get("fields", {}).items()]
            else:
                if f.target is not None:
                    raise DocumentError(f"Cannot write to a field alias [{path}].")
                subs = index.subfields.get(path, ())
            values[path] = self._convert(f, raw, doc_id)
            for sub in subs:
                values[sub.path] = self._convert(sub, raw, doc_id)
        return values, new_fields

    def _dynamic(self, path: str, raw: list[Any]) -> dict[str, Any] | None:
        index = self.index
        parts = path.split(".")
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i])
            if prefix in index.fields:
                existing = index.fields[prefix]
                raise DocumentError(f"Could not dynamically add mapping for field [{path}]. Existing mapping for "
                                    f"[{prefix}] must be of type object but found [{existing.type}].")
        parent = ".".join(parts[:-1])
        while parent not in index.objects:
            parent = parent.rpartition(".")[0]
        dynamic = index.objects[parent]
        first = next((v for v in raw if v is not None), None)
        if first is None:
            return None
        if dynamic == "strict":
            raise ServiceError(f"[{path.rpartition('.')[0] or '_doc'}] mapping set to strict, dynamic introduction "
                               f"of [{parts[-1]}] within [{parent or '_doc'}] is not allowed",
                               status=400, type="strict_dynamic_mapping_exception")
        if dynamic in ("false", "runtime"):
            return None
        return dynamic_spec(first)

    def _convert(self, f: Field, raw: list[Any], doc_id: str) -> Any:
        if len(raw) == 1 and f.fast:
            value = raw[0]
            if value is not None:
                try:
                    return f.convert(value)
                except ValueConversionError:
                    pass  # the general path below reports it
        params = f.params
        null_value = params.get("null_value")
        ignore_above = params.get("ignore_above")
        convert = f.convert
        out = []
        for value in raw:
            if value is None:
                if null_value is None:
                    continue
                value = null_value
            try:
                converted = convert(value)
            except ValueConversionError as exc:
                if params.get("ignore_malformed"):
                    continue
                raise DocumentError(self._failed(f, doc_id, _preview(value)), caused_by=ServiceError(
                    str(exc), status=400, type="illegal_argument_exception")) from None
            if ignore_above is not None and isinstance(converted, str) and len(converted) > ignore_above:
                continue
            if converted is not None:
                out.append(converted)
        return encode_values(out, f.sort_kind)

    @staticmethod
    def _failed(f: Field, doc_id: str, preview: str) -> str:
        return (f"failed to parse field [{f.path}] of type [{f.type}] in document with id '{doc_id}'. "
                f"Preview of field's value: '{preview}'")


# --- the store ------------------------------------------------------------------------


class DocumentStore:
    def __init__(self, db: Database, catalog: Catalog) -> None:
        self.db = db
        self.catalog = catalog

    async def reload_catalog(self) -> None:
        async with self.db.read() as conn:
            await self.catalog.load(conn)

    async def create_index(self, name: str, settings: dict[str, Any], mappings: dict[str, Any]) -> Index:
        validate_mapping(mappings)
        try:
            async with self.db.write(indices=[name]) as conn:
                if name in self.catalog.indices:
                    existing = self.catalog.indices[name]
                    raise ServiceError(f"index [{name}/{existing.uuid}] already exists", status=400,
                                       type="resource_already_exists_exception", index_uuid=existing.uuid,
                                       index=name)
                return await _insert_index(conn, self.catalog, name, settings, mappings)
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

    async def put_mapping(self, indices: list[Index], update: dict[str, Any]) -> None:
        validate_mapping(update)
        try:
            async with self.db.write(indices=[i.name for i in indices]) as conn:
                for index in indices:
                    merged = merge_mappings(index.mapping, update)
                    new_paths = {f.path for f in iter_fields(merged)} - set(index.columns)
                    index.mapping = merged
                    await _add_columns(conn, index, [f for f in iter_fields(merged) if f.path in new_paths])
                    await save_index(conn, index)
        except BaseException:
            await self.reload_catalog()
            raise

    async def bulk(self, ops: list[BulkOp]) -> list[dict[str, Any]]:
        """Apply every action in one transaction; return the per-item results in order.
        In the flood stage every action but ``delete`` fails with the block, item by item."""
        if await self.db.flood_stage():
            block_writes(ops)
        grows = any(op.action != "delete" and op.error is None for op in ops)
        try:
            async with self.db.write(grows=grows, indices=[op.index for op in ops if op.index]) as conn:
                session = _WriteSession(conn, self.catalog)
                try:
                    await session.prefetch(ops)
                    items = [await session.apply(op) for op in ops]
                    await session.finish()
                except BaseException:
                    await asyncio.shield(session.abandon())
                    raise
            return items
        except BaseException:
            await self.reload_catalog()
            raise

    async def get(self, index: Index, doc_id: str) -> tuple[int, int, bytes] | None:
        async with self.db.read() as conn:
            async with conn.execute(
                f"SELECT _version, _seq_no, _source FROM {quote(index.table)} WHERE _id = ?", (doc_id,)
            ) as cur:
                row = await cur.fetchone()
        return None if row is None else (row[0], row[1], bytes(row[2]))

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
        "INSERT INTO indices (name, uuid, table_name, created_ms, settings, mappings, columns) "
        "VALUES (?, ?, ?, ?, ?, ?, '{}') RETURNING id",
        (name, uuid, table, created, orjson.dumps(settings).decode(), orjson.dumps(mappings).decode()),
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
    """Give each new leaf field a column (and ``@timestamp`` an index), then rebuild."""
    for f in fields:
        if f.target is not None or f.path in index.columns:
            continue
        if len(index.columns) >= FIELDS_LIMIT:
            raise ServiceError(f"Limit of total fields [{FIELDS_LIMIT}] has been exceeded", status=400,
                               type="illegal_argument_exception")
        column = f"c{len(index.columns) + 1}"
        await conn.execute(f"ALTER TABLE {quote(index.table)} ADD COLUMN {quote(column)} {column_affinity(f.type)}")
        if f.path == TIMESTAMP_FIELD and f.type in ("date", "date_nanos"):
            await conn.execute(f"CREATE INDEX {quote(index.table + '_ts')} ON {quote(index.table)} ({quote(column)})")
        index.columns[f.path] = column
    index.rebuild()


def _item(op: BulkOp, index_name: str, doc_id: str | None, status: int, **body: Any) -> dict[str, Any]:
    return {op.action: {"_index": index_name, "_id": doc_id, **body, "status": status}}


def _error_item(op: BulkOp, index: Index | None, index_name: str, doc_id: str | None,
                err: ServiceError) -> dict[str, Any]:
    error = err.to_dict()
    if index is not None:
        error.update(index_uuid=index.uuid, shard="0", index=index.name)
    return _item(op, index_name, doc_id, err.status, error=error)


_MISSING = object()
_FLUSH_ROWS = 1000


class _WriteSession:
    """The state of one write transaction: known versions, queued statements, touched indices."""

    def __init__(self, conn: aiosqlite.Connection, catalog: Catalog) -> None:
        self.conn = conn
        self.catalog = catalog
        self.pending: list[tuple[str, tuple[Any, ...]]] = []
        # Statements handed to the connection's thread but not yet awaited: aiosqlite runs
        # them in order, so parsing the next documents overlaps SQLite writing these.
        self.inflight: list[asyncio.Future[Any]] = []
        # (index name, id) -> (version, seq_no, source bytes or None when not loaded); None = absent
        self.known: dict[tuple[str, str], tuple[int, int, bytes | None] | None] = {}
        self.touched: dict[str, Index] = {}
        self.parsers: dict[str, DocumentParser] = {}

    async def prefetch(self, ops: list[BulkOp]) -> None:
        """Load the versions of every explicit id in one query per index and chunk."""
        wanted: dict[str, set[str]] = {}
        for op in ops:
            if op.id is not None and op.index in self.catalog.indices and op.error is None:
                wanted.setdefault(op.index, set()).add(op.id)
        for name, ids in wanted.items():
            index = self.catalog.indices[name]
            for key in ids:
                self.known[(name, key)] = None
            id_list = list(ids)
            for start in range(0, len(id_list), 500):
                chunk = id_list[start:start + 500]
                async with self.conn.execute(
                    f"SELECT _id, _version, _seq_no FROM {quote(index.table)} "
                    f"WHERE _id IN ({', '.join('?' * len(chunk))})", chunk
                ) as cur:
                    async for doc_id, version, seq_no in cur:
                        self.known[(name, doc_id)] = (version, seq_no, None)

    async def _lookup(self, index: Index, doc_id: str) -> tuple[int, int, bytes | None] | None:
        key = (index.name, doc_id)
        state = self.known.get(key, _MISSING)
        if state is _MISSING:
            async with self.conn.execute(
                f"SELECT _version, _seq_no FROM {quote(index.table)} WHERE _id = ?", (doc_id,)
            ) as cur:
                row = await cur.fetchone()
            state = None if row is None else (row[0], row[1], None)
            self.known[key] = state
        return state  # type: ignore[return-value]

    async def _source_of(self, index: Index, doc_id: str, state: tuple[int, int, bytes | None]) -> bytes:
        if state[2] is not None:
            return state[2]
        await self._flush()
        async with self.conn.execute(
            f"SELECT _source FROM {quote(index.table)} WHERE _id = ?", (doc_id,)
        ) as cur:
            (source,) = await cur.fetchone()  # type: ignore[misc]
        return bytes(source)

    async def apply(self, op: BulkOp) -> dict[str, Any]:
        name = op.index or ""
        if op.id is None and op.action in ("index", "create"):
            op.id, op.auto_id = auto_id(), True
        if op.error is not None:
            return _error_item(op, None, name, op.id, op.error)
        index = self.catalog.indices.get(name)
        try:
            if index is None:
                index = await self._create_index(name)
            self.touched[name] = index
            if op.action in ("index", "create"):
                state = None if op.auto_id else await self._lookup(index, op.id)  # type: ignore[arg-type]
                return await self._write(op, index, op.id, op.source or {}, op.raw, state)  # type: ignore[arg-type]
            if op.action == "delete":
                return await self._delete(op, index, op.id or "")
            return await self._update(op, index, op.id or "")
        except ServiceError as err:
            return _error_item(op, index, name, op.id, err)

    async def _create_index(self, name: str) -> Index:
        validate_index_name(name)
        await self._flush()
        return await _insert_index(self.conn, self.catalog, name, {}, {})

    async def _write(self, op: BulkOp, index: Index, doc_id: str, doc: dict[str, Any], raw: bytes | None,
                     state: tuple[int, int, bytes | None] | None) -> dict[str, Any]:
        if state is not None and op.action == "create":
            raise ServiceError(f"[{doc_id}]: version conflict, document already exists (current version "
                               f"[{state[0]}])", status=409, type="version_conflict_engine_exception")
        row: list[Any] = [None] * (4 + len(index.columns))
        if not fill_row(doc, index.tree, row):
            parser = self.parsers.get(index.name)
            if parser is None or parser.index is not index:
                parser = self.parsers[index.name] = DocumentParser(index)
            values, new_fields = parser.parse(doc, doc_id)
            if new_fields:
                await self._flush()
                for path, spec in new_fields:
                    add_field(index.mapping, path, spec)
                await _add_columns(self.conn, index,
                                   [f for f in iter_fields(index.mapping) if f.path not in index.columns])
            row = [None] * (4 + len(index.columns))
            positions = index.positions
            for path, value in values.items():
                row[positions[path]] = value
        version = 1 if state is None else state[0] + 1
        seq_no = index.next_seq_no
        index.next_seq_no = seq_no + 1
        source = raw if raw is not None else orjson.dumps(doc)
        row[0], row[1], row[2], row[3] = doc_id, version, seq_no, source
        self.pending.append((index.upsert_sql, tuple(row)))
        if len(self.pending) >= _FLUSH_ROWS:
            self._start_flush()
        if not op.auto_id:
            self.known[(index.name, doc_id)] = (version, seq_no, source)
        created = state is None
        return {op.action: {"_index": index.name, "_id": doc_id, "_version": version,
                            "result": "created" if created else "updated", "_shards": SHARDS, "_seq_no": seq_no,
                            "_primary_term": PRIMARY_TERM, "status": 201 if created else 200}}

    async def _delete(self, op: BulkOp, index: Index, doc_id: str) -> dict[str, Any]:
        state = await self._lookup(index, doc_id)
        seq_no = index.next_seq_no
        index.next_seq_no += 1
        if state is None:
            return _item(op, index.name, doc_id, 404, _version=1, result="not_found", _shards=SHARDS,
                         _seq_no=seq_no, _primary_term=PRIMARY_TERM)
        self.pending.append((f"DELETE FROM {quote(index.table)} WHERE _id = ?", (doc_id,)))
        self.known[(index.name, doc_id)] = None
        return _item(op, index.name, doc_id, 200, _version=state[0] + 1, result="deleted", _shards=SHARDS,
                     _seq_no=seq_no, _primary_term=PRIMARY_TERM)

    async def _update(self, op: BulkOp, index: Index, doc_id: str) -> dict[str, Any]:
        body = op.source or {}
        state = await self._lookup(index, doc_id)
        partial = body.get("doc")
        if state is None:
            if body.get("doc_as_upsert") and isinstance(partial, dict):
                upsert = partial
            elif isinstance(body.get("upsert"), dict):
                upsert = body["upsert"]
            else:
                raise ServiceError(f"[{doc_id}]: document missing", status=404, type="document_missing_exception")
            return await self._write(op, index, doc_id, upsert, None, None)
        current = orjson.loads(await self._source_of(index, doc_id, state))
        merged = _deep_merge(current, partial or {})
        if merged == current and body.get("detect_noop", True):
            return _item(op, index.name, doc_id, 200, _version=state[0], result="noop",
                         _shards={"total": 0, "successful": 0, "failed": 0}, _seq_no=state[1],
                         _primary_term=PRIMARY_TERM)
        return await self._write(op, index, doc_id, merged, None, state)

    def _start_flush(self) -> None:
        pending, self.pending = self.pending, []
        i = 0
        while i < len(pending):
            sql = pending[i][0]
            j = i
            while j < len(pending) and pending[j][0] == sql:
                j += 1
            rows = [params for _, params in pending[i:j]]
            self.inflight.append(asyncio.ensure_future(self.conn.executemany(sql, rows)))
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


def _deep_merge(current: dict[str, Any], partial: dict[str, Any]) -> dict[str, Any]:
    out = dict(current)
    for key, value in partial.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
