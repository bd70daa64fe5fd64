"""Who a request runs as: a user of a realm, or an API key and the user that owns it.

``request[keys.PRINCIPAL]`` holds one for every request of a secured service (None when
security is off): the seam for what comes next (index privileges of query sources, owners of
async results). ``owner`` is the stable name of whoever created a result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import Forbidden
from . import privileges as privs
from .roles import Limited, Permission

RESERVED_REALM = ("reserved", "reserved")
NATIVE_REALM = ("default_native", "native")
API_KEY_REALM = ("_es_api_key", "_es_api_key")


@dataclass(frozen=True)
class ApiKeyRef:
    id: str
    name: str


@dataclass(frozen=True)
class Principal:
    username: str
    roles: tuple[str, ...]            # as assigned (a key's: none; its owner's are in ``permission``)
    effective_roles: tuple[str, ...]  # the assigned roles that exist
    permission: Permission | Limited
    realm: tuple[str, str] = NATIVE_REALM  # the realm that holds the user: (name, type)
    full_name: str | None = None
    email: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    api_key: ApiKeyRef | None = None

    @property
    def owner(self) -> str:
        """Whose results this principal's requests create: the user (an API key's results are
        its owner's, as Elasticsearch's async search compares the authenticated user)."""
        return self.username

    def describe(self) -> str:
        """As Elasticsearch's denial message names the subject: ``user [x] with effective roles
        [a,b]`` (and the assigned roles that were not found), or ``API key id [k] of user [x]``."""
        if self.api_key is not None:
            return f"API key id [{self.api_key.id}] of user [{self.username}]"
        text = f"user [{self.username}] with effective roles [{','.join(sorted(self.effective_roles))}]"
        missing = sorted(set(self.roles) - set(self.effective_roles))
        if missing:
            text += f" (assigned roles [{','.join(missing)}] were not found)"
        return text

    def denied(self, action: str, indices: list[str] | None = None) -> Forbidden:
        """The 403 for ``action`` in Elasticsearch's wording, naming the privileges that grant it."""
        message = f"action [{action}] is unauthorized for {self.describe()}"
        if indices is not None:
            message += f" on indices [{','.join(indices)}]"
        if privs.is_cluster_action(action):
            granting, kind = privs.granting(action, privs.CLUSTER), "cluster"
        else:
            granting, kind = privs.granting(action, privs.INDEX), "index"
        if granting:
            message += f", this action is granted by the {kind} privileges [{','.join(granting)}]"
        return Forbidden(message)

    def authenticate_body(self) -> dict[str, Any]:
        """``GET /_security/_authenticate``'s answer."""
        realm = {"name": self.realm[0], "type": self.realm[1]}
        body: dict[str, Any] = {"username": self.username, "roles": list(self.roles), "full_name": self.full_name,
                                "email": self.email, "metadata": self.metadata, "enabled": True,
                                "authentication_realm": realm, "lookup_realm": realm,
                                "authentication_type": "api_key" if self.api_key else "realm"}
        if self.api_key is not None:
            body["api_key"] = {"id": self.api_key.id, "name": self.api_key.name}
        return body
