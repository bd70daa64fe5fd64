"""A background task's SML request: the create body of ``POST _sme/async_requests/request``
read and checked (spec sme-background-tasks.md §3, §4.1 and the errors of §2), the time
range resolved against the creation instant, defaults from the cluster settings.

Every check here runs before anything is stored; the query's own syntax is the job's
(``SmlJob.compile``), which the API calls next, still before storing anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ...core.cluster import Setting, at_least, boolean, time_value
from ...errors import BadRequest, Forbidden
from ...store.disk import parse_size
from . import times

COSTS = ("OFF", "INFO", "DEBUG")
# The built-in cap on the rows one task stores (spec §7.2), under any configured limit.
MAX_STORED_ROWS = 1_000_000

DT_FIELD_NAME = "sme.core.global_dt_params.dt_field_name"
DT_START = "sme.core.global_dt_params.dt_start"
DT_END = "sme.core.global_dt_params.dt_end"
# Base limits, under each user's and role's (``limits``): "" is none.
ALLOWED_DT_START = "sme.core.limits.base.allowed_dt_start"
ALLOWED_DT_END = "sme.core.limits.base.allowed_dt_end"
MAX_PAYLOAD_ROW_COUNT = "sme.core.limits.base.max_payload_row_count"
MAX_SEARCH_RUNNING_TIME = "sme.core.limits.base.max_search_running_time"  # seconds
MAX_QSIZE = "sme.core.limits.base.max_qsize"
MAX_PAYLOAD_SIZE = "sme.core.limits.base.max_payload_size"  # bytes of stored rows: 1048576 or 1mb
MAX_COMMAND_RAM_USAGE = "sme.core.limits.base.max_command_ram_usage"  # bytes one command may hold
ALLOWED_COMMANDS = "sme.core.limits.base.allowed_commands"  # comma-separated names (or a JSON list); "" allows all
MAX_SUBSEARCH_HITS = "sme.core.max_subsearch_hits"  # rows a subsearch gives its join or append
KEEP_ALIVE = "sme.core.async_requests.keep_alive"
MAX_RUNNING_PER_USER = "sme.core.async_requests.max_running_per_user"
MAX_TASKS_PER_USER = "sme.core.async_requests.max_tasks_per_user"


def _non_empty(name: str, value: str) -> None:
    if not value.strip():
        raise BadRequest(f"[{name}] must be a non-empty string, got [{value}]")


def _time_expression(name: str, value: str) -> None:
    if value:
        times.resolve(value, 0, round_up=False, name=name)


def _optional_count(name: str, value: str) -> None:
    if value:
        at_least(1)(name, value)


def size_bytes(value: str) -> int:
    return int(value) if value.isdecimal() else parse_size(value)


def check_bytes(name: str, value: str) -> None:
    try:
        if value and size_bytes(value) < 1:
            raise ValueError(value)
    except ValueError:
        raise BadRequest(f"failed to parse setting [{name}] with value [{value}] as a size in bytes") from None


# The cluster settings background tasks read (spec §3.1, §7), registered by the app.
SETTINGS = (
    Setting(DT_FIELD_NAME, "@timestamp", _non_empty),  # as a body's dtFieldName: "" would match no event
    Setting(DT_START, "now-15m", lambda n, v: times.resolve(v, 0, round_up=False, name=n)),
    Setting(DT_END, "now", lambda n, v: times.resolve(v, 0, round_up=True, name=n)),
    Setting(ALLOWED_DT_START, "", _time_expression),
    Setting(ALLOWED_DT_END, "", _time_expression),
    Setting(MAX_PAYLOAD_ROW_COUNT, "", _optional_count),
    Setting(MAX_SEARCH_RUNNING_TIME, "", _optional_count),
    Setting(MAX_QSIZE, "", _optional_count),
    Setting(MAX_PAYLOAD_SIZE, "", check_bytes),
    Setting(MAX_COMMAND_RAM_USAGE, "", check_bytes),
    Setting(ALLOWED_COMMANDS, "", listed=True),
    Setting(MAX_SUBSEARCH_HITS, "50000", at_least(1)),
    Setting(KEEP_ALIVE, "5d", time_value),
    Setting(MAX_RUNNING_PER_USER, "3", at_least(1)),
    Setting(MAX_TASKS_PER_USER, "100", at_least(1)),
    Setting("sme.core.enable_limits", "true", boolean),
    Setting("sme.core.check_base_limit", "true", boolean),
    Setting("sme.core.limits.index_name", ".sm_sme_limits_user"),
)


@dataclass(frozen=True)
class SmlRequest:
    query: str
    time_field: str          # dtFieldName
    start_ms: int | None     # resolved dtStart (inclusive)
    end_ms: int | None       # resolved dtEnd (exclusive)
    now_ms: int              # the creation instant (now() in the query)
    calculate_stats: bool = False
    execution_cost: str = "OFF"       # OFF | INFO | DEBUG
    max_rows: int = 10_000_000        # limits of spec §7, resolved by the API
    max_qsize: int | None = None      # the events a source may emit at most (its qsize is clamped)
    max_bytes: int | None = None      # the bytes of stored rows at most (JSON-encoded)
    max_subsearch_hits: int = 50_000
    max_command_bytes: int | None = None  # the memory one command may hold (its operators' estimates)


@dataclass(frozen=True)
class Submission:
    """A checked create request: the ``SmlRequest`` to compile, the range as given (the
    status shows it back) and the limits' adjustments, as warnings."""

    request: SmlRequest
    dt_start: str
    dt_end: str
    warnings: tuple[str, ...] = field(default=())
    allowed_commands: frozenset[str] | None = None  # None: every command


