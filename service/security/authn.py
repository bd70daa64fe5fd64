"""Authentication: an ``Authorization`` header in, a ``Principal`` out, or Elasticsearch's 401.

Two schemes, as Elasticsearch's REST layer takes them: ``Basic base64(user:password)`` for
users (the reserved ``elastic`` and native users) and ``ApiKey base64(id:key)``. A header of
any other scheme counts as no credentials.

Successful attempts are cached, as Elasticsearch's realm cache does: the key is a fast hash
of the scheme and the credentials, the value the principal and when it stops being trusted
(a TTL, and an API key's own expiry). A change to a user, a role or a key drops the entries it
could affect, so the next request pays the slow hash once and sees the change. Failures are
never cached (a password being set must work at once).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Awaitable, Callable, Mapping

from multidict import CIMultiDict

from ..errors import ServiceError
from .passwords import fast_digest
from .principal import Principal

CHALLENGES = ('Basic realm="security", charset="UTF-8"', "ApiKey")
CACHE_TTL_S = 20 * 60  # Elasticsearch's cache.ttl default
CACHE_MAX = 10_000


class AuthenticationError(ServiceError):
    """401 ``security_exception`` with the ``WWW-Authenticate`` challenges, in the body's
    ``header`` too, as Elasticsearch answers."""

    status = 401
    type = "security_exception"

    def __init__(self, reason: str, *, unsuccessful: str | None = None) -> None:
        extra = {"additional_unsuccessful_credentials": unsuccessful} if unsuccessful else {}
        super().__init__(reason, **extra, header={"WWW-Authenticate": list(CHALLENGES)})
        self.headers = CIMultiDict(("WWW-Authenticate", c) for c in CHALLENGES)
        self.user: str | None = None    # who tried, for the log line (never the secret)
        self.key_id: str | None = None
        self.detail: str | None = None

    def headers_for(self, request_headers: Mapping[str, str]) -> CIMultiDict[str]:
        """The challenges for one request: a page script's (``Sec-Fetch-Mode`` set and not
        ``navigate``, as browsers send it) gets no ``Basic`` one, since a browser answers a
        Basic challenge to a fetch by holding the request for its own password dialog (the
        web console has its login form; a headless browser waits for ever)."""
        fetch_mode = request_headers.get("Sec-Fetch-Mode")
        if fetch_mode and fetch_mode != "navigate":
            return CIMultiDict(("WWW-Authenticate", c) for c in CHALLENGES if not c.startswith("Basic "))
        return self.headers


@dataclass(frozen=True)
class Credentials:
    scheme: str  # "basic" | "apikey"
    name: str    # the user name, or the API key id
    secret: str

    @property
    def digest(self) -> bytes:
        return fast_digest(self.scheme, self.name, self.secret)


class Refused(Exception):
    """Credentials that do not authenticate; ``detail`` says why, for the log and for an API
    key's ``additional_unsuccessful_credentials`` (never the secret)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def parse_header(header: str | None, uri: str) -> Credentials | None:
    """The credentials in ``header``, None when there are none ES would read; a malformed
    value of a known scheme is ES's 401."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in ("basic", "apikey"):
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        if scheme == "basic":
            raise AuthenticationError("invalid basic authentication header encoding") from None
        raise _key_failure("invalid ApiKey value") from None
    name, colon, secret = decoded.partition(":")
    if not colon:
        if scheme == "basic":
            raise AuthenticationError("invalid basic authentication header value")
        raise _key_failure("invalid ApiKey value")
    return Credentials(scheme, name, secret)


def missing(uri: str) -> AuthenticationError:
    return AuthenticationError(f"missing authentication credentials for REST request [{uri}]")


def _key_failure(detail: str) -> AuthenticationError:
    return AuthenticationError("unable to authenticate with provided credentials and anonymous access is not "
                               "allowed for this request", unsuccessful=f"API key: {detail}")


def refused(credentials: Credentials, uri: str, detail: str) -> AuthenticationError:
    """The 401 for credentials that did not authenticate, in ES's wording for the scheme."""
    if credentials.scheme == "basic":
        error = AuthenticationError(f"unable to authenticate user [{credentials.name}] for REST request [{uri}]")
        error.user = credentials.name
    else:
        error = _key_failure(detail)
        error.key_id = credentials.name
    error.detail = detail
    return error


@dataclass
class _Entry:
    principal: Principal
    until_s: float
    key_id: str | None


class AuthCache:
    """Successful authentications by credential digest, oldest dropped first past ``CACHE_MAX``."""

    def __init__(self, clock: Callable[[], float] = time.time, ttl_s: float = CACHE_TTL_S) -> None:
        self.clock = clock
        self.ttl_s = ttl_s
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        # Counts the drops: a lookup that began before one may have read what it dropped, so its
        # result is not cached (a password changed while a slow hash ran must not live 20 minutes).
        self.generation = 0

    def get(self, credentials: Credentials) -> Principal | None:
        entry = self._entries.get(credentials.digest)
        if entry is None:
            return None
        if self.clock() >= entry.until_s:
            del self._entries[credentials.digest]
            return None
        return entry.principal

    def put(self, credentials: Credentials, principal: Principal, expires_s: float | None = None,
            *, generation: int | None = None) -> None:
        """Cache a success, unless something was dropped since ``generation`` was read."""
        if generation is not None and generation != self.generation:
            return
        until = self.clock() + self.ttl_s
        if expires_s is not None:
            until = min(until, expires_s)
        key_id = principal.api_key.id if principal.api_key else None
        self._entries[credentials.digest] = _Entry(principal, until, key_id)
        while len(self._entries) > CACHE_MAX:
            self._entries.popitem(last=False)

    def drop_user(self, username: str) -> None:
        """Every entry of ``username``: as the user, and of the keys it owns."""
        self._drop(lambda e: e.principal.username == username)

    def drop_key(self, key_id: str) -> None:
        self._drop(lambda e: e.key_id == key_id)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    def _drop(self, test: Callable[[_Entry], bool]) -> None:
        self.generation += 1
        for digest in [d for d, e in self._entries.items() if test(e)]:
            del self._entries[digest]


Lookup = Callable[[Credentials], Awaitable[tuple[Principal, float | None]]]


async def authenticate(header: str | None, uri: str, cache: AuthCache, lookup: Lookup) -> Principal:
    """The principal ``header`` authenticates (from the cache, else by ``lookup``, which
    raises ``Refused``), or the 401 ES sends. ``uri`` is the request's path and query."""
    credentials = parse_header(header, uri)
    if credentials is None:
        raise missing(uri)
    cached = cache.get(credentials)
    if cached is not None:
        return cached
    generation = cache.generation
    try:
        principal, expires_s = await lookup(credentials)
    except Refused as exc:
        raise refused(credentials, uri, exc.detail) from None
    cache.put(credentials, principal, expires_s, generation=generation)
    return principal
