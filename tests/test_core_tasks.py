"""The task manager's selection, wait and cancel-by-filter, below the HTTP layer."""

from __future__ import annotations

import asyncio

import pytest

from service.core.tasks import LIST_ACTION, TaskFilter, TaskManager
from service.errors import ServiceError
from service.query.control import Control

ESQL = "indices:data/read/esql"


def _manager() -> TaskManager:
    manager = TaskManager("n1", "node-one")
    root = manager.register(ESQL, "FROM a", {})
    manager.register(f"{ESQL}/compute", "FROM a", {}, parent=root)
    manager.register("indices:data/read/eql", "any where true", {}, control=Control())
    manager.register(LIST_ACTION, "", {}, cancellable=False)
    return manager


def _actions(tasks) -> list[str]:
    return [t.action for t in tasks]


def test_select_every_task_oldest_first() -> None:
    assert _actions(_manager().select()) == [ESQL, f"{ESQL}/compute", "indices:data/read/eql", LIST_ACTION]


def test_select_by_actions_any_wildcard_matches_and_only_star_is_special() -> None:
    manager = _manager()
    assert _actions(manager.select(TaskFilter(actions=("*esql",)))) == [ESQL]
    assert _actions(manager.select(TaskFilter(actions=("*/compute", "*eql")))) == \
        [f"{ESQL}/compute", "indices:data/read/eql"]
    assert manager.select(TaskFilter(actions=("indices:data/read/esq?",))) == []


def test_select_by_parent() -> None:
    manager = _manager()
    assert _actions(manager.select(TaskFilter(parent="n1:1"))) == [f"{ESQL}/compute"]
    assert manager.select(TaskFilter(parent="n1:2")) == []
    assert manager.select(TaskFilter(parent="other:1")) == []


@pytest.mark.parametrize("node", ["_all", "_local", "*", "n1", "node-one"])
def test_select_by_a_node_naming_this_one(node: str) -> None:
    assert len(_manager().select(TaskFilter(nodes=("elsewhere", node)))) == 4


def test_select_by_nodes_naming_another_node_selects_nothing() -> None:
    assert _manager().select(TaskFilter(nodes=("elsewhere", "n2"))) == []


def test_select_only_cancellable() -> None:
    assert LIST_ACTION not in _actions(_manager().select(cancellable=True))


def test_cancel_matching_cancels_children_and_skips_the_uncancellable() -> None:
    manager = _manager()
    eql = manager.get(3)
    chosen = manager.cancel_matching(TaskFilter(actions=(ESQL, LIST_ACTION)), "by user request")
    assert _actions(chosen) == [ESQL]
    assert manager.get(1).cancelled and manager.get(2).cancelled  # the child shares its parent's control
    assert not eql.cancelled and not manager.get(4).cancelled


def test_cancel_matching_a_child_leaves_its_parent_running() -> None:
    manager = TaskManager("n1")
    root = manager.register(ESQL, "", {})
    manager.register(f"{ESQL}/compute", "", {}, control=Control(), parent=root)
    assert _actions(manager.cancel_matching(TaskFilter(actions=("*/compute",)), "why")) == [f"{ESQL}/compute"]
    assert manager.get(2).cancelled and not root.cancelled


async def test_wait_returns_when_every_task_has_ended() -> None:
    manager = _manager()
    tasks = manager.select(TaskFilter(actions=("indices:*",)))
    loop = asyncio.get_running_loop()
    for i, task in enumerate(tasks):
        loop.call_later(0.01 * (i + 1), manager.unregister, task)
    await manager.wait(tasks, 5, "indices:*")
    assert all(t.done.is_set() for t in tasks)


async def test_wait_never_waits_for_a_task_list() -> None:
    manager = _manager()
    await manager.wait(manager.select(TaskFilter(actions=(LIST_ACTION,))), 5, LIST_ACTION)  # returns at once


async def test_wait_times_out_with_elasticsearchs_error() -> None:
    manager = _manager()
    with pytest.raises(ServiceError) as raised:
        await manager.wait(manager.select(), 0.05, "*")
    assert raised.value.status == 500
    assert raised.value.type == "elasticsearch_timeout_exception"
    assert str(raised.value) == "Timed out waiting for completion of task [*]"
