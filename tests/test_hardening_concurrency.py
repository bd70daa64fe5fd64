"""Optimistic concurrency exactly as Elasticsearch (issue 10): ``if_seq_no``/``if_primary_term``,
``version`` with ``version_type=external|external_gte``, ``op_type=create``, on ``_doc``,
``_create``, ``_update``, ``DELETE`` and every ``_bulk`` action, through the official client.

Every refused write is checked to leave the stored document exactly as it was.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from elasticsearch import AsyncElasticsearch, BadRequestError, ConflictError, NotFoundError

from service import keys
from service.store.versioning import GC_DELETES_S

from conftest import assert_live, index_state

CAS_REASON = "[{id}]: version conflict, required seqNo [{seq}], primary term [{term}]. "


async def stored(es: AsyncElasticsearch, index: str, doc_id: str) -> dict[str, Any] | None:
    """What a refused write must leave alone: the document's version, seq_no and source."""
    try:
        doc = await es.get(index=index, id=doc_id)
    except NotFoundError:
        return None
    return {k: doc[k] for k in ("_version", "_seq_no", "_primary_term", "_source")}


def reason(info: pytest.ExceptionInfo[Any]) -> str:
    return info.value.body["error"]["reason"]


def validation(*problems: str) -> str:
    return "Validation Failed: " + "".join(f"{n}: {p};" for n, p in enumerate(problems, 1))


def item(resp: Any, n: int) -> dict[str, Any]:
    return next(iter(resp["items"][n].values()))


# --- if_seq_no / if_primary_term ---------------------------------------------------------


async def test_the_seq_no_a_write_returns_is_the_one_get_returns_and_a_client_sends_back(
        es: AsyncElasticsearch) -> None:
    first = await es.index(index="cas", id="1", document={"n": 1})
    doc = await es.get(index="cas", id="1")
    assert (first["_seq_no"], first["_primary_term"]) == (doc["_seq_no"], doc["_primary_term"]) == (0, 1)
    second = await es.index(index="cas", id="1", document={"n": 2},
                            if_seq_no=doc["_seq_no"], if_primary_term=doc["_primary_term"])
    assert second.meta.status == 200 and second["result"] == "updated"
    assert (second["_version"], second["_seq_no"], second["_primary_term"]) == (2, 1, 1)
    assert await stored(es, "cas", "1") == {"_version": 2, "_seq_no": 1, "_primary_term": 1, "_source": {"n": 2}}


async def test_read_modify_write_loses_no_update(es: AsyncElasticsearch) -> None:
    await es.index(index="cas", id="c", document={"count": 0})
    seen = await es.get(index="cas", id="c")
    other = await es.get(index="cas", id="c")
    await es.index(index="cas", id="c", document={"count": seen["_source"]["count"] + 1},
                   if_seq_no=seen["_seq_no"], if_primary_term=seen["_primary_term"])
    before = await stored(es, "cas", "c")
    with pytest.raises(ConflictError) as info:
        await es.index(index="cas", id="c", document={"count": other["_source"]["count"] + 1},
                       if_seq_no=other["_seq_no"], if_primary_term=other["_primary_term"])
    assert info.value.meta.status == 409 and info.value.error == "version_conflict_engine_exception"
    assert reason(info) == (CAS_REASON.format(id="c", seq=0, term=1)
                            + "current document has seqNo [1] and primary term [1]")
    error = info.value.body["error"]
    assert error["index"] == "cas" and error["shard"] == "0" and error["root_cause"][0]["reason"] == reason(info)
    assert await stored(es, "cas", "c") == before


async def test_concurrent_writers_with_the_same_seq_no_exactly_one_wins(es: AsyncElasticsearch) -> None:
    await es.index(index="cas", id="hot", document={"writer": None})
    seen = await es.get(index="cas", id="hot")

    async def write(n: int) -> int:
        try:
            await es.index(index="cas", id="hot", document={"writer": n},
                           if_seq_no=seen["_seq_no"], if_primary_term=seen["_primary_term"])
        except ConflictError:
            return -1
        return n

    results = await asyncio.gather(*(write(n) for n in range(8)))
    winners = [n for n in results if n >= 0]
    assert len(winners) == 1
    assert await stored(es, "cas", "hot") == {"_version": 2, "_seq_no": 1, "_primary_term": 1,
                                              "_source": {"writer": winners[0]}}