def parse(body: Any, setting: Callable[[str], str], now_ms: int) -> Submission:
    """Read a create body (a JSON object; unknown keys ignored) with the defaults and limits
    of the cluster settings (``setting(name)``); each problem a 400
    ``illegal_argument_exception``. ``dtEnd`` is inclusive to the millisecond (rounded up),
    so the request's exclusive end is one past it."""
    if not isinstance(body, Mapping):
        raise BadRequest("the request body must be a JSON object")
    query = body.get("query")
    if query is None:
        raise BadRequest("[query] is required")
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("[query] must be a non-empty string")
    time_field = _string(body, "dtFieldName", setting(DT_FIELD_NAME))
    dt_start = _string(body, "dtStart", setting(DT_START))
    dt_end = _string(body, "dtEnd", setting(DT_END))
    start = times.resolve(dt_start, now_ms, round_up=False, name="dtStart")
    end = times.resolve(dt_end, now_ms, round_up=True, name="dtEnd")
    if start > end:
        raise BadRequest(f"[dtStart] [{dt_start}] resolves to a time after [dtEnd] [{dt_end}]")
    start, end, warnings = _clamped(start, end, setting, now_ms)
    limit, qsize, allowed = setting(MAX_PAYLOAD_ROW_COUNT), setting(MAX_QSIZE), setting(ALLOWED_COMMANDS)
    size, command_ram = setting(MAX_PAYLOAD_SIZE), setting(MAX_COMMAND_RAM_USAGE)
    request = SmlRequest(query, time_field, start, end + 1, now_ms, body_flag(body, "calculateStats"),
                         _cost(body.get("calculateExecutionCost", "OFF")),
                         min(int(limit), MAX_STORED_ROWS) if limit else MAX_STORED_ROWS,
                         int(qsize) if qsize else None, size_bytes(size) if size else None,
                         int(setting(MAX_SUBSEARCH_HITS)), size_bytes(command_ram) if command_ram else None)
    names = frozenset(n.strip().lower() for n in allowed.split(",") if n.strip()) if allowed.strip() else None
    return Submission(request, dt_start, dt_end, tuple(warnings), names)


def check_commands(commands: Iterable[str], allowed: frozenset[str] | None, user: str) -> None:
    """Spec §7.2: a command not in the ``allowed_commands`` limit refuses the task (403),
    checked by the name as written (``stats`` and ``aggs`` are two names)."""
    if allowed is None:
        return
    for name in commands:
        if name.lower() not in allowed:
            raise Forbidden(f"command [{name}] is not allowed for user [{user}] by the limit allowed_commands "
                            f"[{', '.join(sorted(allowed))}]")


def _string(body: Mapping[str, Any], name: str, default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"[{name}] must be a non-empty string, got [{shown(value)}]")
    return value


def _clamped(start: int, end: int, setting: Callable[[str], str], now_ms: int) -> tuple[int, int, list[str]]:
    """The range inside the ``allowed_dt_start``/``allowed_dt_end`` limits, with a warning for
    each bound moved (spec §7.2); a range wholly outside them is refused."""
    warnings = []
    earliest, latest = setting(ALLOWED_DT_START), setting(ALLOWED_DT_END)
    if earliest and start < (bound := times.resolve(earliest, now_ms, round_up=False, name="allowed_dt_start")):
        start = bound
        warnings.append(f"dtStart reduced to {earliest} by limit allowed_dt_start")
    if latest and end > (bound := times.resolve(latest, now_ms, round_up=True, name="allowed_dt_end")):
        end = bound
        warnings.append(f"dtEnd reduced to {latest} by limit allowed_dt_end")
    if start > end:
        raise BadRequest("the time range is outside the limits allowed_dt_start and allowed_dt_end")
    return start, end, warnings


def shown(value: Any) -> str:
    """A body value as an error message quotes it: as JSON spells ``null``, ``true`` and
    ``false``, anything else as its text."""
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def body_flag(body: dict[str, Any], name: str) -> bool:
    """A boolean field of a background-task request body, default false; the strings
    ``"true"`` and ``"false"`` are accepted too (spec §4.1)."""
    value = body.get(name, False)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise BadRequest(f"[{name}] must be a boolean, got [{shown(value)}]")
    return value


def _cost(value: Any) -> str:
    if isinstance(value, str) and value.upper() in COSTS:
        return value.upper()
    raise BadRequest(f"[calculateExecutionCost] must be one of [OFF, INFO, DEBUG], got [{shown(value)}]")
