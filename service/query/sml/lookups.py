"""Lookups are indices (spec/sml.md §7.16).

A lookup's definition is a document of the index ``.sm_sme_lookups`` (the Lookup
Manager's configurations) whose ``name`` is the lookup's: ``idx`` is the index holding
its rows, ``case_sensitive``, ``wildcards`` and ``cidrmatch`` list the fields matched
case-sensitively, as ``*`` patterns and as CIDR ranges. Without a definition the lookup
is the index of that name, every field matched as a case-insensitive string.

Definitions are read when a task is created (its plan needs the lookup's fields), from
the database the task will run on, through a connection of its own.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import orjson

from ... import patterns
from ...errors import IndexNotFound
from ...store.catalog import Catalog
from ...store.db import query_connection
from ...store.sql import quote
from .values import first, text

LOOKUPS_INDEX = ".sm_sme_lookups"


@dataclass(frozen=True)
class Definition:
    name: str
    index: str  # the index holding the lookup's rows
    case_sensitive: frozenset[str] = frozenset()
    wildcards: frozenset[str] = frozenset()
    cidrmatch: frozenset[str] = frozenset()

    def matcher(self, field: str, value: Any) -> Callable[[Any], bool] | None:
        """Whether an event's value matches a lookup row's ``value`` of ``field``, by the
        field's rule; None when the row's value can match nothing (null, a bad CIDR)."""
        value = first(value)
        if value is None:
            return None
        sensitive = field in self.case_sensitive
        if field in self.cidrmatch:
            return _in_network(text(value))
        wanted = text(value) if sensitive else text(value).lower()
        if field in self.wildcards and "*" in wanted:
            match = patterns.wildcard(wanted)
            return lambda v: match(text(v) if sensitive else text(v).lower())
        return lambda v: (text(v) if sensitive else text(v).lower()) == wanted

    def key(self, field: str, value: Any) -> str | None:
        """An event's or a row's value as the exact fields compare it (None: null)."""
        value = first(value)
        if value is None:
            return None
        return text(value) if field in self.case_sensitive else text(value).lower()

    def exact(self, field: str) -> bool:
        return field not in self.wildcards and field not in self.cidrmatch


Definitions = Callable[[str], Definition]


def of_index(name: str) -> Definition:
    """The lookup that is the index ``name`` itself."""
    return Definition(name, name)


def reader(db_path: Path, catalog: Catalog) -> Definitions:
    """The definitions in the lookups index of the database at ``db_path``: the first
    document (in insertion order) whose ``name`` is the lookup's, else ``of_index``."""
    def definition(name: str) -> Definition:
        try:
            index = catalog.get(LOOKUPS_INDEX)
        except IndexNotFound:
            return of_index(name)
        conn = query_connection(db_path)
        try:
            for (raw,) in conn.execute(f"SELECT _source FROM {quote(index.table)} ORDER BY rowid"):
                doc = orjson.loads(raw)
                if isinstance(doc, dict) and doc.get("name") == name:
                    return _definition(name, doc)
        finally:
            conn.close()
        return of_index(name)
    return definition


def _definition(name: str, doc: dict[str, Any]) -> Definition:
    index = doc.get("idx")
    return Definition(name, index if isinstance(index, str) and index else name, _names(doc.get("case_sensitive")),
                      _names(doc.get("wildcards")), _names(doc.get("cidrmatch")))


def _names(value: Any) -> frozenset[str]:
    """A definition's list of fields: a JSON array, or one string of comma-separated names."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return frozenset()
    return frozenset(v.strip() for v in value if isinstance(v, str) and v.strip())


def _in_network(cidr: str) -> Callable[[Any], bool] | None:
    try:
        network = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        return None

    def contains(v: Any) -> bool:
        try:
            return ipaddress.ip_address(text(v).strip()) in network
        except (ValueError, TypeError):
            return False
    return contains
