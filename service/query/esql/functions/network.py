"""IP functions: CIDR_MATCH, IP_PREFIX."""

from __future__ import annotations

import ipaddress
from typing import Any

from ....errors import ServiceError
from ...evaluate import EvalError, Fn, MV_WARNING, Scope
from ...expr import Call
from ._base import _arity, _single, register


@register("CIDR_MATCH")
def _cidr_match(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    ip_arg, blocks = args[0], args[1:]

    def run(row: list[Any]) -> Any:
        v = ip_arg(row)
        if v is None:
            return None
        if type(v) is list:
            scope.warnings.failure(expr.src, MV_WARNING)
            return None
        addr = _ip_bytes(v)
        for b in blocks:
            for block in (lambda x: x if type(x) is list else [x])(b(row)):
                if block is not None and _in_range(addr, *_cidr_range(block)):
                    return True
        return False
    return run, "boolean"


_IPV4_MAPPED = b"\x00" * 10 + b"\xff\xff"


def _ip_bytes(text: str) -> bytes:
    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        raise _bad_cidr(f"'{text}' is not an IP string literal.") from None


def _bad_cidr(message: str) -> ServiceError:
    # ES's CIDR_MATCH does not turn a bad block into a warning: the query fails
    return ServiceError(message, status=400, type="illegal_argument_exception")


def _cidr_range(block: str) -> tuple[bytes, bytes]:
    """The lowest and highest address of ``block`` (``ip/prefix``, or one address)."""
    if "/" not in block:
        one = _ip_bytes(block)
        return one, one
    fields = block.split("/")
    while fields and not fields[-1]:  # Java's split drops trailing empty strings
        fields.pop()
    if len(fields) != 2:
        raise _bad_cidr(f"Expected [ip/prefix] but was [{block}]")
    address = _ip_bytes(fields[0])
    try:
        prefix = int(fields[1])
    except ValueError:
        raise _bad_cidr(f'For input string: "{fields[1]}"') from None
    bits = 8 * len(address)
    if not 0 <= prefix <= bits:
        raise _bad_cidr(f"illegal prefixLength '{prefix}'. Must be 0-32 for IPv4 ranges, 0-128 for IPv6 ranges")
    value, host = int.from_bytes(address, "big"), (1 << (bits - prefix)) - 1
    return (value & ~host).to_bytes(len(address), "big"), (value | host).to_bytes(len(address), "big")


def _in_range(addr: bytes, lower: bytes, upper: bytes) -> bool:
    if len(addr) != len(lower):  # compare IPv4 and IPv6 as IPv4-mapped IPv6, as ES does
        addr, lower, upper = (b if len(b) == 16 else _IPV4_MAPPED + b for b in (addr, lower, upper))
    return lower <= addr <= upper


@register("IP_PREFIX")
def _ip_prefix(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    import ipaddress
    _arity(expr, 3)

    def fn(ip: str, v4: int, v6: int) -> str:
        addr = ipaddress.ip_address(ip)
        bits = v4 if addr.version == 4 else v6
        limit = 32 if addr.version == 4 else 128
        if not 0 <= bits <= limit:
            raise EvalError(f"java.lang.IllegalArgumentException: Prefix length v{addr.version} must be in range "
                            f"[0, {limit}], found {bits}")
        return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False).network_address)
    return _single(fn, "ip")(expr, kinds, args, scope)
