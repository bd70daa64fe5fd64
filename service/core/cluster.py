"""Cluster settings, as Elasticsearch keeps them: flat dotted names with string values,
``persistent`` (stored, they survive a restart) and ``transient`` (in memory) over each
setting's default; the transient value wins, then the persistent one.

The core knows no setting: the app registers each ``Setting`` (its name, default and the
check its values must pass), the way Elasticsearch's plugins register theirs. A request
naming any other is refused as a whole, as is a value that fails its check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import orjson

from ..errors import BadRequest, ValidationError
from ..params import parse_bool, parse_time_ms
from ..patterns import wildcard
from ..store.cluster_settings import ClusterSettingsStore

SCOPES = ("persistent", "transient")


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    check: Callable[[str, str], None] = lambda name, value: None  # raises the error for a bad value
    listed: bool = False  # a JSON list of strings is a value too, kept comma-separated


def boolean(name: str, value: str) -> None:
    parse_bool(value, name, empty_is_true=False)


def at_least(minimum: int) -> Callable[[str, str], None]:
    """An integer setting's check, with Elasticsearch's wording."""
    def check(name: str, value: str) -> None:
        try:
            number = int(value)
        except ValueError:
            raise BadRequest(f"Failed to parse value [{value}] for setting [{name}]") from None
        if number < minimum:
            raise BadRequest(f"Failed to parse value [{value}] for setting [{name}] must be >= {minimum}")
    return check


def time_value(name: str, value: str) -> None:
    parse_time_ms(value, name)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted names (``{"a": {"b": 1}}`` and ``{"a.b": 1}`` are the same)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted names as nested objects, the way Elasticsearch renders settings by default."""
    tree: dict[str, Any] = {}
    for name in sorted(flat):
        node = tree
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = flat[name]
    return tree


def _text(setting: Setting, value: Any) -> str | None:
    """A JSON value as the string Elasticsearch stores (None removes the setting); a list of
    strings for a ``listed`` setting as its comma-separated items."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if setting.listed and isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ",".join(item.strip() for item in value)
    shown = orjson.dumps(value).decode() if isinstance(value, list) else str(value)
    raise BadRequest(f"Failed to parse value [{shown}] for setting [{setting.name}]")


class ClusterSettings:
    def __init__(self, store: ClusterSettingsStore, settings: Iterable[Setting]) -> None:
        self.store = store
        self.known = {s.name: s for s in settings}
        self.values: dict[str, dict[str, str]] = {"persistent": {}, "transient": {}}

    async def load(self) -> None:
        """The persistent values as stored; one no longer known (an older version's) is kept
        but never read."""
        self.values["persistent"] = await self.store.load()

    def get(self, name: str) -> str:
        """The value in force: transient, else persistent, else the default."""
        for scope in ("transient", "persistent"):
            if name in self.values[scope]:
                return self.values[scope][name]
        return self.known[name].default

    def defaults(self) -> dict[str, str]:
        """The defaults of the settings set in neither scope (Elasticsearch's
        ``include_defaults`` shows only those)."""
        return {name: s.default for name, s in self.known.items()
                if not any(name in self.values[scope] for scope in SCOPES)}

    async def update(self, body: Mapping[str, Any]) -> dict[str, dict[str, str]]:
        """Apply a PUT body (``persistent`` and ``transient`` objects, nested or flat names,
        null resets one, a null name ending in ``*`` every one it matches); all checked before
        anything changes. The values set, per scope."""
        given = {scope: _flat(scope, body.get(scope)) for scope in SCOPES}
        if not any(given.values()):
            raise ValidationError("no settings to update")
        changes = {scope: self._checked(scope, given[scope]) for scope in SCOPES}
        await self.store.apply(changes["persistent"])
        for scope in SCOPES:
            for name, value in changes[scope].items():
                if value is None:
                    self.values[scope].pop(name, None)
                else:
                    self.values[scope][name] = value
        return {scope: {n: v for n, v in changes[scope].items() if v is not None} for scope in SCOPES}

    def _matching(self, scope: str, pattern: str) -> list[str]:
        """The names set in ``scope`` that ``pattern`` matches (Elasticsearch's
        ``Regex.simpleMatch``); none is no error."""
        return list(filter(wildcard(pattern), self.values[scope]))

    def _checked(self, scope: str, given: dict[str, Any]) -> dict[str, str | None]:
        """The changes of one scope: Elasticsearch's wildcard resets first, so that a value
        the same request sets wins over them, in any order."""
        changes: dict[str, str | None] = {}
        for name, value in given.items():
            if value is None and name.endswith("*"):
                changes.update((matching, None) for matching in self._matching(scope, name))
        for name, value in given.items():
            if value is None and name.endswith("*"):
                continue
            if name not in self.known:
                raise BadRequest(f"{scope} setting [{name}], not recognized")
            text = changes[name] = _text(self.known[name], value)
            if text is not None:
                self.known[name].check(name, text)
        return changes


def _flat(scope: str, given: Any) -> dict[str, Any]:
    """A scope of a PUT body as flat names (none when it is absent)."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise BadRequest(f"[{scope}] must be an object of settings, got [{given}]")
    return flatten(given)
