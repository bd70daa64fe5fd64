"""HASH, MD5, SHA1, SHA256."""

from __future__ import annotations

from typing import Callable

from ...evaluate import EvalError
from .strings import _string_fn


def _hasher(algorithm: str) -> Callable[[str], str]:
    import hashlib
    return lambda s: hashlib.new(algorithm, s.encode()).hexdigest()


for _name, _alg in {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256"}.items():
    _string_fn(_name, (1, 1), _hasher(_alg), "keyword")


def _hash(algorithm: str, s: str) -> str:
    import hashlib
    try:
        return hashlib.new(algorithm.replace("-", "").lower(), s.encode()).hexdigest()
    except ValueError:
        raise EvalError(f"java.security.NoSuchAlgorithmException: {algorithm} MessageDigest not available") from None


_string_fn("HASH", (2, 2), _hash, "keyword")