async def test_a_wrong_primary_term_conflicts(es: AsyncElasticsearch) -> None:
    await es.index(index="cas", id="1", document={"n": 1})
    before = await stored(es, "cas", "1")
    with pytest.raises(ConflictError) as info:
        await es.index(index="cas", id="1", document={"n": 2}, if_seq_no=0, if_primary_term=2)
    assert reason(info) == CAS_REASON.format(id="1", seq=0, term=2) + "current document has seqNo [0] and primary term [1]"
    assert await stored(es, "cas", "1") == before


async def test_if_seq_no_on_a_missing_document_conflicts_and_creates_nothing(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="cas")
    with pytest.raises(ConflictError) as info:
        await es.index(index="cas", id="ghost", document={"n": 1}, if_seq_no=5, if_primary_term=1)
    assert reason(info) == CAS_REASON.format(id="ghost", seq=5, term=1) + "but no document was found"
    assert await stored(es, "cas", "ghost") is None


async def test_a_stale_delete_deletes_nothing(es: AsyncElasticsearch, http: TestClient) -> None:
    await es.index(index="cas", id="1", document={"n": 1})
    await es.index(index="cas", id="1", document={"n": 2})
    before = await stored(es, "cas", "1")
    with pytest.raises(ConflictError) as info:
        await es.delete(index="cas", id="1", if_seq_no=0, if_primary_term=1)
    assert reason(info) == CAS_REASON.format(id="1", seq=0, term=1) + "current document has seqNo [1] and primary term [1]"
    assert await stored(es, "cas", "1") == before
    resp = await es.delete(index="cas", id="1", if_seq_no=1, if_primary_term=1)
    assert (resp["result"], resp["_version"], resp["_seq_no"]) == ("deleted", 3, 2)
    # The document is gone: if_seq_no now finds nothing, even the seq_no of the delete.
    with pytest.raises(ConflictError) as info:
        await es.delete(index="cas", id="1", if_seq_no=2, if_primary_term=1)
    assert reason(info) == CAS_REASON.format(id="1", seq=2, term=1) + "but no document was found"
    await assert_live(http)


async def test_update_checks_if_seq_no_when_it_reads_the_document(es: AsyncElasticsearch) -> None:
    await es.index(index="cas", id="u", document={"a": 1})
    await es.index(index="cas", id="u", document={"a": 2})
    before = await stored(es, "cas", "u")
    for doc in ({"a": 3}, {"a": 2}):  # a change, and a noop: both refused
        with pytest.raises(ConflictError) as info:
            await es.update(index="cas", id="u", doc=doc, if_seq_no=0, if_primary_term=1)
        assert reason(info) == (CAS_REASON.format(id="u", seq=0, term=1)
                                + "current document has seqNo [1] and primary term [1]")
        assert await stored(es, "cas", "u") == before
    resp = await es.update(index="cas", id="u", doc={"b": 1}, if_seq_no=1, if_primary_term=1)
    assert (resp["result"], resp["_version"], resp["_seq_no"]) == ("updated", 3, 2)
    # An update body may carry them too, as ES's update parser reads them.
    with pytest.raises(ConflictError):
        await es.update(index="cas", id="u", body={"doc": {"b": 2}, "if_seq_no": 1, "if_primary_term": 1})
    assert (await stored(es, "cas", "u"))["_source"] == {"a": 2, "b": 1}


async def test_update_with_if_seq_no_of_a_missing_document_is_document_missing(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="cas")
    with pytest.raises(NotFoundError) as info:
        await es.update(index="cas", id="none", doc={"a": 1}, if_seq_no=0, if_primary_term=1)
    assert info.value.error == "document_missing_exception" and reason(info) == "[none]: document missing"
    assert await stored(es, "cas", "none") is None


