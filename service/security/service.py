"""Users, roles and API keys as Elasticsearch's security APIs manage them, and the lookup
that turns credentials into a ``Principal``.

Every change validates its whole input before it writes anything, and drops the
authentication cache entries it could make stale: a user's (and its keys') when the user
changes, every entry when a role changes (any principal may hold it), a key's when it is
invalidated.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Callable

import structlog

from ..errors import BadRequest, ServiceError, ValidationError
from ..params import parse_time_ms
from ..patterns import wildcard
from ..store.security import SecurityStore, StoredKey, StoredUser
from . import passwords
from .authn import AuthCache, Credentials, Refused
from .principal import API_KEY_REALM, NATIVE_REALM, RESERVED_REALM, ApiKeyRef, Principal
from .roles import BUILTIN, RESERVED, Limited, Permission, name_rule, parse_descriptor, valid_name

log = structlog.get_logger(__name__)

ELASTIC = "elastic"
RESERVED_USERS = frozenset({ELASTIC, "kibana", "kibana_system", "logstash_system", "beats_system", "apm_system",
                            "remote_monitoring_user"})
MAX_KEY_NAME = 1024
HASHING_SLOTS = 2


class ValidationFailure(ServiceError):
    """ES's ``ValidationException`` (``validation_exception``, numbered like the request one)."""

    status = 400
    type = "validation_exception"

    def __init__(self, problem: str) -> None:
        super().__init__(f"Validation Failed: 1: {problem};")


class ParseFailure(ServiceError):
    status = 400
    type = "parse_exception"


@dataclass(frozen=True)
class NewKey:
    id: str
    name: str
    secret: str
    expires_ms: int | None


