"""Users, roles and API keys: every statement on ``security_users``, ``security_roles`` and
``security_api_keys``.

Values are bound parameters; JSON columns go in and out through orjson. A change is one
statement whose row count says whether it applied (a user created or replaced, a key
invalidated only while it was valid), never a read then a write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import orjson

from .db import Database


@dataclass(frozen=True)
class StoredUser:
    username: str
    password_hash: str
    roles: list[str]
    full_name: str | None
    email: str | None
    metadata: dict[str, Any]
    enabled: bool
    reserved: bool


@dataclass(frozen=True)
class StoredKey:
    id: str
    name: str
    key_hash: str
    owner: str
    realm: str
    realm_type: str
    created_ms: int
    expires_ms: int | None
    invalidated_ms: int | None
    role_descriptors: dict[str, Any]
    limited_by: dict[str, Any]  # the creator's role descriptors by name, as they were
    metadata: dict[str, Any]


_USER = "username, password_hash, roles, full_name, email, metadata, enabled, reserved"
_KEY = ("id, name, key_hash, owner, realm, realm_type, created_ms, expires_ms, invalidated_ms, role_descriptors, "
        "limited_by, metadata")


def _user(row: Sequence[Any]) -> StoredUser:
    return StoredUser(row[0], row[1], orjson.loads(row[2]), row[3], row[4], orjson.loads(row[5]), bool(row[6]),
                      bool(row[7]))


def _key(row: Sequence[Any]) -> StoredKey:
    return StoredKey(*row[:9], orjson.loads(row[9]), orjson.loads(row[10]), orjson.loads(row[11]))


class SecurityStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- users ---------------------------------------------------------------------------

    async def user(self, username: str) -> StoredUser | None:
        async with self.db.read() as conn:
            async with conn.execute(f"SELECT {_USER} FROM security_users WHERE username = ?", (username,)) as cur:
                row = await cur.fetchone()
        return _user(row) if row else None

    async def users(self, names: Sequence[str] | None = None) -> list[StoredUser]:
        """Every user (``names`` None) or those named, by name."""
        async with self.db.read() as conn:
            async with conn.execute(f"SELECT {_USER} FROM security_users ORDER BY username") as cur:
                rows = await cur.fetchall()
        wanted = None if names is None else set(names)
        return [_user(r) for r in rows if wanted is None or r[0] in wanted]

    async def put_user(self, user: StoredUser, now_ms: int, *, keep_password: bool) -> bool | None:
        """Create ``user`` or replace a non-reserved one (its password too unless
        ``keep_password``); True when created, False when replaced, None when the name is a
        reserved user's (nothing changed). One transaction: the look and the write are atomic."""
        async with self.db.write(grows=True) as conn:
            async with conn.execute("SELECT reserved FROM security_users WHERE username = ?", (user.username,)) as cur:
                row = await cur.fetchone()
            if row is not None and row[0]:
                return None
            await conn.execute(
                f"INSERT INTO security_users ({_USER}, changed_ms) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?) "
                "ON CONFLICT (username) DO UPDATE SET roles = excluded.roles, full_name = excluded.full_name, "
                "email = excluded.email, metadata = excluded.metadata, enabled = excluded.enabled, "
                "changed_ms = excluded.changed_ms, password_hash = CASE WHEN ? THEN security_users.password_hash "
                "ELSE excluded.password_hash END",
                (user.username, user.password_hash, orjson.dumps(user.roles), user.full_name, user.email,
                 orjson.dumps(user.metadata), int(user.enabled), now_ms, int(keep_password)))
        return row is None

    async def create_reserved(self, username: str, password_hash: str, roles: list[str], now_ms: int) -> bool:
        """The reserved user, unless it exists (a restart never rotates its password)."""
        async with self.db.write(grows=True) as conn:
            cur = await conn.execute(
                f"INSERT INTO security_users ({_USER}, changed_ms) VALUES (?, ?, ?, NULL, NULL, ?, 1, 1, ?) "
                "ON CONFLICT (username) DO NOTHING",
                (username, password_hash, orjson.dumps(roles), orjson.dumps({"_reserved": True}), now_ms))
            return cur.rowcount == 1

    async def set_password(self, username: str, password_hash: str, now_ms: int) -> bool:
        async with self.db.write(grows=False) as conn:
            cur = await conn.execute("UPDATE security_users SET password_hash = ?, changed_ms = ? WHERE username = ?",
                                     (password_hash, now_ms, username))
            return cur.rowcount == 1

    async def delete_user(self, username: str) -> bool:
        """Delete a non-reserved user; True when one was deleted."""
        async with self.db.write(grows=False) as conn:
            cur = await conn.execute("DELETE FROM security_users WHERE username = ? AND reserved = 0", (username,))
            return cur.rowcount == 1

    # --- roles ---------------------------------------------------------------------------

    async def roles(self, names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Every stored role (``names`` None) or those named, by name."""
        async with self.db.read() as conn:
            async with conn.execute("SELECT name, descriptor FROM security_roles ORDER BY name") as cur:
                rows = await cur.fetchall()
        wanted = None if names is None else set(names)
        return {name: orjson.loads(d) for name, d in rows if wanted is None or name in wanted}

    async def put_role(self, name: str, descriptor: dict[str, Any], now_ms: int) -> bool:
        """Create or replace a role; True when it was created."""
        async with self.db.write(grows=True) as conn:
            async with conn.execute("SELECT 1 FROM security_roles WHERE name = ?", (name,)) as cur:
                existed = await cur.fetchone() is not None
            await conn.execute(
                "INSERT INTO security_roles (name, descriptor, changed_ms) VALUES (?, ?, ?) ON CONFLICT (name) "
                "DO UPDATE SET descriptor = excluded.descriptor, changed_ms = excluded.changed_ms",
                (name, orjson.dumps(descriptor), now_ms))
        return not existed

    async def delete_role(self, name: str) -> bool:
        async with self.db.write(grows=False) as conn:
            cur = await conn.execute("DELETE FROM security_roles WHERE name = ?", (name,))
            return cur.rowcount == 1

    # --- API keys ------------------------------------------------------------------------

    async def create_key(self, key: StoredKey) -> None:
        async with self.db.write(grows=True) as conn:
            await conn.execute(
                f"INSERT INTO security_api_keys ({_KEY}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key.id, key.name, key.key_hash, key.owner, key.realm, key.realm_type, key.created_ms, key.expires_ms,
                 key.invalidated_ms, orjson.dumps(key.role_descriptors), orjson.dumps(key.limited_by),
                 orjson.dumps(key.metadata)))

    async def key(self, key_id: str) -> StoredKey | None:
        async with self.db.read() as conn:
            async with conn.execute(f"SELECT {_KEY} FROM security_api_keys WHERE id = ?", (key_id,)) as cur:
                row = await cur.fetchone()
        return _key(row) if row else None

    async def keys(self, *, key_id: str | None = None, name: str | None = None, owner: str | None = None,
                   realm: str | None = None) -> list[StoredKey]:
        """The keys matching every filter given (``name`` may be a ``*`` wildcard: the caller
        filters it), oldest first."""
        clauses, params = [], []
        for column, value in (("id", key_id), ("owner", owner), ("realm", realm)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if name is not None and "*" not in name:
            clauses.append("name = ?")
            params.append(name)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        async with self.db.read() as conn:
            async with conn.execute(f"SELECT {_KEY} FROM security_api_keys{where} ORDER BY created_ms, id",
                                    params) as cur:
                return [_key(r) for r in await cur.fetchall()]

    async def invalidate(self, key_ids: Sequence[str], now_ms: int) -> list[str]:
        """Invalidate the keys among ``key_ids`` still valid; the ids that were."""
        done = []
        async with self.db.write(grows=False) as conn:
            for key_id in key_ids:
                cur = await conn.execute("UPDATE security_api_keys SET invalidated_ms = ? WHERE id = ? "
                                         "AND invalidated_ms IS NULL", (now_ms, key_id))
                if cur.rowcount == 1:
                    done.append(key_id)
        return done