# --- external versioning -------------------------------------------------------------------


async def test_external_versions_are_stored_and_must_grow(es: AsyncElasticsearch) -> None:
    resp = await es.index(index="ext", id="1", document={"v": 5}, version=5, version_type="external")
    assert (resp.meta.status, resp["result"], resp["_version"]) == (201, "created", 5)
    assert (await stored(es, "ext", "1"))["_version"] == 5
    before = await stored(es, "ext", "1")
    for version in (3, 5):
        with pytest.raises(ConflictError) as info:
            await es.index(index="ext", id="1", document={"v": version}, version=version, version_type="external")
        assert reason(info) == f"[1]: version conflict, current version [5] is higher or equal to the one provided [{version}]"
        assert await stored(es, "ext", "1") == before
    with pytest.raises(ConflictError) as info:
        await es.index(index="ext", id="1", document={"v": 4}, version=4, version_type="external_gte")
    assert reason(info) == "[1]: version conflict, current version [5] is higher than the one provided [4]"
    assert await stored(es, "ext", "1") == before
    same = await es.index(index="ext", id="1", document={"v": 6}, version=5, version_type="external_gte")
    assert (same["result"], same["_version"]) == ("updated", 5)
    later = await es.index(index="ext", id="1", document={"v": 9}, version=9, version_type="external")
    assert later["_version"] == 9 and await stored(es, "ext", "1") == {
        "_version": 9, "_seq_no": later["_seq_no"], "_primary_term": 1, "_source": {"v": 9}}


async def test_external_delete(es: AsyncElasticsearch) -> None:
    await es.index(index="ext", id="1", document={"v": 1}, version=10, version_type="external")
    before = await stored(es, "ext", "1")
    with pytest.raises(ConflictError) as info:
        await es.delete(index="ext", id="1", version=7, version_type="external")
    assert reason(info) == "[1]: version conflict, current version [10] is higher or equal to the one provided [7]"
    assert await stored(es, "ext", "1") == before
    resp = await es.delete(index="ext", id="1", version=11, version_type="external")
    assert (resp["result"], resp["_version"]) == ("deleted", 11)
    assert await stored(es, "ext", "1") is None


async def test_a_delete_leaves_a_tombstone_for_gc_deletes(es: AsyncElasticsearch, server: TestServer) -> None:
    """As in ES: deleting a missing id with an external version answers 404 with that version
    and remembers it for index.gc_deletes (60 s), so an older write cannot resurrect the id."""
    now = [1000.0]
    server.app[keys.DOCUMENTS].tombstones.clock = lambda: now[0]
    await es.indices.create(index="ext")
    with pytest.raises(NotFoundError) as info:
        await es.delete(index="ext", id="t", version=20, version_type="external")
    assert (info.value.body["result"], info.value.body["_version"]) == ("not_found", 20)
    with pytest.raises(ConflictError) as conflict:
        await es.index(index="ext", id="t", document={"v": 1}, version=15, version_type="external")
    assert reason(conflict) == "[t]: version conflict, current version [20] is higher or equal to the one provided [15]"
    assert await stored(es, "ext", "t") is None
    now[0] += GC_DELETES_S + 1
    resp = await es.index(index="ext", id="t", document={"v": 1}, version=15, version_type="external")
    assert (resp["result"], resp["_version"]) == ("created", 15)


async def test_internal_versions_continue_across_a_recent_delete(es: AsyncElasticsearch) -> None:
    await es.index(index="int", id="1", document={"n": 1})
    assert (await es.delete(index="int", id="1"))["_version"] == 2
    resp = await es.index(index="int", id="1", document={"n": 2})
    assert (resp.meta.status, resp["result"], resp["_version"]) == (201, "created", 3)


# --- op_type=create ------------------------------------------------------------------------