class Security:
    def __init__(self, store: SecurityStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self.cache = AuthCache(lambda: self.clock())
        # At most HASHING_SLOTS slow hashes at once: a flood of wrong passwords queues here
        # instead of taking every thread of the loop's executor (which also renders big answers).
        self._hashing = asyncio.Semaphore(HASHING_SLOTS)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def _verify(self, secret: str, stored: str | None) -> bool:
        async with self._hashing:
            return await passwords.verify(secret, stored)

    async def _hash(self, secret: str) -> str:
        async with self._hashing:
            return await passwords.hash_secret(secret)

    # --- start-up --------------------------------------------------------------------------

    async def bootstrap(self, password: str | None) -> str | None:
        """At the first start with security on, the reserved ``elastic`` superuser with
        ``password`` (else a generated one, returned so it can be shown once); later starts
        change nothing, whatever password they are given."""
        if await self.store.user(ELASTIC) is not None:
            return None
        generated = None if password else passwords.generate_password()
        digest = await self._hash(password or generated)  # type: ignore[arg-type]
        created = await self.store.create_reserved(ELASTIC, digest, ["superuser"], self.now_ms())
        if created:
            log.info("bootstrap_user_created", user=ELASTIC, password_generated=generated is not None)
        return generated if created else None

    # --- authentication ---------------------------------------------------------------------

    async def lookup(self, credentials: Credentials) -> tuple[Principal, float | None]:
        """The principal behind ``credentials`` and when it stops being valid (an API key's
        expiry, in seconds), or ``Refused``."""
        if credentials.scheme == "basic":
            return await self._user_principal(credentials), None
        return await self._key_principal(credentials)

    async def _user_principal(self, credentials: Credentials) -> Principal:
        user = await self.store.user(credentials.name)
        verified = await self._verify(credentials.secret, user.password_hash if user else None)
        if user is None or not verified:
            raise Refused("unknown user or wrong password")
        if not user.enabled:
            raise Refused("user is disabled")
        return await self.principal_of(user)

    async def principal_of(self, user: StoredUser) -> Principal:
        found = await self.role_descriptors(user.roles)
        return Principal(user.username, tuple(user.roles), tuple(found), Permission.of(found.values()),
                         RESERVED_REALM if user.reserved else NATIVE_REALM, user.full_name, user.email,
                         user.metadata)

    async def _key_principal(self, credentials: Credentials) -> tuple[Principal, float | None]:
        key = await self.store.key(credentials.name)
        if key is None:
            await self._verify(credentials.secret, None)  # as long as a wrong secret takes
            raise Refused(f"unable to find apikey with id {credentials.name}")
        if not await self._verify(credentials.secret, key.key_hash):
            raise Refused(f"invalid credentials for API key [{key.id}]")
        if key.invalidated_ms is not None:
            raise Refused(f"api key [{key.id}] has been invalidated")
        if key.expires_ms is not None and key.expires_ms <= self.now_ms():
            raise Refused("api key is expired")
        owner = await self.store.user(key.owner)
        if owner is None or not owner.enabled:
            raise Refused(f"the owner of api key [{key.id}] is no longer active")
        limit = Permission.of(key.limited_by.values())
        own = Permission.of(key.role_descriptors.values()) if key.role_descriptors else limit
        principal = Principal(key.owner, (), (), Limited(own, limit), API_KEY_REALM, owner.full_name, owner.email,
                              owner.metadata, ApiKeyRef(key.id, key.name))
        return principal, (key.expires_ms / 1000 if key.expires_ms is not None else None)

    # --- roles ------------------------------------------------------------------------------

    async def role_descriptors(self, names: list[str] | tuple[str, ...]) -> dict[str, dict[str, Any]]:
        """The descriptors of the named roles that exist (built-in first), in the order named."""
        stored = await self.store.roles([n for n in names if n not in BUILTIN])
        return {n: BUILTIN.get(n) or stored[n] for n in names if n in BUILTIN or n in stored}

    async def get_roles(self, names: list[str] | None) -> dict[str, dict[str, Any]]:
        if names is None:
            return {**BUILTIN, **await self.store.roles()}
        return await self.role_descriptors(names)

    async def put_role(self, name: str, body: dict[str, Any]) -> bool:
        problems = []
        if not valid_name(name):
            problems.append(name_rule("Role"))
        elif name in RESERVED:
            problems.append(f"Role [{name}] is reserved and may not be used.")
        if problems:
            raise ValidationError(*problems)
        descriptor = parse_descriptor(name, body)
        created = await self.store.put_role(name, descriptor, self.now_ms())
        self.cache.clear()
        return created

    async def delete_role(self, name: str) -> bool:
        if name in RESERVED:
            raise BadRequest(f"role [{name}] is reserved and cannot be deleted")
        deleted = await self.store.delete_role(name)
        if deleted:
            self.cache.clear()
        return deleted

    # --- users ------------------------------------------------------------------------------

    async def get_users(self, names: list[str] | None) -> list[StoredUser]:
        return await self.store.users(names)

    async def put_user(self, name: str, body: dict[str, Any]) -> bool:
        """Create or update a native user (ES's PutUser): every check first, then one write."""
        fields = _user_fields(name, body)
        password = fields.pop("password")
        if password is not None:
            _check_password(password)
        existing = await self.store.user(name)
        if password is None and existing is None:
            raise ValidationFailure("password must be specified unless you are updating an existing user")
        digest = await self._hash(password) if password is not None else ""
        user = StoredUser(name, digest, fields["roles"], fields["full_name"], fields["email"], fields["metadata"],
                          fields["enabled"], False)
        created = await self.store.put_user(user, self.now_ms(), keep_password=password is None)
        if created is None:
            raise BadRequest(f"user [{name}] is reserved and only the password can be changed")
        self.cache.drop_user(name)
        return created

    async def change_password(self, name: str, password: Any) -> None:
        if not isinstance(password, str):
            raise ValidationError("password must be specified")
        _check_password(password)
        digest = await self._hash(password)
        if not await self.store.set_password(name, digest, self.now_ms()):
            raise ValidationFailure("user must exist in order to change password")
        self.cache.drop_user(name)

    async def delete_user(self, name: str) -> bool:
        if name in RESERVED_USERS:
            raise BadRequest(f"user [{name}] is reserved and cannot be deleted")
        deleted = await self.store.delete_user(name)
        self.cache.drop_user(name)
        return deleted

    # --- API keys ---------------------------------------------------------------------------

    async def create_key(self, creator: Principal, body: dict[str, Any]) -> NewKey:
        """A key owned by ``creator``'s user, bounded by ``creator``'s roles as they are now."""
        name, expires_ms, descriptors, metadata = _key_fields(body, self.now_ms())
        if creator.api_key is not None:
            if not descriptors or any(d["cluster"] or d["indices"] or d["applications"] or d["run_as"]
                                      for d in descriptors.values()):
                raise BadRequest("creating derived api keys requires an explicit role descriptor that is empty "
                                 "(has no privileges)")
            source = await self.store.key(creator.api_key.id)
            limited_by = source.limited_by if source else {}
        else:
            user = await self.store.user(creator.username)
            limited_by = await self.role_descriptors(user.roles if user else [])
        key_id, secret = passwords.generate_api_key()
        realm = creator.realm if creator.api_key is None else NATIVE_REALM
        await self.store.create_key(StoredKey(
            key_id, name, await self._hash(secret), creator.username, realm[0], realm[1], self.now_ms(),
            expires_ms, None, descriptors, limited_by, metadata))
        return NewKey(key_id, name, secret, expires_ms)

    async def find_keys(self, *, key_id: str | None = None, name: str | None = None, owner: str | None = None,
                        realm: str | None = None, active_only: bool = False) -> list[StoredKey]:

        keys = await self.store.keys(key_id=key_id, name=name, owner=owner, realm=realm)
        if name is not None and "*" in name:
            keys = [k for k in keys if wildcard(name)(k.name)]
        if active_only:
            now = self.now_ms()
            keys = [k for k in keys if k.invalidated_ms is None and (k.expires_ms is None or k.expires_ms > now)]
        return keys

    async def invalidate_keys(self, keys: list[StoredKey]) -> tuple[list[str], list[str]]:
        """The ids invalidated now, and those that already were."""
        done = await self.store.invalidate([k.id for k in keys], self.now_ms())
        for key_id in done:
            self.cache.drop_key(key_id)
        return done, [k.id for k in keys if k.id not in done]


def _check_password(password: str) -> None:
    if len(password) < passwords.MIN_PASSWORD:
        raise ValidationFailure(f"passwords must be at least [{passwords.MIN_PASSWORD}] characters long")


_USER_FIELDS = frozenset({"username", "password", "password_hash", "roles", "full_name", "email", "metadata",
                          "enabled"})


def _user_fields(name: str, body: dict[str, Any]) -> dict[str, Any]:
    """PutUser's body, type-checked; ES's parse errors, then its validation errors."""
    for key in body:
        if key not in _USER_FIELDS:
            raise ParseFailure(f"failed to parse add user request. unexpected field [{key}]")
    if "password_hash" in body:
        raise BadRequest("the [password_hash] field is not supported here: give the [password]")
    roles = body.get("roles")
    if isinstance(roles, str):
        roles = [roles]
    if roles is not None and (not isinstance(roles, list) or not all(isinstance(r, str) for r in roles)):
        raise ParseFailure("failed to parse add user request. expected field [roles] to be an array of strings")
    for field in ("password", "full_name", "email"):
        if body.get(field) is not None and not isinstance(body[field], str):
            raise ParseFailure(f"failed to parse add user request. expected field [{field}] to be of type string")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ParseFailure("failed to parse add user request. expected field [metadata] to be an object")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ParseFailure("failed to parse add user request. expected field [enabled] to be a boolean")
    problems = []
    if body.get("username") not in (None, name):
        problems.append(f"the username [{body['username']}] in the request body does not match the path [{name}]")
    if not valid_name(name):
        problems.append(name_rule("User"))
    elif name in RESERVED_USERS:
        problems.append(f"Username [{name}] is reserved and may not be used.")
    if roles is None:
        problems.append("roles are missing")
    if any(key.startswith("_") for key in metadata):
        problems.append("metadata keys may not start with [_]")
    if problems:
        raise ValidationError(*problems)
    return {"password": body.get("password"), "roles": roles, "full_name": body.get("full_name"),
            "email": body.get("email"), "metadata": metadata, "enabled": enabled}


_KEY_FIELDS = frozenset({"name", "expiration", "role_descriptors", "metadata"})


def _key_fields(body: dict[str, Any], now_ms: int) -> tuple[str, int | None, dict[str, Any], dict[str, Any]]:
    for key in body:
        if key not in _KEY_FIELDS:
            raise ParseFailure(f"[create_api_key_request] unknown field [{key}]", type="x_content_parse_exception")
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise ParseFailure("[create_api_key_request] failed to parse field [name]", type="x_content_parse_exception")
    raw = body.get("role_descriptors") or {}
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ParseFailure("failed to parse role descriptors: expected an object of role descriptors")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ParseFailure("[create_api_key_request] failed to parse field [metadata]",
                           type="x_content_parse_exception")
    problems = []
    if not name:
        problems.append("api key name is required")
    elif len(name) > MAX_KEY_NAME:
        problems.append(f"api key name may not be more than [{MAX_KEY_NAME}] characters long")
    elif name != name.strip():
        problems.append("api key name may not begin or end with whitespace")
    elif name.startswith("_"):
        problems.append("api key name may not begin with an underscore")
    if any(key.startswith("_") for key in metadata):
        problems.append("API key metadata keys may not start with [_]")
    if problems:
        raise ValidationError(*problems)
    descriptors = {role: parse_descriptor(role, d) for role, d in raw.items()}
    expiration = body.get("expiration")
    expires_ms = None
    if expiration is not None:
        expires_ms = now_ms + parse_time_ms(expiration, "expiration")
    return name, expires_ms, descriptors, metadata  # type: ignore[return-value]
