"""One frozen, typed settings object.

Precedence: defaults < config file (TOML) < environment (``ESQUIRE_*``) < command-line
flags. Bad values raise ``SettingsError`` with a one-line message.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import ssl
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from .store.disk import DiskPolicy

LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")
SYNCHRONOUS = ("normal", "full")
# Of the machine's memory, what running queries may hold by default (Elasticsearch's request
# breaker allows 60% of its heap; the workers also need room beyond their estimates).
QUERY_MEMORY_SHARE = 0.4


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 9200
    data_dir: Path = Path("data")
    log_format: str = "console"
    log_level: str = "info"
    # "full": every acknowledged write is fsynced (like Elasticsearch's request-durability
    # translog); "normal": survives a crash of the process but not of the machine.
    sqlite_synchronous: str = "full"
    read_connections: int = 4
    max_body_bytes: int = 100 * 1024 * 1024
    node_name: str = "esquire-1"
    cluster_name: str = "esquire"
    # queries running at once (more wait, phase "queued"); async search expiry sweep period
    max_running_queries: int = 4
    # queries waiting for a worker at most; beyond, a new query is refused (429), as a full
    # Elasticsearch thread-pool queue refuses it
    max_queued_queries: int = 1000
    reaper_interval_seconds: int = 60
    # the cap on rows a query returns (Elasticsearch: esql.query.result_truncation_max_size)
    max_result_rows: int = 10000
    # SIGTERM: in-flight requests get this long to finish; running sync queries are then
    # cancelled (async ones are stopped at once and store what they have)
    shutdown_grace_seconds: int = 5
    # Elasticsearch's disk watermarks on the data directory's filesystem: past the flood stage
    # (a share used, "95%", or free space left, "500mb") writes answer 429 until free space is
    # back above the high watermark ("": 90% for a percentage flood stage, else the flood stage)
    disk_watermark_flood_stage: str = "95%"
    disk_watermark_high: str = ""
    disk_check_interval_ms: int = 1000
    # space held back in the data directory so deletes can still run on a full disk
    disk_reserve_bytes: int = 16 * 1024 * 1024
    # stored async searches: beyond these a new one is refused (429), the stored ones are kept
    max_stored_searches: int = 1000
    max_stored_search_bytes: int = 1024 * 1024 * 1024
    # bytes the rows one query holds (SORT, STATS, results) may take before it fails with 429
    # circuit_breaking_exception; 0: QUERY_MEMORY_SHARE of physical memory, split between
    # max_running_queries (see query_memory_limit)
    query_memory_limit_bytes: int = 0
    # run what a query can as SQL inside SQLite (``query/pushdown``); off, every row is read
    # and the whole pipeline runs in Python: the reference the pushed-down path is tested against
    query_pushdown: bool = True
    # Authentication and authorization (Elasticsearch's xpack.security.enabled): off by default
    # on loopback, as an integration-test target expects; a non-loopback address needs either
    # ``security`` or an explicit ``insecure``, or the service refuses to start.
    security: bool = False
    insecure: bool = False
    # the reserved ``elastic`` superuser's password at the first start with security on
    # (also read from ELASTIC_PASSWORD, as Elasticsearch's container does); empty: generated
    # and printed once
    bootstrap_password: str = ""
    # HTTPS: a PEM certificate (chain) and its private key, both or neither (empty: plain HTTP)
    tls_cert: str = ""
    tls_key: str = ""

    def __post_init__(self) -> None:
        _one_of("log_format", self.log_format, LOG_FORMATS)
        _one_of("log_level", self.log_level, LOG_LEVELS)
        _one_of("sqlite_synchronous", self.sqlite_synchronous, SYNCHRONOUS)
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port must be between 0 and 65535, got {self.port}")
        if self.read_connections < 1:
            raise SettingsError(f"read_connections must be at least 1, got {self.read_connections}")
        for name in ("max_running_queries", "max_queued_queries", "reaper_interval_seconds",
                     "shutdown_grace_seconds"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 1 <= self.max_result_rows <= 1_000_000:
            raise SettingsError(f"max_result_rows must be between 1 and 1000000, got {self.max_result_rows}")
        if self.max_body_bytes < 1024:
            raise SettingsError(f"max_body_bytes must be at least 1024, got {self.max_body_bytes}")
        for name in ("max_stored_searches", "max_stored_search_bytes"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must not be negative, got {getattr(self, name)}")
        self.disk_policy  # noqa: B018 - validates the disk settings
        if self.query_memory_limit_bytes < 0:
            raise SettingsError(f"query_memory_limit_bytes must be at least 0, got {self.query_memory_limit_bytes}")
        self._check_security()

    def _check_security(self) -> None:
        if self.security and self.insecure:
            raise SettingsError("security and insecure contradict each other: choose one")
        if not self.security and not self.insecure and not is_loopback(self.host):
            raise SettingsError(
                f"refusing to listen on {self.host or 'every address'} without security: anyone who can reach it "
                "could read and change every index. Start with --security (ESQUIRE_SECURITY=true) to require "
                "users and roles, or with --insecure to serve it open on purpose")
        if self.bootstrap_password and len(self.bootstrap_password) < 6:
            raise SettingsError("bootstrap_password must be at least 6 characters long")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SettingsError("tls_cert and tls_key go together: give both (PEM files) or neither")

    def tls_context(self) -> ssl.SSLContext | None:
        """The server's TLS context (TLS 1.2 or later, the certificate loaded), None for plain
        HTTP; an unreadable or mismatched file raises ``OSError`` (``ssl.SSLError`` is one)."""
        if not self.tls_cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.tls_cert, self.tls_key)
        return context

    @property
    def security_enabled(self) -> bool:
        """Whether requests must authenticate (``security``; ``insecure`` only lifts the refusal)."""
        return self.security

    @property
    def disk_policy(self) -> DiskPolicy:
        try:
            return DiskPolicy.parse(self.disk_watermark_flood_stage, self.disk_watermark_high,
                                    self.disk_reserve_bytes, self.disk_check_interval_ms)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    @property
    def query_memory_limit(self) -> int:
        """The memory breaker's limit for each query, in bytes."""
        if self.query_memory_limit_bytes:
            return self.query_memory_limit_bytes
        return int(physical_memory() * QUERY_MEMORY_SHARE) // self.max_running_queries

    @property
    def db_path(self) -> Path:
        return self.data_dir / "esquire.db"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (``localhost`` or a loopback
    address); a name that needs resolving counts as reachable from elsewhere."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def physical_memory() -> int:
    """The machine's memory in bytes, or the container's limit (cgroup v2) when lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _coerce(name: str, kind: Any, raw: Any) -> Any:
    target = {"int": int, "str": str, "Path": Path, "bool": bool}[kind if isinstance(kind, str) else kind.__name__]
    if target is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise SettingsError(f"{name} must be true or false, got {raw!r}")
    if target is int and isinstance(raw, str):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if target is int and (isinstance(raw, bool) or not isinstance(raw, int)):
        raise SettingsError(f"{name} must be a whole number, got {raw!r}")
    return target(raw)


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Merge every source into one validated ``Settings``."""
    environ = os.environ if environ is None else environ
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    known = {f.name: f.type for f in fields(Settings)}
    merged: dict[str, Any] = {}
    config_file = config_file or (Path(environ["ESQUIRE_CONFIG"]) if environ.get("ESQUIRE_CONFIG") else None)
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read config file {config_file}: {exc}") from None
        unknown = set(data) - set(known)
        if unknown:
            raise SettingsError(f"unknown setting(s) in {config_file}: {', '.join(sorted(unknown))}")
        merged.update(data)
    for name in known:
        env_value = environ.get(f"ESQUIRE_{name.upper()}")
        if env_value is not None:
            merged[name] = env_value
    if "bootstrap_password" not in merged and environ.get("ELASTIC_PASSWORD"):
        merged["bootstrap_password"] = environ["ELASTIC_PASSWORD"]
    merged.update(flags)
    values = {name: _coerce(name, known[name], value) for name, value in merged.items()}
    try:
        return Settings(**values)
    except TypeError as exc:  # pragma: no cover - guarded by the unknown-name check above
        raise SettingsError(str(exc)) from None


def replace(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, **changes)