async def test_create_on_an_existing_document_conflicts_on_every_path(es: AsyncElasticsearch) -> None:
    await es.index(index="cr", id="1", document={"n": 1})
    await es.index(index="cr", id="1", document={"n": 2})
    before = await stored(es, "cr", "1")
    expected = "[1]: version conflict, document already exists (current version [2])"
    with pytest.raises(ConflictError) as info:
        await es.create(index="cr", id="1", document={"n": 3})
    assert reason(info) == expected
    with pytest.raises(ConflictError) as info:
        await es.index(index="cr", id="1", document={"n": 3}, op_type="create")
    assert reason(info) == expected
    resp = await es.bulk(operations=[{"create": {"_index": "cr", "_id": "1"}}, {"n": 3},
                                     {"index": {"_index": "cr", "_id": "1", "op_type": "create"}}, {"n": 3}])
    assert [next(iter(i)) for i in resp["items"]] == ["create", "create"]
    assert [item(resp, n)["error"]["reason"] for n in (0, 1)] == [expected, expected]
    assert await stored(es, "cr", "1") == before
    # A recently deleted id can be created again; its version continues.
    await es.delete(index="cr", id="1")
    assert (await es.create(index="cr", id="1", document={"n": 4}))["_version"] == 4


# --- _bulk ---------------------------------------------------------------------------------


async def test_every_bulk_action_checks_versions(es: AsyncElasticsearch) -> None:
    await es.index(index="bk", id="1", document={"n": 1})
    await es.index(index="bk", id="2", document={"n": 1})
    await es.index(index="bk", id="3", document={"n": 1})
    await es.index(index="bk", id="4", document={"n": 1}, version=8, version_type="external")
    before = {i: await stored(es, "bk", i) for i in "1234"}
    resp = await es.bulk(operations=[
        {"index": {"_index": "bk", "_id": "1", "if_seq_no": 9, "if_primary_term": 1}}, {"n": 2},
        {"update": {"_index": "bk", "_id": "2", "if_seq_no": 9, "if_primary_term": 1, "retry_on_conflict": 0}},
        {"doc": {"n": 2}},
        {"delete": {"_index": "bk", "_id": "3", "if_seq_no": 9, "if_primary_term": 1}},
        {"index": {"_index": "bk", "_id": "4", "version": 8, "version_type": "external"}}, {"n": 2},
        {"delete": {"_index": "bk", "_id": "4", "version": "7", "version_type": "external_gte"}},
    ])
    assert resp["errors"] is True
    assert [item(resp, n)["status"] for n in range(5)] == [409] * 5
    assert [item(resp, n)["error"]["reason"] for n in range(5)] == [
        CAS_REASON.format(id="1", seq=9, term=1) + "current document has seqNo [0] and primary term [1]",
        CAS_REASON.format(id="2", seq=9, term=1) + "current document has seqNo [1] and primary term [1]",
        CAS_REASON.format(id="3", seq=9, term=1) + "current document has seqNo [2] and primary term [1]",
        "[4]: version conflict, current version [8] is higher or equal to the one provided [8]",
        "[4]: version conflict, current version [8] is higher than the one provided [7]",
    ]
    assert item(resp, 0)["error"]["type"] == "version_conflict_engine_exception"
    assert {i: await stored(es, "bk", i) for i in "1234"} == before
    ok = await es.bulk(operations=[
        {"index": {"_index": "bk", "_id": "1", "if_seq_no": 0, "if_primary_term": 1}}, {"n": 2},
        {"update": {"_index": "bk", "_id": "2", "if_seq_no": 1, "if_primary_term": 1}}, {"doc": {"n": 2}},
        {"delete": {"_index": "bk", "_id": "3", "if_seq_no": 2, "if_primary_term": 1}},
        {"index": {"_index": "bk", "_id": "4", "version": 12, "version_type": "external"}}, {"n": 2},
        {"index": {"_index": "bk", "_id": "4", "if_seq_no": 3, "if_primary_term": 1}}, {"n": 3},
    ])
    assert [item(ok, n)["status"] for n in range(5)] == [200, 200, 200, 200, 409]
    assert item(ok, 3)["_version"] == 12 and (await stored(es, "bk", "4"))["_source"] == {"n": 2}
    # Within one bulk the later action sees the earlier one's seq_no.
    assert item(ok, 4)["error"]["reason"] == (CAS_REASON.format(id="4", seq=3, term=1)
                                              + f"current document has seqNo [{item(ok, 3)['_seq_no']}] "
                                              "and primary term [1]")


