"""Issue 10, memory: a query that would hold too much fails with Elasticsearch's 429
``circuit_breaking_exception``; the worker survives (or is replaced) and the service
answers on; a SORT before a LIMIT holds only that many rows.

The breaker's limit is set small (16 MiB) here, and one document with two 1,000-value
fields makes a million rows after ``MV_EXPAND a | MV_EXPAND b``: about 100 MiB of rows
if they were all held.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from elasticsearch import ApiError, AsyncElasticsearch

from conftest import assert_live, assert_live_during
from service import keys
from service.query.breaker import byte_size
from service.settings import QUERY_MEMORY_SHARE, Settings, load_settings, physical_memory

LIMIT = 16 << 20
VALUES = 1000
EXPANDED = "FROM mv | MV_EXPAND a | MV_EXPAND b"
REQUEST_BREAKER = re.compile(r"\[request\] Data too large, data for \[(<esql_block_factory>|topn)\] would be "
                             rf"\[(\d+)/[\d.]+[kmg]?b\], which is larger than the limit of \[{LIMIT}/16mb\]")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", port=0, log_format="json", log_level="warning",
                    query_memory_limit_bytes=LIMIT, max_running_queries=1)


@pytest.fixture
async def mv(es: AsyncElasticsearch) -> AsyncElasticsearch:
    await es.indices.create(index="mv", mappings={"properties": {"a": {"type": "long"}, "b": {"type": "long"}}})
    await es.index(index="mv", id="1", document={"a": list(range(VALUES)), "b": list(range(VALUES))}, refresh=True)
    return es


async def refused(es: AsyncElasticsearch, http, query: str) -> dict:
    """Run ``query``, checking the service stays live; it must fail with a 429 breaker error."""
    client = es.options(max_retries=0)  # the client retries a 429 by default, as it does against ES

    async def attempt() -> ApiError | None:
        try:
            await client.esql.query(query=query)
        except ApiError as exc:
            return exc
        return None

    failure = await assert_live_during(http, attempt())
    assert failure is not None and failure.status_code == 429, failure
    error = failure.body["error"]
    assert error["type"] == "circuit_breaking_exception"
    assert error["root_cause"][0]["type"] == "circuit_breaking_exception"
    assert error["durability"] == "TRANSIENT"
    return error


async def still_serves(es: AsyncElasticsearch) -> None:
    resp = await es.esql.query(query="FROM mv | EVAL n = MV_COUNT(a) | KEEP n | LIMIT 1")
    assert resp["values"] == [[VALUES]]


@pytest.mark.parametrize("query", [
    f"{EXPANDED} | STATS c = COUNT(*) BY a, b | LIMIT 1",         # a million groups
    "FROM mv | STATS c = COUNT(*) BY a, b | LIMIT 1",              # as many, from one row's multi-values
    f"{EXPANDED} | STATS m = MEDIAN(b) | LIMIT 1",                 # a million kept values
    f"{EXPANDED} | SORT b DESC | STATS c = COUNT(*) | LIMIT 1",    # a sort no LIMIT bounds
])
async def test_a_query_holding_too_many_rows_gets_429_and_the_next_one_runs(mv: AsyncElasticsearch, http,
                                                                            query: str) -> None:
    await still_serves(mv)
    (worker,) = http.app[keys.RUNNER].pool._all
    error = await refused(mv, http, query)
    match = REQUEST_BREAKER.fullmatch(error["reason"])
    assert match, error["reason"]
    assert error["bytes_limit"] == LIMIT
    assert error["bytes_wanted"] == int(match[2]) > LIMIT
    await still_serves(mv)
    assert http.app[keys.RUNNER].pool._all == {worker} and worker.process.is_alive()  # the same worker
    await assert_live(http)


async def test_an_async_query_fails_the_same_way(mv: AsyncElasticsearch, http) -> None:
    client = mv.options(max_retries=0)
    query = f"{EXPANDED} | STATS c = COUNT(*) BY a, b | LIMIT 1"
    resp = await client.esql.async_query(query=query, wait_for_completion_timeout="0ms", keep_on_completion=True)
    with pytest.raises(ApiError) as info:
        await client.esql.async_query_get(id=resp["id"], wait_for_completion_timeout="30s")
    assert info.value.status_code == 429
    assert info.value.body["error"]["type"] == "circuit_breaking_exception"
    assert REQUEST_BREAKER.fullmatch(info.value.body["error"]["reason"])
    await still_serves(mv)
    await assert_live(http)


async def test_sort_then_limit_holds_only_the_rows_it_returns(mv: AsyncElasticsearch, http) -> None:
    """A full sort of these rows is refused (above); a top-N of them is not, and its rows
    are those of the full sort."""
    resp = await assert_live_during(http, mv.esql.query(query=f"{EXPANDED} | SORT b DESC, a | LIMIT 4"))
    assert resp["values"] == [[0, 999], [1, 999], [2, 999], [3, 999]]
    # a WHERE after the SORT runs before it, so the LIMIT still bounds the sort
    resp = await mv.esql.query(query=f"{EXPANDED} | SORT a DESC | WHERE b < 2 | EVAL c = a + b | LIMIT 3")
    assert resp["values"] == [[999, 0, 999], [999, 1, 1000], [998, 0, 998]]
    # without a LIMIT, the implied 1000
    with pytest.warns(Warning, match=r"No limit defined, adding default limit of \[1000\]"):
        resp = await mv.esql.query(query=f"{EXPANDED} | SORT a DESC, b DESC")
    assert len(resp["values"]) == 1000
    assert resp["values"][0] == [999, 999] and resp["values"][-1] == [999, 0]
    # equal keys keep the order the rows came in, as a stable full sort does
    resp = await mv.esql.query(query=f"{EXPANDED} | SORT a DESC | LIMIT 3")
    assert resp["values"] == [[999, 0], [999, 1], [999, 2]]


async def test_long_strings_count_at_their_length(mv: AsyncElasticsearch, http) -> None:
    """1,000 rows of 100 kB strings are 100 MB, whether a sort keeps them or the result
    carries them."""
    built = 'FROM mv | MV_EXPAND a | EVAL s = CONCAT(TO_STRING(a), REPEAT("x", 100000))'
    error = await refused(mv, http, f"{built} | SORT a DESC | KEEP s | LIMIT 1000")
    assert REQUEST_BREAKER.fullmatch(error["reason"]), error["reason"]
    error = await refused(mv, http, f"{built} | KEEP s | LIMIT 1000")
    assert REQUEST_BREAKER.fullmatch(error["reason"]), error["reason"]
    resp = await mv.esql.query(query=f"{built} | SORT a DESC | EVAL n = LENGTH(s) | KEEP a, n | LIMIT 3")
    assert resp["values"] == [[999, 100003], [998, 100003], [997, 100003]]
    await still_serves(mv)


async def test_distinct_values_are_held_once(mv: AsyncElasticsearch) -> None:
    """A million values with a thousand distinct ones: COUNT_DISTINCT and VALUES keep a thousand."""
    resp = await mv.esql.query(query=f"{EXPANDED} | STATS d = COUNT_DISTINCT(b), v = VALUES(a) | "
                                     f"EVAL n = MV_COUNT(v) | KEEP d, n | LIMIT 1")
    assert resp["values"] == [[VALUES, VALUES]]


async def test_memory_past_the_estimates_is_429_and_the_worker_is_replaced(mv: AsyncElasticsearch, http) -> None:
    """A multi-value doubled 28 times is built inside one expression, where no operator
    holds rows: the worker's own memory cap stops it with a MemoryError, answered with the
    same 429; a fresh worker serves the next query."""
    doubled = "ROW a = MV_APPEND(1, 2)" + " | EVAL a = MV_APPEND(a, a)" * 28 + " | EVAL n = MV_COUNT(a) | KEEP n"
    await still_serves(mv)  # so that the worker exists
    (worker,) = http.app[keys.RUNNER].pool._all
    error = await refused(mv, http, doubled)
    assert error["bytes_limit"] > LIMIT
    await still_serves(mv)
    assert not worker.process.is_alive()
    await assert_live(http)


def test_the_limit_is_a_share_of_memory_by_default_and_can_be_set() -> None:
    default = load_settings(environ={"ESQUIRE_MAX_RUNNING_QUERIES": "4"})
    assert default.query_memory_limit == int(physical_memory() * QUERY_MEMORY_SHARE) // 4
    assert load_settings(environ={"ESQUIRE_QUERY_MEMORY_LIMIT_BYTES": "1048576"}).query_memory_limit == 1 << 20


@pytest.mark.parametrize(("n", "text"), [(0, "0b"), (512, "512b"), (1024, "1kb"), (1536, "1.5kb"),
                                         (16 << 20, "16mb"), (101387834, "96.6mb"), (2527195750, "2.3gb")])
def test_sizes_read_as_elasticsearch_prints_them(n: int, text: str) -> None:
    assert byte_size(n) == text
