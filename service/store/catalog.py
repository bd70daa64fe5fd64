"""The in-memory catalog of indices, loaded from and written back to the ``indices`` table.

Only the writer mutates it, under the write lock; a failed transaction reloads it, so
memory never holds a mapping that the database does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Callable, Iterator, Sequence

import aiosqlite
import orjson

from ..errors import IndexNotFound, ServiceError
from ..patterns import wildcard
from .index_settings import setting_bool, setting_int, stored_settings
from .jsonenc import dumps
from .mapping import FLOAT_TYPES, INTEGER_RANGES, Field, iter_fields, object_paths
from .mapping_parser import DEPTH_LIMIT, FIELDS_LIMIT
from .sql import quote

DOC_COLUMNS = ("_id", "_version", "_seq_no", "_source")
# Within every SQLite's limit on bound parameters (999 before 3.32).
_VARIABLES_PER_STATEMENT = 999
TIMESTAMP_FIELD = "@timestamp"


def column_affinity(type_: str) -> str:
    if type_ in INTEGER_RANGES or type_ in ("boolean", "date", "date_nanos"):
        return "INTEGER"
    if type_ in FLOAT_TYPES:
        return "REAL"
    if type_ in ("keyword", "constant_keyword", "wildcard", "text", "match_only_text", "version", "ip"):
        return "TEXT"
    return "ANY"


@dataclass
class Index:
    id: int
    name: str
    uuid: str
    table: str
    created_ms: int
    settings: dict[str, Any]
    mapping: dict[str, Any]
    columns: dict[str, str]  # field path -> column name
    next_seq_no: int = 0
    # Field paths whose column has ever held a multi-value (an orjson array BLOB, written by
    # ``document_parser.encode_values``). Sticky: a column outside it holds only scalars or
    # NULL, which is what lets a query take SQL's answer for it as exact.
    multi_valued: set[str] = field(default_factory=set)
    fields: dict[str, Field] = field(default_factory=dict)
    subfields: dict[str, list[Field]] = field(default_factory=dict)
    objects: dict[str, str] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)
    upsert_sql: str = ""  # INSERT OR REPLACE ... VALUES, without the rows
    upsert_row: str = ""  # one row's placeholders
    rows_per_upsert: int = 1
    delete_sql: str = ""
    # Field names nested as documents nest them, for the parser's one-pass fast path:
    # name -> dict for an object; name -> ((row position, converter), ...) for a leaf
    # (the field itself, then its multi-fields). Fields needing more care are left out.
    tree: dict[str, Any] = field(default_factory=dict)

    _STORED = ("id", "name", "uuid", "table", "created_ms", "settings", "mapping", "columns", "next_seq_no",
               "multi_valued")

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to a query worker) as its stored definition: the rest holds closures."""
        return {name: getattr(self, name) for name in self._STORED}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.rebuild()

    def rebuild(self) -> None:
        """Recompute everything derived from ``mapping`` and ``columns``."""
        self.fields = {f.path: f for f in iter_fields(self.mapping)}
        self.subfields = {}
        for f in self.fields.values():
            f.column = self.columns.get(f.path)
            if f.parent:
                self.subfields.setdefault(f.parent, []).append(f)
        self.objects = object_paths(self.mapping)
        self.positions = {path: len(DOC_COLUMNS) + i for i, path in enumerate(self.columns)}
        self.tree = {}
        for f in self.fields.values():
            if f.parent is not None or f.target is not None or f.column is None:
                continue
            targets = [f, *self.subfields.get(f.path, ())]
            if not all(t.fast and t.column is not None for t in targets):
                continue
            node = self.tree
            *parents, leaf = f.path.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = tuple((self.positions[t.path], t.convert) for t in targets)
        names = [*DOC_COLUMNS, *self.columns.values()]
        self.upsert_sql = f"INSERT OR REPLACE INTO {quote(self.table)} ({', '.join(map(quote, names))}) VALUES "
        self.upsert_row = f"({', '.join('?' * len(names))})"
        self.rows_per_upsert = max(1, _VARIABLES_PER_STATEMENT // len(names))
        self.delete_sql = f"DELETE FROM {quote(self.table)} WHERE _id = ?"

    def upserts(self, rows: list[tuple[Any, ...]]) -> Iterator[tuple[str, list[Sequence[Any]]]]:
        """``rows`` as ``(sql, [parameters, ...])`` for ``executemany``, many rows to a statement.

        Each statement inserts ``rows_per_upsert`` rows: the sqlite3 module takes the GIL back
        after every ``sqlite3_step``, once per statement, so one step per row would hand
        the GIL to and fro with the event loop thousands of times a bulk (it is several times
        slower whenever another thread is busy, and slower even when none is). Later rows replace
        earlier ones with the same ``_id`` in order, as separate statements would.
        """
        per = self.rows_per_upsert
        whole = len(rows) - len(rows) % per
        if whole:
            yield (self.upsert_sql + ", ".join([self.upsert_row] * per),
                   [list(chain.from_iterable(rows[i:i + per])) for i in range(0, whole, per)])
        if whole < len(rows):
            rest = rows[whole:]
            yield self.upsert_sql + ", ".join([self.upsert_row] * len(rest)), [list(chain.from_iterable(rest))]

    @property
    def dynamic(self) -> str:
        return self.objects.get("", "true")

    @property
    def fields_limit(self) -> int:
        """``index.mapping.total_fields.limit``."""
        return setting_int(self.settings, "index.mapping.total_fields.limit", FIELDS_LIMIT)

    @property
    def depth_limit(self) -> int:
        """``index.mapping.depth.limit``."""
        return setting_int(self.settings, "index.mapping.depth.limit", DEPTH_LIMIT)

    @property
    def ignore_dynamic_beyond_limit(self) -> bool:
        """``index.mapping.total_fields.ignore_dynamic_beyond_limit``."""
        return setting_bool(self.settings, "index.mapping.total_fields.ignore_dynamic_beyond_limit", False)


_INVALID_CHARS = '\\/*?"<>| ,'
# as ES prints Strings.INVALID_FILENAME_CHARS in its message
_INVALID_LISTED = '[ , ", *, \\, <, |, ,, >, /, ?]'


def validate_index_name(name: str) -> None:
    """ES's checks of a new index name, in ES's order, with its messages."""
    def invalid(reason: str) -> ServiceError:
        return ServiceError(f"Invalid index name [{name}], {reason}", status=400,
                            type="invalid_index_name_exception", index_uuid="_na_", index=name)

    if any(c in _INVALID_CHARS for c in name):
        raise invalid(f"must not contain the following characters {_INVALID_LISTED}")
    if not name:
        raise invalid("must not be empty")
    if "#" in name:
        raise invalid("must not contain '#'")
    if ":" in name:
        raise invalid("must not contain ':'")
    if name[0] in ("_", "-", "+"):
        raise invalid("must not start with '_', '-', or '+'")
    if len(name.encode()) > 255:
        raise invalid(f"index name is too long, ({len(name.encode())} > 255)")
    if name in (".", ".."):
        raise invalid("must not be '.' or '..'")
    if name != name.lower():
        raise invalid("must be lowercase")


class Catalog:
    def __init__(self) -> None:
        self.indices: dict[str, Index] = {}

    async def load(self, conn: aiosqlite.Connection) -> None:
        loaded: dict[str, Index] = {}
        async with conn.execute(
            "SELECT id, name, uuid, table_name, created_ms, settings, mappings, columns, next_seq_no, multi_valued "
            "FROM indices ORDER BY name"
        ) as cur:
            rows = await cur.fetchall()
        for row in rows:
            index = Index(row[0], row[1], row[2], row[3], row[4], stored_settings(orjson.loads(row[5])),
                          orjson.loads(row[6]), orjson.loads(row[7]), row[8])
            # NULL only if the database was never opened by a writer since 0004 (see
            # ``record_multi_valued``): the table itself says, never a guess.
            index.multi_valued = (set(orjson.loads(row[9])) if row[9] is not None
                                  else await multi_valued_in_table(conn, index.table, index.columns))
            index.rebuild()
            loaded[index.name] = index
        self.indices = loaded

    def get(self, name: str) -> Index:
        try:
            return self.indices[name]
        except KeyError:
            raise IndexNotFound(name) from None

    def subset(self, patterns: list[str]) -> Catalog:
        """A catalog of the indices any of ``patterns`` (names, wildcards, ``_all``) can
        name: what a query over those patterns needs to see."""
        everything = any(p in ("_all", "*") for p in patterns)
        part = Catalog()
        part.indices = {n: ix for n, ix in self.indices.items()
                        if everything or any(wildcard(p)(n) for p in patterns)}
        return part

    def only(self, keep: Callable[[str], bool]) -> Catalog:
        """A catalog of the indices whose name ``keep`` accepts (what a principal may read)."""
        part = Catalog()
        part.indices = {n: ix for n, ix in self.indices.items() if keep(n)}
        return part

    def resolve(self, expression: str, *, allow_no_indices: bool = True,
                ignore_unavailable: bool = False) -> list[Index]:
        """Resolve ``a,b*,-b2`` (comma list, wildcards, exclusions) to indices, sorted by name.

        A concrete missing name raises ``IndexNotFound`` unless ``ignore_unavailable``;
        wildcards that match nothing are fine while ``allow_no_indices``.
        """
        selected: dict[str, Index] = {}
        parts = [p.strip() for p in expression.split(",") if p.strip()] or ["_all"]
        for i, part in enumerate(parts):
            if part.startswith("-") and i > 0:
                excluded = wildcard(part[1:])
                for name in [n for n in selected if excluded(n)]:
                    del selected[name]
            elif part in ("_all", "*"):
                selected.update(self.indices)
            elif "*" in part:
                matches = wildcard(part)
                selected.update({n: ix for n, ix in self.indices.items() if matches(n) and not n.startswith(".")})
                if not allow_no_indices and not any(matches(n) for n in self.indices):
                    raise IndexNotFound(part)
            elif part in self.indices:
                selected[part] = self.indices[part]
            elif not ignore_unavailable:
                raise IndexNotFound(part)
        return [selected[n] for n in sorted(selected)]


async def save_index(conn: aiosqlite.Connection, index: Index) -> None:
    """Store what a write changed (mapping, columns, seq_no, multi-value flags), inside the
    write's own transaction, so the flags are durable exactly when the rows are."""
    await conn.execute(
        "UPDATE indices SET mappings = ?, columns = ?, next_seq_no = ?, multi_valued = ? WHERE id = ?",
        (dumps(index.mapping).decode(), orjson.dumps(index.columns).decode(), index.next_seq_no,
         _multi_valued_json(index.multi_valued), index.id),
    )


def _multi_valued_json(paths: set[str]) -> str:
    return orjson.dumps(sorted(paths)).decode()


async def multi_valued_in_table(conn: aiosqlite.Connection, table: str, columns: dict[str, str]) -> set[str]:
    """The field paths whose column holds a multi-value now: one scan of the table.

    Only multi-values are stored as BLOBs (scalars are integers, reals or text), so
    ``typeof = 'blob'`` finds exactly them.
    """
    paths, found = list(columns), set()
    for start in range(0, len(paths), _COLUMNS_PER_SCAN):
        chunk = paths[start:start + _COLUMNS_PER_SCAN]
        tests = ", ".join(f"max(typeof({quote(columns[p])}) = 'blob')" for p in chunk)
        async with conn.execute(f"SELECT {tests} FROM {quote(table)}") as cur:
            row = await cur.fetchone()
        found.update(p for p, held in zip(chunk, row or ()) if held)
    return found


_COLUMNS_PER_SCAN = 500  # well inside SQLite's 2,000 result columns


async def record_multi_valued(conn: aiosqlite.Connection) -> None:
    """Give indices made before the flags were kept (``multi_valued`` NULL) theirs, computed
    from their tables once, at start-up, on the writer."""
    async with conn.execute("SELECT id, table_name, columns FROM indices WHERE multi_valued IS NULL") as cur:
        unknown = await cur.fetchall()
    if not unknown:
        return
    await conn.execute("BEGIN IMMEDIATE")
    try:
        for index_id, table, columns in unknown:
            paths = await multi_valued_in_table(conn, table, orjson.loads(columns))
            await conn.execute("UPDATE indices SET multi_valued = ? WHERE id = ?",
                               (_multi_valued_json(paths), index_id))
        await conn.commit()
    except BaseException:
        await conn.rollback()
        raise