async def test_a_bulk_with_invalid_versioning_fails_whole_and_changes_nothing(es: AsyncElasticsearch) -> None:
    await es.index(index="bk", id="1", document={"n": 1})
    state = await index_state(es, "bk")
    with pytest.raises(BadRequestError) as info:
        await es.bulk(operations=[
            {"index": {"_index": "bk", "_id": "2"}}, {"n": 2},
            {"index": {"_index": "bk", "_id": "1", "if_seq_no": 0}}, {"n": 2},
            {"delete": {"_index": "bk", "_id": "1", "version": 2}},
            {"create": {"_index": "bk", "_id": "3", "version_type": "external", "version": 4}}, {"n": 2},
            {"update": {"_index": "bk", "_id": "1", "if_seq_no": 0, "if_primary_term": 1, "retry_on_conflict": 3}},
            {"doc": {"n": 2}},
        ])
    assert info.value.error == "action_request_validation_exception"
    assert reason(info) == validation(
        "ifSeqNo is set, but primary term is [0]",
        "internal versioning can not be used for optimistic concurrency control. "
        "Please use `if_seq_no` and `if_primary_term` instead",
        "create operations only support internal versioning. use index instead",
        "compare and write operations can not be retried")
    assert await index_state(es, "bk") == state


@pytest.mark.parametrize(("meta", "status", "error", "expected"), [
    ({"if_seq_no": "abc", "if_primary_term": 1}, 400, "illegal_argument_exception", 'For input string: "abc"'),
    ({"version": 3, "version_type": "nope"}, 400, "illegal_argument_exception", "No version type match [nope]"),
    ({"if_seq_no": -5, "if_primary_term": 1}, 400, "illegal_argument_exception",
     "sequence numbers must be non negative. got [-5]."),
    ({"if_seq_no": [1], "if_primary_term": 1}, 400, "illegal_argument_exception",
     "Malformed action/metadata line [1], expected a simple value for field [if_seq_no] but found [START_ARRAY]"),
])
async def test_bad_versioning_values_in_a_bulk_action_line(es: AsyncElasticsearch, meta: dict[str, Any],
                                                           status: int, error: str, expected: str) -> None:
    await es.index(index="bk", id="1", document={"n": 1})
    before = await stored(es, "bk", "1")
    with pytest.raises(BadRequestError) as info:
        await es.bulk(operations=[{"index": {"_index": "bk", "_id": "1", **meta}}, {"n": 2}])
    assert (info.value.meta.status, info.value.error, reason(info)) == (status, error, expected)
    assert await stored(es, "bk", "1") == before


async def test_bulk_versioning_values_are_read_as_es_reads_them(es: AsyncElasticsearch) -> None:
    """Numeric strings and decimals are coerced to a long, and a null is no value."""
    await es.index(index="bk", id="1", document={"n": 1})
    resp = await es.bulk(operations=[
        {"index": {"_index": "bk", "_id": "1", "if_seq_no": "0" * 5000, "if_primary_term": 1.7}}, {"n": 2},
        {"index": {"_index": "bk", "_id": "1", "if_seq_no": None, "if_primary_term": None}}, {"n": 3},
        {"index": {"_index": "bk", "_id": "1", "version": "20.9", "version_type": "external"}}, {"n": 4},
    ])
    assert [item(resp, n)["status"] for n in range(3)] == [200, 200, 200]
    assert item(resp, 2)["_version"] == 20


