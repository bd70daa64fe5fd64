"""Nothing acknowledged is lost: real server processes, killed with SIGKILL and restarted."""

from __future__ import annotations

import pytest

from conftest import ServerProcess

pytestmark = pytest.mark.slow


def test_acknowledged_bulk_survives_kill_9(server_process: ServerProcess) -> None:
    client = server_process.start()
    ops = []
    for i in range(2000):
        ops += [{"index": {"_index": "crash", "_id": str(i)}}, {"n": i, "msg": f"event {i}"}]
    assert client.bulk(operations=ops)["errors"] is False
    client.index(index="crash", id="single", document={"n": -1})
    server_process.kill()

    client = server_process.start()
    assert client.count(index="crash")["count"] == 2001
    assert client.get(index="crash", id="1999")["_source"] == {"n": 1999, "msg": "event 1999"}
    assert client.get(index="crash", id="single")["_source"] == {"n": -1}
    mapping = client.indices.get_mapping(index="crash")["crash"]["mappings"]["properties"]
    assert mapping["n"] == {"type": "long"}
    assert server_process.stop() == 0


def test_sigterm_exits_cleanly(server_process: ServerProcess) -> None:
    server_process.start()
    assert server_process.stop() == 0
