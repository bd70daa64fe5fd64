"""Roles: what a role descriptor says (parsed and validated as Elasticsearch parses it), the
built-in roles, and the ``Permission`` a principal's roles compile to.

A descriptor is kept as the JSON the role API shows back; ``Permission`` is built from
descriptors each time a principal is authenticated (then cached with it), so a stored role
never holds compiled state that could go stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from ..errors import ServiceError, ValidationError
from ..patterns import PatternError, lucene_regex, wildcard
from . import privileges as privs

# Elasticsearch's rule for user and role names (Validation.Users / Validation.Roles, 8.x and 9.x).
MAX_NAME = 1024
MAX_DESCRIPTION = 1000


class ParseFailure(ServiceError):
    status = 400
    type = "parse_exception"


def valid_name(name: str) -> bool:
    """1..1024 printable Basic Latin characters, no leading or trailing whitespace."""
    return (0 < len(name) <= MAX_NAME and name == name.strip()
            and all(" " <= c <= "~" for c in name))


def name_rule(kind: str) -> str:
    return (f"{kind} names must be at least 1 and no more than {MAX_NAME} characters. They can contain "
            "alphanumeric characters (a-z, A-Z, 0-9), spaces, punctuation, and printable symbols in the "
            "Basic Latin (ASCII) block. Leading or trailing whitespace is not allowed.")


# --- parsing a descriptor -------------------------------------------------------------------

_ROLE_FIELDS = frozenset({"cluster", "indices", "applications", "run_as", "metadata", "transient_metadata",
                          "description", "global", "remote_indices", "remote_cluster"})
_INDEX_FIELDS = frozenset({"names", "privileges", "field_security", "query", "allow_restricted_indices"})


def _strings(role: str, where: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ParseFailure(f"failed to parse {where} for role [{role}]. expected field value to be an array of strings")
    return list(value)


def parse_descriptor(role: str, body: dict[str, Any], *, noun: str = "role") -> dict[str, Any]:
    """The descriptor as stored and shown (``cluster``, ``indices``, ``applications``,
    ``run_as``, ``metadata``, ``transient_metadata``), or ES's parse/validation error."""
    for key in body:
        if key not in _ROLE_FIELDS:
            raise ParseFailure(f"failed to parse {noun} [{role}]. unexpected field [{key}]")
    cluster = _strings(role, "cluster privileges", body.get("cluster", []))
    indices = [_index_entry(role, entry) for entry in _list(role, "indices", body.get("indices", []))]
    metadata = body.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ParseFailure(f"failed to parse {noun} [{role}]. expected field [metadata] value to be an object")
    problems = [privs.unknown_cluster(n) for n in cluster
                if privs.resolve(n, privs.CLUSTER, privs.CLUSTER_ACTION_PATTERNS) is None]
    problems += [privs.unknown_index(n) for entry in indices for n in entry["privileges"]
                 if privs.resolve(n, privs.INDEX, privs.INDEX_ACTION_PATTERNS) is None]
    problems += [f"role [{role}] has an invalid index name pattern [{n}]" for entry in indices
                 for n in entry["names"] if _bad_pattern(n)]
    if any(key.startswith("_") for key in metadata):
        problems.append("role descriptor metadata keys may not start with [_]")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise ParseFailure(f"failed to parse {noun} [{role}]. expected field [description] value to be a string")
    if isinstance(description, str) and len(description) > MAX_DESCRIPTION:
        problems.append(f"Role description must be less than {MAX_DESCRIPTION} characters.")
    if problems:
        raise ValidationError(*problems)
    descriptor = {"cluster": cluster, "indices": indices,
                  "applications": [_application(role, a) for a in _list(role, "applications",
                                                                        body.get("applications", []))],
                  "run_as": _strings(role, "run_as", body.get("run_as", [])),
                  "metadata": metadata, "transient_metadata": _transient(indices)}
    if body.get("description") is not None:
        descriptor["description"] = body["description"]
    return descriptor


def _transient(indices: list[dict[str, Any]]) -> dict[str, Any]:
    """Document and field level security are not enforced here: a role that asks for them is
    kept but disabled, granting nothing, as Elasticsearch keeps one its license does not cover
    (never more access than the role meant)."""
    if any("field_security" in i or "query" in i for i in indices):
        return {"enabled": False, "unlicensed_features": ["dls/fls"]}
    return {"enabled": True}