async def test_bulk_delete_and_update_need_an_id(es: AsyncElasticsearch) -> None:
    await es.index(index="bk", id="1", document={"n": 1})
    state = await index_state(es, "bk")
    with pytest.raises(BadRequestError) as info:
        await es.bulk(operations=[{"delete": {"_index": "bk"}}, {"update": {"_index": "bk"}}, {"doc": {"n": 2}}])
    assert reason(info) == validation("id is missing", "id is missing")
    assert await index_state(es, "bk") == state


async def test_bulk_update_body_if_seq_no_and_upsert_over_a_delete(es: AsyncElasticsearch) -> None:
    await es.index(index="bk", id="1", document={"n": 1})
    resp = await es.bulk(operations=[
        {"update": {"_index": "bk", "_id": "1"}}, {"doc": {"n": 2}, "if_seq_no": 7, "if_primary_term": 1},
        {"delete": {"_index": "bk", "_id": "1"}},
        {"update": {"_index": "bk", "_id": "1"}}, {"doc": {"n": 3}, "doc_as_upsert": True},
    ])
    assert item(resp, 0)["error"]["reason"] == (CAS_REASON.format(id="1", seq=7, term=1)
                                                + "current document has seqNo [0] and primary term [1]")
    assert (item(resp, 1)["_version"], item(resp, 2)["result"], item(resp, 2)["_version"]) == (2, "created", 3)
    assert await stored(es, "bk", "1") == {"_version": 3, "_seq_no": 2, "_primary_term": 1, "_source": {"n": 3}}


async def test_bulk_update_refuses_versions(es: AsyncElasticsearch) -> None:
    await es.index(index="bk", id="1", document={"n": 1})
    before = await stored(es, "bk", "1")
    with pytest.raises(BadRequestError) as info:
        await es.bulk(operations=[{"update": {"_index": "bk", "_id": "1", "version": 2}}, {"doc": {"n": 2}}])
    assert info.value.error == "illegal_argument_exception"
    assert reason(info) == "Update requests do not support versioning. Please use `if_seq_no` and `if_primary_term` instead"
    assert await stored(es, "bk", "1") == before


# --- request validation --------------------------------------------------------------------

INTERNAL_CAS = ("internal versioning can not be used for optimistic concurrency control. "
                "Please use `if_seq_no` and `if_primary_term` instead")


@pytest.mark.parametrize(("params", "problems"), [
    ({"if_seq_no": 1}, ["ifSeqNo is set, but primary term is [0]"]),
    ({"if_primary_term": 1}, ["ifSeqNo is unassigned, but primary term is [1]"]),
    ({"if_seq_no": 0, "if_primary_term": 1, "version": 3, "version_type": "external"},
     ["compare and write operations can not use versioning"]),
    ({"version": 3}, [INTERNAL_CAS]),
    ({"version": 0}, ["illegal version value [0] for version type [INTERNAL]", INTERNAL_CAS]),
    ({"version": -1, "version_type": "external"}, ["illegal version value [-1] for version type [EXTERNAL]"]),
    ({"version_type": "external_gte"}, ["illegal version value [-3] for version type [EXTERNAL_GTE]"]),
    ({"op_type": "create", "version_type": "external", "version": 3},
     ["create operations only support internal versioning. use index instead"]),
    ({"op_type": "create", "version": 3}, ["create operations do not support explicit versions. use index instead"]),
    ({"op_type": "create", "if_seq_no": 0, "if_primary_term": 1},
     ["create operations do not support compare and set. use index instead"]),
])
async def test_index_validation(es: AsyncElasticsearch, params: dict[str, Any], problems: list[str]) -> None:
    await es.index(index="val", id="1", document={"n": 1})
    before = await stored(es, "val", "1")
    with pytest.raises(BadRequestError) as info:
        await es.index(index="val", id="1", document={"n": 2}, **params)
    assert info.value.error == "action_request_validation_exception"
    assert reason(info) == validation(*problems)
    assert await stored(es, "val", "1") == before


