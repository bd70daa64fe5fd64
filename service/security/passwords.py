"""Passwords and API key secrets, stored as a slow salted hash.

scrypt from the standard library (``hashlib.scrypt``, OpenSSL's): memory-hard, salted, and
no new dependency to keep up to date; argon2-cffi is in the package index too, but scrypt is
as well regarded for passwords (OWASP lists both) and ships with Python. The parameters are
in the stored text, so they can be raised later and old hashes still verify.

Hashing runs on a worker thread: at these parameters it costs about 0.1 s of CPU and 16 MiB,
which must not stall the event loop (the default executor's few threads also bound how many
run at once, so a flood of wrong passwords cannot take all the memory). The authenticator's
cache means a client that authenticates again does not pay it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
N, R, P = 2 ** 14, 8, 1
SALT_BYTES = 16
KEY_BYTES = 32
MIN_PASSWORD = 6  # Elasticsearch's minimum length for a native user's password


def _derive(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES,
                          maxmem=2 * 128 * r * n + 1024 * 1024)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_secret_now(secret: str) -> str:
    """``scrypt$n$r$p$salt$hash``, salted afresh (blocking: callers on the loop use ``hash_secret``)."""
    salt = secrets.token_bytes(SALT_BYTES)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(_derive(secret, salt, N, R, P))}"


def verify_now(secret: str, stored: str) -> bool:
    """Whether ``secret`` hashes to ``stored``, compared in constant time; a malformed stored
    value verifies nothing."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != SCHEME:
            return False
        derived = _derive(secret, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(derived, base64.b64decode(expected))


async def hash_secret(secret: str) -> str:
    return await asyncio.to_thread(hash_secret_now, secret)


async def verify(secret: str, stored: str | None) -> bool:
    """Like ``verify_now``, off the loop. With nothing stored (no such user), a hash is still
    computed, so a wrong user name takes as long to refuse as a wrong password."""
    if stored is None:
        await asyncio.to_thread(verify_now, secret, _DUMMY)
        return False
    return await asyncio.to_thread(verify_now, secret, stored)


_DUMMY = f"{SCHEME}${N}${R}${P}${_b64(bytes(SALT_BYTES))}${_b64(bytes(KEY_BYTES))}"


def fast_digest(*parts: str) -> bytes:
    """A fast hash of credentials: the authentication cache's key, never stored."""
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).digest()


def generate_password() -> str:
    """A bootstrap password: 20 characters, as Elasticsearch generates for ``elastic``."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*+="
    return "".join(secrets.choice(alphabet) for _ in range(20))


def generate_api_key() -> tuple[str, str]:
    """A new API key's id and secret (ES: 20 and 22 URL-safe base64 characters)."""
    return secrets.token_urlsafe(15), secrets.token_urlsafe(16)
