"""Property-based fuzzing of every route (issue 10): hostile requests, drawn by
``fuzz_strategies``, against a real server process over a real socket.

For every request, whatever it holds:
- it is answered within ``BOUND_S`` seconds, and with a status below 500;
- an error (status >= 400) has Elasticsearch's error body (or ES's 404 document shape);
- a rejected request (4xx, or a ``_bulk`` whose every item failed) leaves every index's
  mapping and document count as they were, and creates no index;
- after a request that changed something, every index can still be read;
- an async query it started ends within ``BOUND_S`` seconds;
- and the service still answers ``GET /`` within a second.

Why a server process rather than the in-process ``server`` fixture: a request that blocks
the event loop (a backtracking pattern) would block the test's own loop with it, so no
timeout could fire and one bad example would cost minutes. Against a process, the client
gives up after ``BOUND_S``, the fuzzer kills that process group and starts it again, and
the search goes on. One process serves a whole module; before each example the fuzzer
puts its indices back as ``BASELINE_*`` defines them if anything may have changed them.

Run time is bounded for CI: ``FUZZ_EXAMPLES`` examples per route (``derandomize``: the
same requests every run), not shrunk. ``ESQUIRE_FUZZ_SHRINK=1`` shrinks those to minimal
requests; ``ESQUIRE_FUZZ_EXAMPLES=500`` runs longer, with fresh random examples each time,
shrunk; ``ESQUIRE_FUZZ_FAILURES=<file>`` appends every violation seen (shrinking included)
as a JSON line, to triage many at once.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Iterator
from urllib.parse import quote

import aiohttp
import pytest
from elasticsearch import AsyncElasticsearch
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from conftest import assert_live, index_state
from fuzz_seeds import SEEDS
from fuzz_server import FuzzServer, State, http_exchange
from fuzz_strategies import PATH_PARAMS, ROUTES, FuzzRequest, protocol_extras, requests_for, with_protocol
from fuzz_values import BASELINE_DOCS, BASELINE_MAPPINGS, QUERY_PARAM_KINDS, Raw
from service.app import create_app
from service.settings import Settings

BOUND_S = 5.0  # generous: CI machines are noisy; a healthy answer here takes milliseconds
FUZZ_EXAMPLES = int(os.environ.get("ESQUIRE_FUZZ_EXAMPLES", "50"))
FAILURES_FILE = os.environ.get("ESQUIRE_FUZZ_FAILURES")

_COMMON = dict(
    deadline=None,  # a request's time is a property of its own, checked with a bound that fits CI
    database=None,
    # The ``fuzzer`` fixture is shared by a test's examples on purpose: it holds connections
    # only, and restores the server's state itself before each example that needs it.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)
# No shrinking in CI: a request that hangs costs BOUND_S and a restart per attempt, and
# shrinking one makes dozens; CI reports the failing request as drawn. ESQUIRE_FUZZ_SHRINK=1
# shrinks CI's own examples to minimal ones; a long run shrinks too.
SHRINK = bool(os.environ.get("ESQUIRE_FUZZ_SHRINK"))
settings.register_profile("fuzz-ci", max_examples=FUZZ_EXAMPLES, derandomize=True,
                          phases=list(Phase) if SHRINK else [Phase.explicit, Phase.reuse, Phase.generate],
                          **_COMMON)
settings.register_profile("fuzz-long", max_examples=FUZZ_EXAMPLES, derandomize=False, print_blob=True, **_COMMON)
LONG = "ESQUIRE_FUZZ_EXAMPLES" in os.environ
FUZZ_PROFILE = settings.get_profile("fuzz-long" if LONG else "fuzz-ci")
# Shrinking takes as long as it takes: no per-test timeout then (pytest's is for CI).
pytestmark = [pytest.mark.timeout(0)] if LONG or SHRINK else []


# --- the routes, as the app lists them ---------------------------------------------------------

def app_routes() -> dict[tuple[str, str], frozenset[str]]:
    """Every (method, path template) of the app's router, with the query parameters its
    handler accepts (``@accepts``)."""
    app = create_app(Settings(data_dir=Path("unused"), port=0))
    return {(route.method, route.resource.canonical): getattr(route.handler, "es_params", frozenset())
            for route in app.router.routes()}


ROUTER = app_routes()


def test_every_route_has_a_strategy() -> None:
    """A route, path parameter or query parameter the fuzzer cannot draw fails here, so a
    new one cannot escape the suite."""
    assert sorted(set(ROUTER) - set(ROUTES)) == [], "routes without a strategy in fuzz_strategies.ROUTES"
    assert sorted(set(ROUTES) - set(ROUTER)) == [], "strategies for routes the app no longer has"
    for (method, template), accepted in ROUTER.items():
        names = [part[1:-1] for part in template.split("/") if part.startswith("{")]
        missing = [n for n in names if n not in PATH_PARAMS and n not in ROUTES[(method, template)].params]
        assert missing == [], f"{method} {template}: path parameters without a strategy"
        assert sorted(accepted - set(QUERY_PARAM_KINDS)) == [], f"{method} {template}: query parameters " \
                                                                "without a strategy in QUERY_PARAM_KINDS"
        assert accepted, f"{method} {template}: the handler declares no query parameters (@accepts)"
    assert [name for name, r in SEEDS.items() if (r.method, r.template) not in ROUTER] == [], "seeds of no route"


# --- the server process --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzServer]:
    server = FuzzServer(tmp_path_factory.mktemp("fuzz"))
    server.start(fresh=True)
    yield server
    server.stop()


# --- the fuzzer: sends a request, checks the properties, restores the state -----------------------

@dataclass(repr=False)
class Answer:
    status: int
    headers: Any
    body: bytes
    elapsed_s: float

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def __repr__(self) -> str:
        body = self.body[:600] + (b"..." if len(self.body) > 600 else b"")
        return f"{self.status} in {self.elapsed_s:.2f}s {body!r}"


def error_shape_problem(request: FuzzRequest, answer: Answer) -> str | None:
    """What is wrong with an error answer's body, compared with Elasticsearch's shapes:
    ``{"error": {"root_cause": [...], "type", "reason", ...}, "status": N}``, the routing
    errors' ``{"error": "text"[, "status": N]}``, and the 404 of a missing document
    (``GET`` or ``DELETE``), which is no error but the document's answer."""
    if request.method == "HEAD":
        return None
    data = answer.json()
    if not isinstance(data, dict):
        return f"the body is not a JSON object (Content-Type {answer.headers.get('Content-Type')})"
    if answer.status == 404 and "error" not in data and request.template == "/{index}/_doc/{id}":
        return None  # a missing document: ES's document shape, a response like any (filter_path applies)
    error = data.get("error")
    if isinstance(error, str):
        return None if data.get("status", answer.status) == answer.status else "status field differs"
    if not isinstance(error, dict):
        return "no error object"
    if not isinstance(error.get("type"), str) or not isinstance(error.get("reason"), (str, type(None))):
        return "error without a string type and reason"
    causes = error.get("root_cause")
    if not isinstance(causes, list) or not all(isinstance(c, dict) and isinstance(c.get("type"), str)
                                                for c in causes):
        return "error without a root_cause list"
    return None if data.get("status") == answer.status else "status field differs from the HTTP status"


