"""Per-user and per-role limits of background tasks (spec sme-background-tasks.md §7.1).

They are documents of the limits index (the cluster setting ``sme.core.limits.index_name``,
default ``.sm_sme_limits_user``), which an administrator fills like any index, one document
per user or role ([PROPOSAL]: the vendor's UI keeps its own shape)::

    PUT .sm_sme_limits_user/_doc/user-alice  {"user": "alice", "max_qsize": 50000}
    PUT .sm_sme_limits_user/_doc/role-analyst {"role": "analyst", "allowed_commands": ["source", "stats"]}

A document names one ``user`` or one ``role`` and sets any of the limits of ``FIELDS``;
``allowed_commands`` is a JSON list or a comma-separated string. What applies to a user, limit
by limit: its own document's value; else the most permissive of its roles' (the largest
number or size, the earliest ``allowed_dt_start``, the latest ``allowed_dt_end``); else the
base limit of the cluster settings (``sme.core.limits.base.*``). ``allowed_commands`` is the
union of the user's own list and its roles' lists. ``sme.core.enable_limits: false`` turns
every limit off. A value that does not parse refuses the task (400, naming the document): a
limit an administrator set is never silently dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import orjson

from ...errors import BadRequest, IndexNotFound
from ...store.catalog import Catalog
from ...store.db import query_connection
from ...store.sql import quote
from . import request as r
from . import times

INDEX_SETTING = "sme.core.limits.index_name"
ENABLE_SETTING = "sme.core.enable_limits"
_BASE = "sme.core.limits.base."
FIELDS = ("max_qsize", "allowed_commands", "max_search_running_time", "allowed_dt_start", "allowed_dt_end",
          "max_payload_row_count", "max_payload_size", "max_command_ram_usage")
_SIZES = ("max_payload_size", "max_command_ram_usage")
_COUNTS = ("max_qsize", "max_search_running_time", "max_payload_row_count")


def _text(value: Any) -> str | None:
    """A document's value in the cluster setting's spelling; None when it has none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(v.strip() for v in value)
    return None


def _commands(value: str) -> set[str]:
    return {n.strip().lower() for n in value.split(",") if n.strip()}


def _checked(field: str, value: Any, subject: str, now_ms: int) -> str:
    """``value`` checked as the base setting of that name is, else a 400 naming ``subject``."""
    text = _text(value)
    try:
        if text is None:
            raise BadRequest("not a number, string or list of strings")
        if field in _COUNTS and not (text.isdecimal() and int(text) >= 1):
            raise BadRequest("must be a whole number of at least 1")
        if field in _SIZES:
            r.check_bytes(_BASE + field, text)
        if field in ("allowed_dt_start", "allowed_dt_end"):
            times.resolve(text, now_ms, round_up=field == "allowed_dt_end", name=field)
    except BadRequest as exc:
        raise BadRequest(f"the limit [{field}] of {subject} in the limits index is not valid: [{value}]: "
                         f"{exc.reason}") from None
    return text


def _most_permissive(field: str, values: list[str], now_ms: int) -> str:
    if field in _COUNTS:
        return str(max(int(v) for v in values))
    if field in _SIZES:
        return str(max(r.size_bytes(v) for v in values))
    if field == "allowed_commands":
        return ",".join(sorted(set().union(*map(_commands, values))))
    late = field == "allowed_dt_end"
    return (max if late else min)(values, key=lambda v: times.resolve(v, now_ms, round_up=late, name=field))


def resolve(docs: Iterable[Any], user: str, roles: Iterable[str], now_ms: int) -> dict[str, str]:
    """The limits (field -> value) the documents set for ``user`` with ``roles`` (§7.1)."""
    roles = set(roles)
    own: dict[str, str] = {}
    of_roles: dict[str, list[str]] = {}
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        if doc.get("user") == user and "role" not in doc:
            subject, into = f"user [{user}]", None
        elif isinstance(doc.get("role"), str) and doc["role"] in roles and "user" not in doc:
            subject, into = f"role [{doc['role']}]", of_roles
        else:
            continue
        for field in FIELDS:
            if field in doc and doc[field] is not None:
                value = _checked(field, doc[field], subject, now_ms)
                if into is None:
                    own[field] = value
                else:
                    into.setdefault(field, []).append(value)
    out = {f: _most_permissive(f, v, now_ms) for f, v in of_roles.items()}
    for field, value in own.items():
        out[field] = ",".join(sorted(_commands(value) | _commands(out.get(field, "")))) \
            if field == "allowed_commands" else value
    return out


def read_docs(db_path: Path, catalog: Catalog, index: str) -> list[Any]:
    """The limits index's documents, from the database at ``db_path`` (none without it)."""
    try:
        table = catalog.get(index).table
    except IndexNotFound:
        return []
    conn = query_connection(db_path)
    try:
        return [orjson.loads(raw) for (raw,) in conn.execute(f"SELECT _source FROM {quote(table)} ORDER BY rowid")]
    finally:
        conn.close()


def setting_for(base: Callable[[str], str], limits: dict[str, str]) -> Callable[[str], str]:
    """The cluster settings as one user's task reads them: its limits over the base limits,
    and no limit at all while ``sme.core.enable_limits`` is false."""
    enabled = base(ENABLE_SETTING) == "true"

    def setting(name: str) -> str:
        if name.startswith(_BASE):
            if not enabled:
                return ""
            return limits.get(name[len(_BASE):], base(name))
        return base(name)
    return setting