async def test_create_and_auto_id_validation(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="val")
    state = await index_state(es, "val")
    with pytest.raises(BadRequestError) as info:
        await es.create(index="val", id="1", document={"n": 1}, version=2, version_type="external")
    assert reason(info) == validation("create operations only support internal versioning. use index instead")
    with pytest.raises(BadRequestError) as info:  # POST without an id is a create
        await es.index(index="val", document={"n": 1}, version=2, version_type="external")
    assert reason(info) == validation("create operations only support internal versioning. use index instead")
    with pytest.raises(BadRequestError) as info:
        await es.index(index="val", document={"n": 1}, version=2, version_type="external", op_type="index")
    assert reason(info) == validation("an id must be provided if version type or value are set")
    assert await index_state(es, "val") == state


async def test_delete_validation(es: AsyncElasticsearch) -> None:
    await es.index(index="val", id="1", document={"n": 1})
    before = await stored(es, "val", "1")
    with pytest.raises(BadRequestError) as info:
        await es.delete(index="val", id="1", version=1)
    assert reason(info) == validation(INTERNAL_CAS)
    with pytest.raises(BadRequestError) as info:
        await es.delete(index="val", id="1", if_seq_no=0, version=2, version_type="external")
    assert reason(info) == validation("compare and write operations can not use versioning",
                                      "ifSeqNo is set, but primary term is [0]")
    assert await stored(es, "val", "1") == before


@pytest.mark.parametrize(("params", "body", "problems"), [
    ({"version": 2}, {"doc": {"n": 2}}, [INTERNAL_CAS]),
    ({"version_type": "external"}, {"doc": {"n": 2}}, [INTERNAL_CAS]),
    ({"if_seq_no": 0, "if_primary_term": 1, "retry_on_conflict": 2}, {"doc": {"n": 2}},
     ["compare and write operations can not be retried"]),
    ({"if_seq_no": 0, "if_primary_term": 1}, {"doc": {"n": 2}, "doc_as_upsert": True},
     ["compare and write operations can not be used with upsert"]),
    ({"if_seq_no": 0, "if_primary_term": 1}, {"doc": {"n": 2}, "upsert": {"n": 0}},
     ["upsert requests don't support `if_seq_no` and `if_primary_term`"]),
    ({"if_seq_no": 0}, {"doc": {"n": 2}}, ["ifSeqNo is set, but primary term is [0]"]),
])
async def test_update_validation(es: AsyncElasticsearch, params: dict[str, Any], body: dict[str, Any],
                                 problems: list[str]) -> None:
    await es.index(index="val", id="1", document={"n": 1})
    before = await stored(es, "val", "1")
    with pytest.raises(BadRequestError) as info:
        # The client's update() has no version parameters: ES refuses them, so send them raw.
        await es.perform_request("POST", "/val/_update/1", params=params, body=body,
                                 headers={"content-type": "application/json", "accept": "application/json"})
    assert info.value.error == "action_request_validation_exception"
    assert reason(info) == validation(*problems)
    assert await stored(es, "val", "1") == before


async def test_if_match_header_is_the_version(es: AsyncElasticsearch) -> None:
    await es.index(index="val", id="1", document={"n": 1})
    before = await stored(es, "val", "1")
    with pytest.raises(BadRequestError) as info:
        await es.options(headers={"If-Match": "1"}).index(index="val", id="1", document={"n": 2})
    assert reason(info) == validation(INTERNAL_CAS)
    with pytest.raises(BadRequestError) as info:
        await es.options(headers={"If-Match": '"1"'}).delete(index="val", id="1")
    assert (info.value.error, reason(info)) == ("number_format_exception", 'For input string: ""1""')
    assert await stored(es, "val", "1") == before
    resp = await es.options(headers={"If-Match": "7"}).index(index="val", id="1", document={"n": 2},
                                                             version_type="external")
    assert resp["_version"] == 7


# --- parameter values ----------------------------------------------------------------------