def rejected(request: FuzzRequest, answer: Answer) -> bool:
    """Refused as a whole: an error status, or a bulk whose every item failed (an error,
    or an item status of 400 and more: a delete of nothing is 404)."""
    if answer.status >= 400:
        return True
    if request.template.endswith("/_bulk") and answer.status == 200:
        items = [next(iter(item.values()), {}) for item in (answer.json() or {}).get("items") or []]
        return bool(items) and all("error" in item or item.get("status", 200) >= 400 for item in items)
    return False


class Fuzzer:
    """Sends fuzzed requests to ``server`` and checks the suite's properties on each."""

    def __init__(self, server: FuzzServer) -> None:
        self.server = server
        self.live: dict[str, str] = {}
        self.dirty = True      # the state may differ from the baseline: restore it first
        self.suspect = False   # the server may be hung: restart it first
        self.settle = False    # a query may still run: wait for the tasks to end first
        self.http: aiohttp.ClientSession | None = None
        self.es: AsyncElasticsearch | None = None

    async def connect(self) -> None:
        await self.close()
        self.http = aiohttp.ClientSession(base_url=self.server.url)
        self.es = AsyncElasticsearch(self.server.url, request_timeout=BOUND_S, max_retries=0)

    async def close(self) -> None:
        for client in (self.http, self.es):
            if client is not None:
                await client.close()

    # --- before each example ---------------------------------------------------------------

    async def prepare(self) -> None:
        if self.suspect or self.server.proc is None or self.server.proc.poll() is not None:
            await self._restart(fresh=False)
        if self.settle:
            await self._settle()
        if self.dirty:
            await self._restore()
        self.dirty = self.suspect = self.settle = False

    async def _restart(self, *, fresh: bool) -> None:
        self.server.start(fresh=fresh)
        self.live.clear()
        await self.connect()
        self.dirty = True

    async def _settle(self, within_s: float = 20.0) -> None:
        """Wait until no query task is left (a cancelled one ends within the runner's grace)."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            try:
                async with asyncio.timeout(BOUND_S):
                    async with self.http.get("/_tasks", params={"group_by": "none"}) as resp:
                        tasks = (await resp.json())["tasks"]
                if not [t for t in tasks if "esql" in t["action"]]:
                    return
            except (TimeoutError, aiohttp.ClientError, KeyError, ValueError):
                break
            await asyncio.sleep(0.1)
        await self._restart(fresh=False)

    async def _restore(self) -> None:
        """Put the baseline indices back (through the API; if that fails, on a fresh data
        directory) and make sure a stored async search exists."""
        try:
            await self._put_back()
        except Exception:  # noqa: BLE001 - whatever broke, a fresh data directory is a clean slate
            await self._restart(fresh=True)
            await self._put_back()

    async def _put_back(self) -> None:
        """Every index deleted, the baseline ones created again: a successful write may have
        changed documents without changing the count, so nothing is kept."""
        es = self.es
        names = list(await self.state())
        if names:  # by name: Elasticsearch refuses wildcard deletes (destructive_requires_name)
            await es.indices.delete(index=",".join(names))
        for name, mapping in BASELINE_MAPPINGS.items():
            await es.indices.create(index=name, mappings=mapping)
            ops = [line for doc_id, doc in BASELINE_DOCS[name].items() for line in ({"index": {"_id": doc_id}}, doc)]
            resp = await es.bulk(index=name, operations=ops, refresh=True)
            assert not resp["errors"], resp
        state = await self.state()
        if self.server.baseline is None:
            self.server.baseline = state
        if state != self.server.baseline:
            raise RuntimeError(f"the baseline could not be restored: {state}")
        await self._live_ids()

    async def _live_ids(self) -> None:
        if "node" not in self.live:
            async with self.http.get("/_tasks") as resp:
                self.live["node"] = next(iter((await resp.json())["nodes"]))
        if "async_id" in self.live:
            async with self.http.get(f"/_query/async/{self.live['async_id']}") as resp:
                if resp.status == 200:
                    return
        async with self.http.post("/_query/async", json={"query": "ROW a = 1", "keep_on_completion": True,
                                                         "wait_for_completion_timeout": "5s"}) as resp:
            self.live["async_id"] = (await resp.json())["id"]

    async def state(self) -> State:
        """Every index's mapping and document count (``index_state``), by name."""
        names = sorted((await self.es.indices.get_mapping()).body)
        return {name: await index_state(self.es, name) for name in names}

    # --- one example ------------------------------------------------------------------------

    def fill(self, value: str) -> str:
        out = value.replace("{node}", self.live.get("node", "node")).replace(
            "{async_id}", self.live.get("async_id", "AA"))
        return Raw(out) if isinstance(value, Raw) else out

    async def send(self, request: FuzzRequest) -> tuple[Answer | None, str]:
        started = time.monotonic()
        try:
            async with asyncio.timeout(BOUND_S):
                status, headers, body = await http_exchange(self.server.port, request.method,
                                                            request.url(self.fill), request.headers, request.body)
        except TimeoutError:
            return None, f"no answer within {BOUND_S}s"
        except (OSError, ValueError) as exc:
            return None, f"the connection failed: {type(exc).__name__}: {exc}"
        return Answer(status, headers, body, time.monotonic() - started), ""

    async def check(self, request: FuzzRequest) -> None:
        """Send ``request`` and assert every property of the suite."""
        self.dirty = True
        self.settle = request.template.startswith("/_query")
        offset = self.server.log_offset()
        answer, problem = await self.send(request)
        if currently_in_test_context():  # under @given (the seeds run without)
            note(f"answer: {answer!r} {problem}")
        if answer is None:
            self.suspect = self.settle = True
        assert answer is not None, self.report("answered in time", request, answer, offset, problem)
        assert answer.status < 500, self.report("status < 500", request, answer, offset)
        if answer.status >= 400:
            shape = error_shape_problem(request, answer)
            assert shape is None, self.report("error shape", request, answer, offset, shape)
        if rejected(request, answer):
            try:
                after = await self.state()
            except Exception as exc:  # noqa: BLE001 - an unreadable state is this property's failure
                after = {"unreadable": (repr(exc), -1)}
            assert after == self.server.baseline, self.report(
                "rejected changes nothing", request, answer, offset, _state_diff(self.server.baseline, after))
            clean = True
        elif request.method not in ("GET", "HEAD"):
            unreadable = await self.unreadable()
            assert unreadable == [], self.report("still readable", request, answer, offset, str(unreadable))
            clean = False
        else:
            clean = True
        if request.template == "/_query/async" and answer.status == 200:
            ended = await self.async_query_ends(answer)
            self.suspect = self.suspect or not ended  # a restart ends it sooner than the kill grace
            assert ended, self.report("async query ends", request, answer, offset,
                                      f"still running after {BOUND_S}s")
        try:
            await assert_live(self.http)
        except BaseException:
            self.suspect = True
            raise
        self.dirty = not clean

    async def unreadable(self) -> list[str]:
        """The reads that fail after a change: ``GET /_all``, every mapping, every count,
        and each index by its own name (an index no name can reach is broken too)."""
        failed = []
        paths = ["/_all", "/_mapping", "/_cat/indices?format=json", "/_all/_count"]
        for path in paths:
            status, body = await self._get(path)
            if status >= 500:
                failed.append(f"GET {path}: {status} {body[:300]!r}")
            if path == "/_mapping" and status == 200:
                paths.extend(f"/{quote(name, safe='')}/_count" for name in json.loads(body))
            elif status != 200 and path.endswith("/_count") and path != "/_all/_count":
                failed.append(f"GET {path}: {status} {body[:300]!r} (an index its name cannot reach)")
        return failed

    async def _get(self, path: str) -> tuple[int, bytes]:
        try:
            async with asyncio.timeout(BOUND_S):
                status, _, body = await http_exchange(self.server.port, "GET", path, (), b"")
                return status, body
        except (TimeoutError, OSError, ValueError) as exc:
            return 599, type(exc).__name__.encode()

    async def async_query_ends(self, answer: Answer) -> bool:
        data = answer.json() or {}
        search_id = answer.headers.get("X-Elasticsearch-Async-Id") or data.get("id")
        if not data.get("is_running") or not search_id:
            return True
        try:
            async with asyncio.timeout(BOUND_S + 1):
                async with self.http.get(f"/_query/async/{search_id}",
                                         params={"wait_for_completion_timeout": f"{int(BOUND_S)}s"}) as resp:
                    running = (await resp.json()).get("is_running", False)
        except (TimeoutError, aiohttp.ClientError, ValueError):
            running = True
        async with self.http.delete(f"/_query/async/{search_id}"):
            pass
        return not running

    def report(self, prop: str, request: FuzzRequest, answer: Answer | None, offset: int, detail: str = "") -> str:
        """The failure message (and a line in ``ESQUIRE_FUZZ_FAILURES``): the request as
        sent, the answer, and what the server logged meanwhile."""
        time.sleep(0.05)  # let the server's log line reach the file
        log = self.server.log_since(offset)
        url = request.url(self.fill)
        if FAILURES_FILE:
            with open(FAILURES_FILE, "a") as f:
                f.write(json.dumps({"property": prop, "method": request.method, "template": request.template,
                                    "url": url, "request": repr(request), "answer": repr(answer),
                                    "detail": detail, "log": log}) + "\n")
        if len(url) > 300:
            url = f"{url[:300]}...({len(url)} chars)"
        return (f"property [{prop}] failed for {request.method} {url}\n  {request!r}\n  answer: {answer!r}\n"
                f"  {detail}\n  server log:\n{log}")