def _application(role: str, entry: Any) -> dict[str, Any]:
    where = "application privileges"
    if not isinstance(entry, dict) or set(entry) - {"application", "privileges", "resources"}:
        raise ParseFailure(f"failed to parse {where} for role [{role}]. expected an object of [application], "
                           "[privileges] and [resources]")
    if not isinstance(entry.get("application"), str):
        raise ParseFailure(f"failed to parse {where} for role [{role}]. missing required [application] field")
    return {"application": entry["application"], "privileges": _strings(role, where, entry.get("privileges", [])),
            "resources": _strings(role, where, entry.get("resources", []))}


def _list(role: str, name: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ParseFailure(f"failed to parse role [{role}]. expected field [{name}] value to be an array")
    return value


def _index_entry(role: str, entry: Any) -> dict[str, Any]:
    where = "indices privileges"
    if not isinstance(entry, dict):
        raise ParseFailure(f"failed to parse {where} for role [{role}]. expected field [indices] value to be an "
                           "array of objects")
    for key in entry:
        if key not in _INDEX_FIELDS:
            raise ParseFailure(f"failed to parse {where} for role [{role}]. unexpected field [{key}]")
    for required in ("names", "privileges"):
        if required not in entry:
            raise ParseFailure(f"failed to parse {where} for role [{role}]. missing required [{required}] field")
    restricted = entry.get("allow_restricted_indices", False)
    if not isinstance(restricted, bool):
        raise ParseFailure(f"failed to parse {where} for role [{role}]. expected field [allow_restricted_indices] "
                           "value to be a boolean")
    out: dict[str, Any] = {"names": _strings(role, where, entry["names"]),
                           "privileges": _strings(role, where, entry["privileges"])}
    for optional in ("field_security", "query"):
        if optional in entry:
            out[optional] = entry[optional]
    out["allow_restricted_indices"] = restricted
    return out


def _bad_pattern(name: str) -> bool:
    if len(name) > 1 and name.startswith("/") and name.endswith("/"):
        try:
            lucene_regex(name[1:-1])
        except PatternError:
            return True
    return not name


# --- built-in roles ----------------------------------------------------------------------------

def _builtin(cluster: list[str], indices: list[dict[str, Any]], run_as: list[str] | None = None,
             applications: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"cluster": cluster, "indices": [{**i, "allow_restricted_indices": i.get("allow_restricted_indices", False)}
                                           for i in indices],
            "applications": applications or [], "run_as": run_as or [], "metadata": {"_reserved": True},
            "transient_metadata": {"enabled": True}}


# Elasticsearch's ReservedRolesStore, for the indices a local service has: ``viewer`` and
# ``editor`` read every index ("*" for ES's "every index not starting with a dot": there are no
# system indices here). ``monitoring_user`` also holds the EQL status action, as ES's docs say
# that API is for it.
BUILTIN: dict[str, dict[str, Any]] = {
    "superuser": _builtin(
        ["all"],
        [{"names": ["*"], "privileges": ["all"]},
         {"names": ["*"], "privileges": ["monitor", "read", "view_index_metadata", "read_cross_cluster"],
          "allow_restricted_indices": True}],
        run_as=["*"], applications=[{"application": "*", "privileges": ["*"], "resources": ["*"]}]),
    "monitoring_user": _builtin(
        ["cluster:monitor/main", "cluster:monitor/xpack/info", "cluster:monitor/remote/info",
         "cluster:monitor/eql/async/status"],
        [{"names": [".monitoring-*"], "privileges": ["read", "read_cross_cluster"]},
         {"names": ["/metrics-(beats|elasticsearch|enterprisesearch|kibana|logstash).*/"],
          "privileges": ["read", "read_cross_cluster"]},
         {"names": ["metricbeat-*"], "privileges": ["read", "read_cross_cluster"]}]),
    "viewer": _builtin([], [{"names": ["*"], "privileges": ["read", "view_index_metadata"]}]),
    "editor": _builtin(
        [],
        [{"names": ["*"], "privileges": ["read", "view_index_metadata"]},
         {"names": ["observability-annotations", ".siem-signals*", ".lists*", ".items*", ".alerts*",
                    ".preview.alerts*", ".internal.preview.alerts*"],
          "privileges": ["read", "view_index_metadata", "write", "maintenance"]}]),
}

# Names Elasticsearch reserves for its built-in roles: none may be created, changed or deleted.
RESERVED = frozenset(BUILTIN) | frozenset({
    "kibana_system", "kibana_admin", "kibana_user", "logstash_system", "logstash_admin", "beats_system",
    "beats_admin", "apm_system", "apm_user", "remote_monitoring_agent", "remote_monitoring_collector",
    "ingest_admin", "transport_client", "reporting_user", "snapshot_user", "enrich_user",
    "machine_learning_user", "machine_learning_admin", "watcher_user", "watcher_admin", "rollup_user",
    "rollup_admin", "transform_user", "transform_admin", "data_frame_transforms_user",
    "data_frame_transforms_admin", "inference_admin", "inference_user"})


# --- what roles allow --------------------------------------------------------------------------

def _name_matcher(pattern: str):  # type: ignore[no-untyped-def]
    if len(pattern) > 1 and pattern.startswith("/") and pattern.endswith("/"):
        return lucene_regex(pattern[1:-1]).match
    return wildcard(pattern)


@dataclass(frozen=True)
class IndexGrant:
    names: tuple[str, ...]
    privileges: tuple[privs.Privilege, ...]

    def grants(self, action: str) -> bool:
        return any(p.grants(action) for p in self.privileges)

    def covers(self, expression: str) -> bool:
        """Whether every index ``expression`` can name is one of ``names``. A concrete name is
        matched; an expression with ``*`` is covered by a wildcard name that matches it as a
        literal string (index names cannot contain ``*``, so each ``*`` of the expression is
        absorbed by one of the name's). A regular-expression name covers concrete names only:
        pattern expansion against the existing indices is the next part's (see ``Permission``)."""
        if "*" not in expression:
            return any(_name_matcher(n)(expression) for n in self.names)
        return any(wildcard(n)(expression) for n in self.names if not n.startswith("/"))


@dataclass(frozen=True)
class Permission:
    """What a set of role descriptors allows: cluster actions, and index actions by index."""

    cluster: tuple[privs.Privilege, ...] = ()
    indices: tuple[IndexGrant, ...] = ()
    own_api_keys_only: bool = False  # ``manage_own_api_key`` is its only grant of API key actions

    @classmethod
    def of(cls, descriptors: Iterable[dict[str, Any]]) -> Permission:
        cluster: list[privs.Privilege] = []
        grants: list[IndexGrant] = []
        for d in descriptors:
            if not d.get("transient_metadata", {}).get("enabled", True):
                continue  # a disabled role grants nothing
            cluster += privs.all_granted(d.get("cluster", ()), privs.CLUSTER, privs.CLUSTER_ACTION_PATTERNS)
            for entry in d.get("indices", ()):
                grants.append(IndexGrant(tuple(entry["names"]), tuple(
                    privs.all_granted(entry["privileges"], privs.INDEX, privs.INDEX_ACTION_PATTERNS))))
        own = [p for p in cluster if p.name == "manage_own_api_key"]
        full = [p for p in cluster if p.name != "manage_own_api_key"]
        only_own = bool(own) and not any(p.grants("cluster:admin/xpack/security/api_key/get") for p in full)
        return cls(tuple(full + own), tuple(grants), only_own)

    def allows_cluster(self, action: str) -> bool:
        return any(p.grants(action) for p in self.cluster)

    def allows_index(self, action: str, expression: str) -> bool:
        return any(g.grants(action) and g.covers(expression) for g in self.indices)

    def allows_some_index(self, action: str) -> bool:
        return any(g.grants(action) for g in self.indices)

    @property
    def sees_every_owner(self) -> bool:
        """Whether the ``all`` cluster privilege is granted (``superuser``): then another
        principal's async results and tasks are shown too."""
        return any(p.name == "all" for p in self.cluster)


@dataclass(frozen=True)
class Limited:
    """An API key's permission: its own role descriptors, limited by its owner's roles as they
    were when the key was created (both must allow)."""

    own: Permission
    limit: Permission

    @property
    def own_api_keys_only(self) -> bool:
        return self.own.own_api_keys_only or self.limit.own_api_keys_only

    def allows_cluster(self, action: str) -> bool:
        return self.own.allows_cluster(action) and self.limit.allows_cluster(action)

    def allows_index(self, action: str, expression: str) -> bool:
        return self.own.allows_index(action, expression) and self.limit.allows_index(action, expression)

    def allows_some_index(self, action: str) -> bool:
        return self.own.allows_some_index(action) and self.limit.allows_some_index(action)

    @property
    def sees_every_owner(self) -> bool:
        return self.own.sees_every_owner and self.limit.sees_every_owner