@pytest.mark.parametrize("write", ["index", "delete"])
@pytest.mark.parametrize(("params", "expected"), [
    ({"if_seq_no": "abc", "if_primary_term": 1}, "Failed to parse long parameter [if_seq_no] with value [abc]"),
    ({"if_seq_no": "9" * 5000, "if_primary_term": 1},
     f"Failed to parse long parameter [if_seq_no] with value [{'9' * 5000}]"),
    ({"if_seq_no": 1, "if_primary_term": "1.0"}, "Failed to parse long parameter [if_primary_term] with value [1.0]"),
    ({"version": "99999999999999999999", "version_type": "external"},
     "Failed to parse long parameter [version] with value [99999999999999999999]"),
    ({"version": 3, "version_type": "force"}, "No version type match [force]"),
    ({"if_seq_no": -5, "if_primary_term": 1}, "sequence numbers must be non negative. got [-5]."),
    ({"if_seq_no": 1, "if_primary_term": -1}, "primary term must be non negative. got [-1]"),
])
async def test_bad_parameter_values(es: AsyncElasticsearch, write: str, params: dict[str, Any],
                                    expected: str) -> None:
    await es.index(index="par", id="1", document={"n": 1})
    before = await stored(es, "par", "1")
    with pytest.raises(BadRequestError) as info:
        if write == "index":
            await es.index(index="par", id="1", document={"n": 2}, **params)
        else:
            await es.delete(index="par", id="1", **params)
    error = info.value.body["error"]
    assert (info.value.meta.status, info.value.error, error["reason"]) == (400, "illegal_argument_exception", expected)
    if expected.startswith("Failed to parse"):
        value = expected.rsplit("[", 1)[1].rstrip("]")
        assert error["caused_by"] == {"type": "number_format_exception", "reason": f'For input string: "{value}"'}
        assert error["root_cause"][0]["type"] == "illegal_argument_exception"
    assert await stored(es, "par", "1") == before


async def test_bad_op_type_and_retry_on_conflict(es: AsyncElasticsearch) -> None:
    await es.index(index="par", id="1", document={"n": 1})
    before = await stored(es, "par", "1")
    with pytest.raises(BadRequestError) as info:
        await es.index(index="par", id="1", document={"n": 2}, op_type="upsert")
    assert reason(info) == "opType must be 'create' or 'index', found: [upsert]"
    with pytest.raises(BadRequestError) as info:
        await es.update(index="par", id="1", doc={"n": 2}, retry_on_conflict="x")  # type: ignore[arg-type]
    assert reason(info) == "Failed to parse int parameter [retry_on_conflict] with value [x]"
    with pytest.raises(BadRequestError) as info:
        await es.update(index="par", id="1", body={"doc": {"n": 2}, "if_seq_no": "x", "if_primary_term": 1})
    assert info.value.error == "x_content_parse_exception"
    assert reason(info) == "[1:28] [UpdateRequest] failed to parse field [if_seq_no]"  # where the value starts
    assert await stored(es, "par", "1") == before


async def test_create_endpoint_takes_only_op_type_create(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="par")
    with pytest.raises(BadRequestError) as info:
        await es.perform_request("PUT", "/par/_create/1", params={"op_type": "index"},
                                 headers={"content-type": "application/json"}, body={"n": 1})
    assert reason(info) == "opType must be 'create', found: [index]"
    assert await stored(es, "par", "1") is None


# --- GET with a version ---------------------------------------------------------------------


async def test_get_with_a_version(es: AsyncElasticsearch) -> None:
    await es.index(index="rd", id="1", document={"n": 1})
    await es.index(index="rd", id="1", document={"n": 2})
    assert (await es.get(index="rd", id="1", version=2))["_source"] == {"n": 2}
    with pytest.raises(ConflictError) as info:
        await es.get(index="rd", id="1", version=1)
    assert reason(info) == "[1]: version conflict, current version [2] is different than the one provided [1]"
    with pytest.raises(BadRequestError) as bad:
        await es.get(index="rd", id="1", version=0)
    assert reason(bad) == validation("illegal version value [0] for version type [INTERNAL]")
    with pytest.raises(NotFoundError):
        await es.get(index="rd", id="missing", version=1)
