"""How many arguments each ES|QL function takes, and of which types, checked before the
function is compiled: a call Elasticsearch refuses while parsing or verifying is refused
here with its words, never left to fail on a Python type at run time.

Arity errors are ``parsing_exception`` (ES's function registry throws them while it builds
the call), worded by the shape of the Java constructor; type errors are ES's
``verification_exception`` ("first argument of [f(x)] must be [numeric], found value ...").
"""

from __future__ import annotations

from ..errors import ServiceError
from . import types as T
from .evaluate import verify_fail
from .expr import Call

_WORDS = ["no", "one", "two", "three", "four", "five"]
ANY = None
NUMERIC = (T.NUMERIC, "numeric")
STRING = (T.STRINGS, "string")
INTEGER = (("integer", "long"), "integer")
DOUBLE = (("double",), "double")
IP = (("ip",), "ip")
DATE = (("date", "date_nanos"), "datetime or date_nanos")
SPAN = (("date_period", "time_duration"), "dateperiod or timeduration")

# name -> (least, most or None for variadic); ES's configuration-aware binary builders word
# their arity error without naming the function
ARITY: dict[str, tuple[int, int | None]] = {
    **{name: (0, 0) for name in ("E", "NOW", "PI", "TAU")},
    **{name: (1, 1) for name in (
        "ABS", "ACOS", "ASIN", "ATAN", "BIT_LENGTH", "BYTE_LENGTH", "CBRT", "CEIL", "COS", "COSH", "DAY_NAME", "EXP",
        "FLOOR", "LENGTH", "LOG10", "LTRIM", "MD5", "MONTH_NAME", "MV_AVG", "MV_COUNT", "MV_DEDUPE", "MV_FIRST",
        "MV_LAST", "MV_MAX", "MV_MEDIAN", "MV_MEDIAN_ABSOLUTE_DEVIATION", "MV_MIN", "MV_SUM", "REVERSE", "RTRIM",
        "SHA1", "SHA256", "SIGNUM", "SIN", "SINH", "SPACE", "SQRT", "TAN", "TANH", "TO_DATEPERIOD", "TO_DEGREES",
        "TO_LOWER", "TO_RADIANS", "TO_TIMEDURATION", "TO_UPPER", "TRIM")},
    **{name: (2, 2) for name in (
        "ATAN2", "CLAMP_MAX", "CLAMP_MIN", "CONTAINS", "COPY_SIGN", "DATE_EXTRACT", "DATE_TRUNC", "ENDS_WITH", "HASH",
        "HYPOT", "LEFT", "MV_APPEND", "MV_CONCAT", "MV_PERCENTILE", "MV_PSERIES_WEIGHTED_SUM", "POW", "REPEAT", "RIGHT",
        "SPLIT", "STARTS_WITH")},
    **{name: (1, 2) for name in ("DATE_FORMAT", "DATE_PARSE", "LOG", "MV_SORT", "ROUND")},
    **{name: (3, 3) for name in ("CLAMP", "DATE_DIFF", "IP_PREFIX", "REPLACE")},
    **{name: (2, 3) for name in ("LOCATE", "MV_SLICE", "MV_ZIP", "SUBSTRING")},
    **{name: (1, None) for name in ("COALESCE", "GREATEST", "LEAST")},
    **{name: (2, None) for name in ("CASE", "CIDR_MATCH", "CONCAT", "ROUND_TO")},
    "BUCKET": (2, 4),
}
_CONFIGURATION_AWARE = {"DATE_EXTRACT", "DATE_FORMAT"}

# name -> the accepted types of the leading arguments (the last one also covers any further
# arguments of a variadic function); only functions whose implementation needs them
TYPES: dict[str, tuple[tuple[tuple[str, ...], str] | None, ...]] = {
    "ATAN2": (NUMERIC, NUMERIC), "HYPOT": (NUMERIC, NUMERIC), "LOG": (NUMERIC, NUMERIC),
    "MV_AVG": (NUMERIC,), "MV_SUM": (NUMERIC,), "MV_MEDIAN": (NUMERIC,), "MV_MEDIAN_ABSOLUTE_DEVIATION": (NUMERIC,),
    "MV_PERCENTILE": (NUMERIC, NUMERIC), "MV_PSERIES_WEIGHTED_SUM": (DOUBLE, DOUBLE),
    "MV_SLICE": (ANY, INTEGER, INTEGER), "MV_SORT": (ANY, STRING),
    "MV_CONCAT": (STRING, STRING), "MV_ZIP": (STRING, STRING, STRING), "SPLIT": (STRING, STRING),
    "CIDR_MATCH": (IP, STRING), "IP_PREFIX": (IP, INTEGER, INTEGER),
    "DATE_TRUNC": (SPAN, (DATE[0], "date_nanos or datetime")), "DATE_EXTRACT": (STRING, DATE), "DATE_PARSE": (STRING, STRING),
    "DATE_DIFF": (STRING, DATE, DATE),
}


def arity(expr: Call, least: int, most: int | None, name: str | None = None) -> None:
    """ES's function-registry error when ``expr`` (function ``name``, its primary name
    when ``expr`` uses an alias) has too few or too many arguments."""
    n = len(expr.args)
    if n >= least and (most is None or n <= most):
        return
    name = name or expr.name
    raise ServiceError(f"line {expr.src.line}:{expr.src.col}: error building [{name.lower()}]: "
                       f"{_arity_message(name.lower(), least, most, n, name in _CONFIGURATION_AWARE)}",
                       status=400, type="parsing_exception")


def _arity_message(name: str, least: int, most: int | None, n: int, configuration_aware: bool) -> str:
    if most is None:
        return f"expects at least {_WORDS[least]} argument{'s' if least != 1 else ''}"
    if (least, most) == (0, 0):
        return "expects no arguments"
    if (least, most) == (1, 1):
        return "expects exactly one argument"
    if (least, most) == (2, 2):
        return "expects exactly two arguments" if configuration_aware else \
            f"function [{name}] expects exactly two arguments, it received {n}"
    if (least, most) == (1, 2):
        return "expects one or two arguments" if configuration_aware else \
            f"function [{name}] expects one or two arguments but it received {n}"
    if (least, most) == (2, 4):
        return "expects minimum two, maximum four arguments"
    if least == most:
        return f"expects exactly {_WORDS[least]} arguments"
    return f"expects {_WORDS[least]} or {_WORDS[most]} arguments"


def require(expr: Call, i: int, kind: str, allowed: tuple[str, ...], what: str) -> None:
    """ES's type error when argument ``i`` (of type ``kind``) is not one of ``allowed``."""
    if kind != "null" and kind not in allowed:
        ordinal = ["first", "second", "third", "fourth"][min(i, 3)] if len(expr.args) > 1 else ""
        prefix = f"{ordinal} argument" if ordinal else "argument"
        raise verify_fail(expr.src, f"{prefix} of [{expr.src.text}] must be [{what}], found value "
                                    f"[{expr.args[i].src.text}] type [{kind}]")


def check(name: str, expr: Call, kinds: list[str]) -> None:
    """Arity, then the declared argument types, of a call to function ``name``."""
    bounds = ARITY.get(name)
    if bounds is not None:
        arity(expr, *bounds, name=name)
    accepted = TYPES.get(name, ())
    for i, kind in enumerate(kinds):
        spec = accepted[min(i, len(accepted) - 1)] if accepted else None
        if spec is not None:
            require(expr, i, kind, *spec)