def _state_diff(before: State | None, after: State) -> str:
    before = before or {}
    lines = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            lines.append(f"{name}: {str(before.get(name))[:400]} -> {str(after.get(name))[:400]}")
    return "state changed: " + "; ".join(lines)


@pytest.fixture
async def fuzzer(fuzz_server: FuzzServer) -> AsyncIterator[Fuzzer]:
    fuzzer = Fuzzer(fuzz_server)
    await fuzzer.connect()
    yield fuzzer
    await fuzzer.close()


# --- the suite ------------------------------------------------------------------------------------

@functools.cache
def _requests(route: tuple[str, str]) -> st.SearchStrategy[FuzzRequest]:
    return requests_for(*route, ROUTER[route])


@pytest.mark.parametrize("route", sorted(ROUTER), ids=lambda r: f"{r[0]} {r[1]}")
@FUZZ_PROFILE
@given(data=st.data())
async def test_route(fuzzer: Fuzzer, route: tuple[str, str], data: st.DataObject) -> None:
    assert route in ROUTES, f"no strategy for {route}: add it to fuzz_strategies.ROUTES"
    await fuzzer.prepare()
    await fuzzer.check(data.draw(_requests(route), label="request"))


@pytest.mark.parametrize("name", list(SEEDS))
async def test_seed(fuzzer: Fuzzer, name: str) -> None:
    """The known attacks (``SEEDS``), under the same properties as the random requests."""
    await fuzzer.prepare()
    await fuzzer.check(SEEDS[name])


@settings(FUZZ_PROFILE, max_examples=2 * FUZZ_EXAMPLES)
@given(route=st.sampled_from(sorted(ROUTER)), extra=protocol_extras, compress=st.booleans(), data=st.data())
async def test_protocol(fuzzer: Fuzzer, route: tuple[str, str], extra: tuple[str, str], compress: bool,
                        data: st.DataObject) -> None:
    """What the HTTP layer reads before any route: long headers, (wrongly) compressed bodies."""
    await fuzzer.prepare()
    await fuzzer.check(with_protocol(data.draw(_requests(route), label="request"), extra, compress))
