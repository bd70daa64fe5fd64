"""Elasticsearch's named privileges as the action patterns they grant
(``ClusterPrivilegeResolver`` and ``IndexPrivilege``).

An action is a name such as ``cluster:monitor/main`` or ``indices:data/read/esql``; a
privilege grants every action one of its patterns matches (``*`` is any run of characters)
and none its exclusions match. A role may also name raw action patterns instead of a
privilege (``cluster:monitor/*``). The tables keep ES's order, least access first, which is
the order ES lists the privileges that would grant a denied action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ..patterns import wildcard

SECURITY = "cluster:admin/xpack/security/*"


@dataclass(frozen=True)
class Privilege:
    name: str
    patterns: tuple[str, ...]
    excluded: tuple[str, ...] = ()

    def grants(self, action: str) -> bool:
        return (any(wildcard(p)(action) for p in self.patterns)
                and not any(wildcard(p)(action) for p in self.excluded))


def _table(*privileges: Privilege) -> dict[str, Privilege]:
    return {p.name: p for p in privileges}


_ALL_CLUSTER = ("cluster:*", "indices:admin/template/*", "indices:admin/index_template/*")

# Least access first: the order ES's denial message lists the privileges that would grant.
CLUSTER = _table(
    Privilege("none", ()),
    Privilege("cancel_task", ("cluster:admin/tasks/cancel*",)),
    Privilege("monitor_ml", ("cluster:monitor/xpack/ml/*",)),
    Privilege("monitor_watcher", ("cluster:monitor/xpack/watcher/*",)),
    Privilege("monitor_transform", ("cluster:monitor/data_frame/*", "cluster:monitor/transform/*")),
    Privilege("monitor_rollup", ("cluster:monitor/xpack/rollup/*",)),
    Privilege("monitor_snapshot", ("cluster:admin/snapshot/status*", "cluster:admin/snapshot/get",
                                   "cluster:admin/repository/get")),
    Privilege("monitor_enrich", ("cluster:monitor/xpack/enrich/*",)),
    Privilege("read_pipeline", ("cluster:admin/ingest/pipeline/get", "cluster:admin/ingest/pipeline/simulate")),
    Privilege("read_ilm", ("cluster:admin/ilm/get", "cluster:admin/ilm/operation_mode/get")),
    Privilege("read_slm", ("cluster:admin/slm/get", "cluster:admin/ilm/operation_mode/get")),
    Privilege("read_ccr", ("cluster:monitor/state", "cluster:admin/xpack/security/user/has_privileges")),
    Privilege("transport_client", ("cluster:monitor/nodes/liveness", "cluster:monitor/state")),
    Privilege("manage_token", ("cluster:admin/xpack/security/token/*",)),
    Privilege("manage_own_api_key", ("cluster:admin/xpack/security/api_key/*",)),  # own keys only
    Privilege("manage_api_key", ("cluster:admin/xpack/security/api_key/*",)),
    Privilege("grant_api_key", ("cluster:admin/xpack/security/api_key/grant*",)),
    Privilege("manage_service_account", ("cluster:admin/xpack/security/service_account/*",)),
    Privilege("manage_user_profile", ("cluster:admin/xpack/security/profile/*",)),
    Privilege("manage_saml", ("cluster:admin/xpack/security/saml/*", "cluster:admin/xpack/security/token/invalidate",
                              "cluster:admin/xpack/security/token/refresh")),
    Privilege("manage_oidc", ("cluster:admin/xpack/security/oidc/*",)),
    Privilege("manage_ml", ("cluster:admin/xpack/ml/*", "cluster:monitor/xpack/ml/*")),
    Privilege("manage_watcher", ("cluster:admin/xpack/watcher/*", "cluster:monitor/xpack/watcher/*")),
    Privilege("manage_transform", ("cluster:admin/data_frame/*", "cluster:monitor/data_frame/*",
                                   "cluster:monitor/transform/*", "cluster:admin/transform/*")),
    Privilege("manage_rollup", ("cluster:admin/xpack/rollup/*", "cluster:monitor/xpack/rollup/*")),
    Privilege("manage_index_templates", ("indices:admin/template/*", "indices:admin/index_template/*",
                                         "cluster:admin/component_template/*")),
    Privilege("manage_ingest_pipelines", ("cluster:admin/ingest/pipeline/*",)),
    Privilege("manage_pipeline", ("cluster:admin/ingest/pipeline/*",)),
    Privilege("manage_ilm", ("cluster:admin/ilm/*",)),
    Privilege("manage_slm", ("cluster:admin/slm/*", "cluster:admin/ilm/start", "cluster:admin/ilm/stop",
                             "cluster:admin/ilm/operation_mode/get")),
    Privilege("manage_ccr", ("cluster:admin/xpack/ccr/*", "cluster:monitor/state",
                             "cluster:admin/xpack/security/user/has_privileges")),
    Privilege("manage_enrich", ("cluster:admin/xpack/enrich/*",)),
    Privilege("manage_autoscaling", ("cluster:admin/autoscaling/*",)),
    Privilege("create_snapshot", ("cluster:admin/snapshot/create", "cluster:admin/snapshot/status*",
                                  "cluster:admin/snapshot/get", "cluster:admin/repository/get")),
    Privilege("delegate_pki", ("cluster:admin/xpack/security/delegate_pki",
                               "cluster:admin/xpack/security/token/invalidate")),
    Privilege("monitor", ("cluster:monitor/*", "indices:admin/template/get", "indices:admin/index_template/get",
                          "cluster:admin/component_template/get")),
    Privilege("read_security", ("cluster:admin/xpack/security/api_key/get",
                                "cluster:admin/xpack/security/api_key/query",
                                "cluster:admin/xpack/security/privilege/builtin/get",
                                "cluster:admin/xpack/security/privilege/get", "cluster:admin/xpack/security/role/get",
                                "cluster:admin/xpack/security/role_mapping/get",
                                "cluster:admin/xpack/security/user/get",
                                "cluster:admin/xpack/security/user/list_privileges",
                                "cluster:admin/xpack/security/user/has_privileges")),
    Privilege("manage_security", (SECURITY, "cluster:admin/xpack/security/delegate_pki")),
    Privilege("manage", _ALL_CLUSTER, (SECURITY,)),
    Privilege("all", _ALL_CLUSTER),
)

INDEX = _table(
    Privilege("none", ()),
    Privilege("read_cross_cluster", ("internal:transport/proxy/indices:data/read/*", "indices:data/read/esql",
                                     "indices:admin/shards/search_shards")),
    Privilege("create_doc", ("indices:data/write/index", "indices:data/write/index[*",
                             "indices:data/write/index:op_type/create", "indices:data/write/bulk*")),
    Privilege("create", ("indices:data/write/index*", "indices:data/write/bulk*")),
    Privilege("index", ("indices:data/write/index*", "indices:data/write/bulk*", "indices:data/write/update*")),
    Privilege("delete", ("indices:data/write/delete*", "indices:data/write/bulk*")),
    Privilege("write", ("indices:data/write/*", "indices:admin/mapping/put")),
    Privilege("auto_configure", ("indices:admin/mapping/auto_put", "indices:admin/auto_create")),
    Privilege("create_index", ("indices:admin/create", "indices:admin/auto_create",
                               "indices:admin/data_stream/create")),
    Privilege("delete_index", ("indices:admin/delete", "indices:admin/data_stream/delete")),
    Privilege("maintenance", ("indices:admin/refresh*", "indices:admin/flush*", "indices:admin/synced_flush",
                              "indices:admin/forcemerge*")),
    Privilege("view_index_metadata", ("indices:admin/aliases/get", "indices:admin/get",
                                      "indices:admin/mappings/fields/get*",
                                      "indices:admin/mappings/get", "indices:admin/shards/search_shards",
                                      "indices:admin/validate/query*", "indices:monitor/settings/get",
                                      "indices:admin/resolve/index", "indices:data/read/field_caps*")),
    Privilege("monitor", ("indices:monitor/*",)),
    Privilege("read", ("indices:data/read/*", "indices:admin/resolve/index", "indices:admin/resolve/cluster")),
    Privilege("manage", ("indices:monitor/*", "indices:admin/*", "indices:data/read/field_caps*")),
    Privilege("all", ("indices:*", "internal:transport/proxy/indices:*")),
)

CLUSTER_ACTION_PATTERNS = _ALL_CLUSTER
INDEX_ACTION_PATTERNS = ("indices:*", "internal:transport/proxy/indices:*")


def is_cluster_action(action: str) -> bool:
    return any(wildcard(p)(action) for p in CLUSTER_ACTION_PATTERNS)


def resolve(name: str, table: dict[str, Privilege], action_patterns: tuple[str, ...]) -> Privilege | None:
    """The named privilege, or a raw action pattern as a privilege of its own (ES accepts
    ``cluster:monitor/*`` in a role), or None when the name is neither."""
    named = table.get(name.lower())
    if named is not None:
        return named
    if any(wildcard(p)(name) for p in action_patterns):
        # ES: a cluster action grants itself and what it prefixes; an index action pattern is itself
        return Privilege(name, (name + "*",) if action_patterns is CLUSTER_ACTION_PATTERNS else (name,))
    return None


def granting(action: str, table: dict[str, Privilege]) -> list[str]:
    """The named privileges that grant ``action``, least access first (ES's denial message).
    ``manage_own_api_key`` is left out: it grants API key actions on one's own keys only, and
    ES names it only where the request was for those."""
    return [p.name for p in table.values() if p.name not in ("none", "manage_own_api_key") and p.grants(action)]


def unknown_cluster(name: str) -> str:
    return (f"unknown cluster privilege [{name}]. a privilege must be either one of the predefined cluster privilege "
            f"names [{','.join(CLUSTER)}] or a pattern over one of the available cluster actions")


def unknown_index(name: str) -> str:
    return (f"unknown index privilege [{name.lower()}]. a privilege must be either one of the predefined fixed indices "
            f"privileges [{','.join(INDEX)}] or a pattern over one of the available index actions")


def all_granted(names: Iterable[str], table: dict[str, Privilege], patterns: tuple[str, ...]) -> list[Privilege]:
    """The privileges ``names`` resolve to (the caller validated them)."""
    return [p for p in (resolve(n, table, patterns) for n in names) if p is not None]
