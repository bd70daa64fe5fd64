"""Security (issue 14, part 1): authentication, users, roles, API keys and cluster and path-index
privileges, through the official client with ``basic_auth`` and ``api_key`` against the real
app on a real socket. Only the clock is replaced (API key expiry, the cache's TTL).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import subprocess
import sys
from typing import Any, AsyncIterator, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer
from elasticsearch import (ApiError, AsyncElasticsearch, AuthenticationException, AuthorizationException,
                           BadRequestError, NotFoundError)

from conftest import ROOT, running
from service import keys
from service.api.actions import ACTIONS, OWN
from service.app import create_app
from service.core.background import Limits
from service.core.tasks import CALLER
from service.query.esql import EsqlJob
from service.query.options import QueryOptions
from service.security import passwords
from service.security.authn import AuthCache, Credentials
from service.security.principal import Principal
from service.security.roles import Permission
from service.settings import Settings, replace

pytestmark = pytest.mark.filterwarnings("ignore::elasticsearch.exceptions.GeneralAvailabilityWarning")  # tasks API

PASSWORD = "elastic-secret-1"
CHALLENGES = ['Basic realm="security", charset="UTF-8"', "ApiKey"]


@pytest.fixture
def secured_settings(settings: Settings) -> Settings:
    return replace(settings, security=True, bootstrap_password=PASSWORD)


@pytest.fixture
async def secured(secured_settings: Settings) -> AsyncIterator[TestServer]:
    async with running(secured_settings) as server:
        yield server


@pytest.fixture
async def connect(secured: TestServer) -> AsyncIterator[Callable[..., AsyncElasticsearch]]:
    """``connect(basic_auth=...)`` / ``connect(api_key=...)`` / ``connect()``: clients of the
    secured server, closed at the end."""
    made: list[AsyncElasticsearch] = []

    def make(**auth: Any) -> AsyncElasticsearch:
        client = AsyncElasticsearch(str(secured.make_url("/")), request_timeout=30, **auth)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
def admin(connect: Callable[..., AsyncElasticsearch]) -> AsyncElasticsearch:
    return connect(basic_auth=("elastic", PASSWORD))


@pytest.fixture
async def raw(aiohttp_client, secured: TestServer) -> TestClient:
    return await aiohttp_client(secured)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def user_with(admin: AsyncElasticsearch, name: str, roles: list[str], password: str = "password-1") -> None:
    await admin.security.put_user(username=name, password=password, roles=roles)


# --- authentication --------------------------------------------------------------------------

async def test_no_credentials_is_elasticsearchs_401_with_both_challenges(raw: TestClient) -> None:
    resp = await raw.get("/?pretty")
    assert resp.status == 401
    assert resp.headers.getall("WWW-Authenticate") == CHALLENGES
    assert resp.headers["X-Elastic-Product"] == "Elasticsearch"
    error = {"type": "security_exception", "reason": "missing authentication credentials for REST request [/?pretty]",
             "header": {"WWW-Authenticate": CHALLENGES}}
    assert await resp.json() == {"error": {"root_cause": [error], **error}, "status": 401}


async def test_a_scheme_es_does_not_read_counts_as_no_credentials(raw: TestClient) -> None:
    resp = await raw.get("/_tasks", headers={"Authorization": "Bearer abc"})
    assert resp.status == 401
    assert (await resp.json())["error"]["reason"] == "missing authentication credentials for REST request [/_tasks]"


async def test_wrong_password_and_unknown_user_are_refused_alike(raw: TestClient) -> None:
    for user in ("elastic", "nobody"):
        resp = await raw.get("/_cluster/settings", headers=basic(user, "wrong-password"))
        assert resp.status == 401
        assert resp.headers.getall("WWW-Authenticate") == CHALLENGES
        assert (await resp.json())["error"]["reason"] == \
            f"unable to authenticate user [{user}] for REST request [/_cluster/settings]"


async def test_malformed_basic_header(raw: TestClient) -> None:
    resp = await raw.get("/", headers={"Authorization": "Basic !!!not-base64"})
    assert resp.status == 401
    assert (await resp.json())["error"]["reason"] == "invalid basic authentication header encoding"
    resp = await raw.get("/", headers={"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()})
    assert (await resp.json())["error"]["reason"] == "invalid basic authentication header value"


async def test_elastic_authenticates_as_the_reserved_superuser(admin: AsyncElasticsearch) -> None:
    assert (await admin.info())["tagline"] == "You Know, for Search"
    assert await admin.ping()
    me = (await admin.security.authenticate()).body
    assert me == {"username": "elastic", "roles": ["superuser"], "full_name": None, "email": None,
                  "metadata": {"_reserved": True}, "enabled": True,
                  "authentication_realm": {"name": "reserved", "type": "reserved"},
                  "lookup_realm": {"name": "reserved", "type": "reserved"}, "authentication_type": "realm"}


async def test_a_client_without_credentials_cannot_ping(connect: Callable[..., AsyncElasticsearch]) -> None:
    assert not await connect().ping()
    with pytest.raises(AuthenticationException):
        await connect(basic_auth=("elastic", "not-it")).info()


async def test_routing_errors_come_before_authentication(raw: TestClient) -> None:
    resp = await raw.get("/_nothing/here/at/all")
    assert resp.status == 400
    assert "no handler found" in (await resp.json())["error"]


async def test_the_bootstrap_password_is_not_rotated_by_a_restart(secured_settings: Settings) -> None:
    for password in (PASSWORD, "another-password"):
        async with running(replace(secured_settings, bootstrap_password=password)) as server, \
                AsyncElasticsearch(str(server.make_url("/")), basic_auth=("elastic", PASSWORD)) as es:
            assert (await es.security.authenticate())["username"] == "elastic"


# --- users -----------------------------------------------------------------------------------

async def test_users_lifecycle(admin: AsyncElasticsearch, connect: Callable[..., AsyncElasticsearch]) -> None:
    assert (await admin.security.put_user(username="jack", password="jack-pass", roles=["viewer"],
                                          full_name="Jack Nicholson", email="jack@example.com",
                                          metadata={"team": "ops"})).body == {"created": True}
    assert (await admin.security.put_user(username="jack", roles=["viewer", "monitoring_user"])).body == \
        {"created": False}  # no password: the old one is kept
    got = (await admin.security.get_user(username="jack")).body
    assert got == {"jack": {"username": "jack", "roles": ["viewer", "monitoring_user"], "full_name": None,
                            "email": None, "metadata": {}, "enabled": True}}
    jack = connect(basic_auth=("jack", "jack-pass"))
    me = (await jack.security.authenticate()).body
    assert (me["username"], me["roles"], me["authentication_realm"]) == \
        ("jack", ["viewer", "monitoring_user"], {"name": "default_native", "type": "native"})
    everyone = (await admin.security.get_user()).body
    assert set(everyone) == {"elastic", "jack"}
    assert (await admin.security.delete_user(username="jack")).body == {"found": True}
    with pytest.raises(AuthenticationException):
        await jack.security.authenticate()
    with pytest.raises(NotFoundError) as missing:
        await admin.security.delete_user(username="jack")
    assert missing.value.body == {"found": False}
    with pytest.raises(NotFoundError) as missing:
        await admin.security.get_user(username="jack")
    assert missing.value.body == {}


@pytest.mark.parametrize("body, status, kind, reason", [
    ({"password": "short", "roles": []}, 400, "validation_exception",
     "Validation Failed: 1: passwords must be at least [6] characters long;"),
    ({"password": "long-enough"}, 400, "action_request_validation_exception",
     "Validation Failed: 1: roles are missing;"),
    ({"roles": []}, 400, "validation_exception",
     "Validation Failed: 1: password must be specified unless you are updating an existing user;"),
    ({"password": "long-enough", "roles": [], "colour": "red"}, 400, "parse_exception",
     "failed to parse add user request. unexpected field [colour]"),
    ({"password": "long-enough", "roles": "viewer", "enabled": "yes"}, 400, "parse_exception",
     "failed to parse add user request. expected field [enabled] to be a boolean"),
])
async def test_a_bad_user_is_refused_and_nothing_changes(admin: AsyncElasticsearch, body: dict[str, Any], status: int,
                                                         kind: str, reason: str) -> None:
    with pytest.raises(ApiError) as err:
        await admin.perform_request("PUT", "/_security/user/newbie", body=body,
                                    headers={"content-type": "application/json"})
    assert (err.value.meta.status, err.value.body["error"]["type"], err.value.body["error"]["reason"]) == \
        (status, kind, reason)
    assert set((await admin.security.get_user()).body) == {"elastic"}


async def test_reserved_and_invalid_user_names(admin: AsyncElasticsearch) -> None:
    with pytest.raises(BadRequestError) as err:
        await admin.security.put_user(username="elastic", password="something", roles=[])
    assert err.value.body["error"]["reason"] == \
        "Validation Failed: 1: Username [elastic] is reserved and may not be used.;"
    with pytest.raises(BadRequestError) as err:
        await admin.security.put_user(username=" padded", password="something", roles=[])
    assert err.value.body["error"]["reason"].startswith("Validation Failed: 1: User names must be at least 1 and no "
                                                        "more than 1024 characters.")
    with pytest.raises(BadRequestError) as err:
        await admin.security.delete_user(username="elastic")
    assert err.value.body["error"]["reason"] == "user [elastic] is reserved and cannot be deleted"
    assert (await admin.security.authenticate())["username"] == "elastic"


async def test_password_change_takes_effect_at_once(admin: AsyncElasticsearch,
                                                    connect: Callable[..., AsyncElasticsearch]) -> None:
    await user_with(admin, "ann", ["viewer"], "first-pass")
    old = connect(basic_auth=("ann", "first-pass"))
    assert (await old.security.authenticate())["username"] == "ann"  # now cached
    assert (await admin.security.change_password(username="ann", password="second-pass")).body == {}
    with pytest.raises(AuthenticationException):
        await old.security.authenticate()
    new = connect(basic_auth=("ann", "second-pass"))
    assert (await new.security.authenticate())["username"] == "ann"
    # one's own password, without manage_security
    assert (await new.security.change_password(password="third-pass")).body == {}
    third = connect(basic_auth=("ann", "third-pass"))
    assert (await third.security.authenticate())["username"] == "ann"
    with pytest.raises(AuthorizationException):
        await third.security.change_password(username="elastic", password="hijacked")
    with pytest.raises(BadRequestError) as err:
        await admin.security.change_password(username="ghost", password="whatever")
    assert err.value.body["error"] == {"root_cause": [{"type": "validation_exception", "reason":
                                       "Validation Failed: 1: user must exist in order to change password;"}],
                                       "type": "validation_exception",
                                       "reason": "Validation Failed: 1: user must exist in order to change password;"}


async def test_a_disabled_user_cannot_authenticate(admin: AsyncElasticsearch,
                                                   connect: Callable[..., AsyncElasticsearch]) -> None:
    await user_with(admin, "off", ["viewer"])
    assert (await connect(basic_auth=("off", "password-1")).security.authenticate())["username"] == "off"
    await admin.security.put_user(username="off", roles=["viewer"], enabled=False)
    with pytest.raises(AuthenticationException):
        await connect(basic_auth=("off", "password-1")).security.authenticate()


# --- roles -----------------------------------------------------------------------------------

async def test_roles_lifecycle(admin: AsyncElasticsearch) -> None:
    body = {"cluster": ["monitor"], "indices": [{"names": ["logs-*"], "privileges": ["read"]}],
            "metadata": {"version": 1}}
    assert (await admin.security.put_role(name="reader", **body)).body == {"role": {"created": True}}
    assert (await admin.security.put_role(name="reader", **body)).body == {"role": {"created": False}}
    assert (await admin.security.get_role(name="reader")).body == {"reader": {
        "cluster": ["monitor"], "indices": [{"names": ["logs-*"], "privileges": ["read"],
                                             "allow_restricted_indices": False}],
        "applications": [], "run_as": [], "metadata": {"version": 1}, "transient_metadata": {"enabled": True}}}
    every = (await admin.security.get_role()).body
    assert {"superuser", "monitoring_user", "viewer", "editor", "reader"} <= set(every)
    assert every["superuser"]["cluster"] == ["all"] and every["superuser"]["metadata"] == {"_reserved": True}
    assert (await admin.security.delete_role(name="reader")).body == {"found": True}
    with pytest.raises(NotFoundError) as err:
        await admin.security.delete_role(name="reader")
    assert err.value.body == {"found": False}
    with pytest.raises(NotFoundError) as err:
        await admin.security.get_role(name="reader")
    assert err.value.body == {}


@pytest.mark.parametrize("body, kind, reason", [
    ({"cluster": ["monitr"]}, "action_request_validation_exception",
     "Validation Failed: 1: unknown cluster privilege [monitr]. a privilege must be either one of the predefined "
     "cluster privilege names ["),
    ({"indices": [{"names": ["x"], "privileges": ["reed"]}]}, "action_request_validation_exception",
     "Validation Failed: 1: unknown index privilege [reed]. a privilege must be either one of the predefined fixed "
     "indices privileges ["),
    ({"indices": [{"privileges": ["read"]}]}, "parse_exception",
     "failed to parse indices privileges for role [bad]. missing required [names] field"),
    ({"cluster": ["monitor"], "colour": "red"}, "parse_exception",
     "failed to parse role [bad]. unexpected field [colour]"),
])
async def test_a_bad_role_is_refused_and_nothing_changes(admin: AsyncElasticsearch, body: dict[str, Any], kind: str,
                                                         reason: str) -> None:
    with pytest.raises(BadRequestError) as err:
        await admin.perform_request("PUT", "/_security/role/bad", body=body,
                                    headers={"content-type": "application/json"})
    assert err.value.body["error"]["type"] == kind
    assert err.value.body["error"]["reason"].startswith(reason)
    with pytest.raises(NotFoundError):
        await admin.security.get_role(name="bad")


async def test_built_in_roles_are_reserved(admin: AsyncElasticsearch) -> None:
    with pytest.raises(BadRequestError) as err:
        await admin.security.put_role(name="superuser", cluster=["none"])
    assert err.value.body["error"]["reason"] == \
        "Validation Failed: 1: Role [superuser] is reserved and may not be used.;"
    with pytest.raises(BadRequestError) as err:
        await admin.security.delete_role(name="viewer")
    assert err.value.body["error"]["reason"] == "role [viewer] is reserved and cannot be deleted"


async def test_a_role_change_reaches_cached_principals(admin: AsyncElasticsearch,
                                                       connect: Callable[..., AsyncElasticsearch]) -> None:
    await admin.security.put_role(name="watcher", cluster=["monitor"])
    await user_with(admin, "wes", ["watcher"])
    wes = connect(basic_auth=("wes", "password-1"))
    await wes.tasks.list()
    await admin.security.put_role(name="watcher", cluster=[])
    with pytest.raises(AuthorizationException):
        await wes.tasks.list()


# --- cluster privileges ------------------------------------------------------------------------

async def test_the_task_api_needs_monitor_and_cancel_needs_manage(admin: AsyncElasticsearch,
                                                                  connect: Callable[..., AsyncElasticsearch]) -> None:
    await admin.security.put_role(name="mon", cluster=["monitor"])
    await user_with(admin, "nobody", [])
    await user_with(admin, "mona", ["mon"])
    nobody, mona = connect(basic_auth=("nobody", "password-1")), connect(basic_auth=("mona", "password-1"))
    with pytest.raises(AuthorizationException) as err:
        await nobody.tasks.list()
    assert err.value.body["error"] == {
        "root_cause": [{"type": "security_exception", "reason": "action [cluster:monitor/tasks/lists] is unauthorized "
                        "for user [nobody] with effective roles [], this action is granted by the cluster privileges "
                        "[monitor,manage,all]"}],
        "type": "security_exception", "reason": "action [cluster:monitor/tasks/lists] is unauthorized for user "
        "[nobody] with effective roles [], this action is granted by the cluster privileges [monitor,manage,all]"}
    assert err.value.meta.status == 403
    assert "nodes" in (await mona.tasks.list()).body
    with pytest.raises(NotFoundError):  # authorized: the task is simply not there
        await mona.tasks.get(task_id="x:1")
    with pytest.raises(AuthorizationException) as err:
        await mona.tasks.cancel(task_id="x:1")
    assert err.value.body["error"]["reason"] == (
        "action [cluster:admin/tasks/cancel] is unauthorized for user [mona] with effective roles [mon], this action "
        "is granted by the cluster privileges [cancel_task,manage,all]")
    await admin.security.put_role(name="mgr", cluster=["manage"])
    await user_with(admin, "mgr", ["mgr"])
    assert (await connect(basic_auth=("mgr", "password-1")).tasks.cancel(actions="nothing*")).body["nodes"] == {}


async def test_eql_status_is_for_monitoring_user_or_monitor(admin: AsyncElasticsearch,
                                                            connect: Callable[..., AsyncElasticsearch]) -> None:
    await user_with(admin, "moni", ["monitoring_user"])
    await user_with(admin, "vera", ["viewer"])
    with pytest.raises(BadRequestError):  # allowed: the handler finds the id malformed
        await connect(basic_auth=("moni", "password-1")).eql.get_status(id="FmNoSuchSearch")
    with pytest.raises(AuthorizationException) as err:
        await connect(basic_auth=("vera", "password-1")).eql.get_status(id="FmNoSuchSearch")
    assert err.value.body["error"]["reason"].startswith(
        "action [cluster:monitor/eql/async/status] is unauthorized for user [vera] with effective roles [viewer]")


async def test_cluster_settings_and_security_apis_need_their_privileges(
        admin: AsyncElasticsearch, connect: Callable[..., AsyncElasticsearch]) -> None:
    await admin.security.put_role(name="mon", cluster=["monitor"])
    await user_with(admin, "mona", ["mon", "ghost_role"])
    mona = connect(basic_auth=("mona", "password-1"))
    assert "persistent" in (await mona.cluster.get_settings()).body
    with pytest.raises(AuthorizationException) as err:
        await mona.cluster.put_settings(persistent={"sme.core.async_requests.max_tasks_per_user": 5})
    assert err.value.body["error"]["reason"] == (
        "action [cluster:admin/settings/update] is unauthorized for user [mona] with effective roles [mon] (assigned "
        "roles [ghost_role] were not found), this action is granted by the cluster privileges [manage,all]")
    with pytest.raises(AuthorizationException) as err:
        await mona.security.put_user(username="eve", password="password-1", roles=["superuser"])
    assert err.value.body["error"]["reason"].endswith("this action is granted by the cluster privileges "
                                                      "[manage_security,all]")
    with pytest.raises(AuthorizationException):
        await mona.security.get_user()
    with pytest.raises(NotFoundError):
        await admin.security.get_user(username="eve")
    # manage alone does not reach the security APIs
    await admin.security.put_role(name="mgr", cluster=["manage"])
    await user_with(admin, "max", ["mgr"])
    with pytest.raises(AuthorizationException):
        await connect(basic_auth=("max", "password-1")).security.put_role(name="x", cluster=["all"])


# --- index privileges in the path ----------------------------------------------------------------

async def test_index_privileges_of_the_path(admin: AsyncElasticsearch,
                                            connect: Callable[..., AsyncElasticsearch]) -> None:
    await admin.indices.create(index="logs-a")
    await admin.index(index="logs-a", id="1", document={"msg": "hi"}, refresh=True)
    await admin.indices.create(index="secret")
    await admin.security.put_role(name="logs_rw", indices=[{"names": ["logs-*"], "privileges": ["read", "write"]}])
    await user_with(admin, "lou", ["logs_rw"])
    lou = connect(basic_auth=("lou", "password-1"))
    assert (await lou.get(index="logs-a", id="1"))["_source"] == {"msg": "hi"}
    await lou.index(index="logs-a", id="2", document={"msg": "there"})
    assert (await lou.count(index="logs-*"))["count"] >= 1
    with pytest.raises(AuthorizationException) as err:
        await lou.get(index="secret", id="1")
    assert err.value.body["error"]["reason"] == (
        "action [indices:data/read/get] is unauthorized for user [lou] with effective roles [logs_rw] on indices "
        "[secret], this action is granted by the index privileges [read,all]")
    with pytest.raises(AuthorizationException):
        await lou.indices.create(index="logs-b")  # write is not create_index
    with pytest.raises(AuthorizationException) as err:
        await lou.index(index="logs-b", document={"msg": "new index"})  # nor does it create one by a write
    assert err.value.body["error"]["reason"] == (
        "action [indices:admin/auto_create] is unauthorized for user [lou] with effective roles [logs_rw] on indices "
        "[logs-b], this action is granted by the index privileges [auto_configure,create_index,manage,all]")
    assert not await admin.indices.exists(index="logs-b")
    with pytest.raises(AuthorizationException):
        await lou.indices.delete(index="logs-a")
    with pytest.raises(AuthorizationException):
        await lou.count(index="*")  # a pattern wider than the grant
    with pytest.raises(AuthorizationException):
        await lou.count(index="logs-a,secret")
    assert await admin.indices.exists(index="logs-a")


async def _two_indices(admin: AsyncElasticsearch, connect: Callable[..., AsyncElasticsearch]) -> AsyncElasticsearch:
    """``logs`` (2 events) and ``secret`` (3), and lola, who may read ``logs`` only."""
    for index, n in (("logs", 2), ("secret", 3)):
        ops: list[Any] = []
        for i in range(n):
            ops += [{"index": {"_index": index}},
                    {"@timestamp": f"2024-05-01T00:00:0{i}Z", "event": {"category": "process"}, "n": i}]
        await admin.bulk(operations=ops, refresh=True)
    await admin.security.put_role(name="logs_only", indices=[{"names": ["logs", "log*"], "privileges": ["read"]}])
    await user_with(admin, "lola", ["logs_only"])
    return connect(basic_auth=("lola", "password-1"))


async def test_query_sources_resolve_among_the_readable_indices(
        admin: AsyncElasticsearch, connect: Callable[..., AsyncElasticsearch], raw: TestClient) -> None:
    """ES|QL, EQL and SML alike: a wildcard or ``*`` skips what the user may not read, as
    Elasticsearch resolves an expression for its user; naming such an index is a 403 that
    names it; a user who may read no index is refused before the query is looked at."""
    lola = await _two_indices(admin, connect)
    for query in ("FROM * | STATS n = COUNT(*) | LIMIT 1", "FROM logs,secret* | STATS n = COUNT(*) | LIMIT 1",
                  "FROM l*,s* | STATS n = COUNT(*) | LIMIT 1"):
        assert (await lola.esql.query(query=query)).body["values"] == [[2]], query
    assert (await admin.esql.query(query="FROM * | STATS n = COUNT(*) | LIMIT 1")).body["values"] == [[5]]
    for query in ("FROM secret | LIMIT 1", "FROM logs,secret | LIMIT 1"):
        with pytest.raises(AuthorizationException) as err:
            await lola.esql.query(query=query)
        assert err.value.body["error"]["reason"] == (
            "action [indices:data/read/esql] is unauthorized for user [lola] with effective roles [logs_only] on "
            "indices [secret], this action is granted by the index privileges [read_cross_cluster,read,all]")
    with pytest.raises(BadRequestError) as bad:  # nothing readable matches: as if nothing existed
        await lola.esql.query(query="FROM secr* | LIMIT 1")
    assert "Unknown index [secr*]" in bad.value.body["error"]["reason"]
    with pytest.raises(AuthorizationException):
        await lola.esql.async_query(query="FROM secret | LIMIT 1", wait_for_completion_timeout="0s")

    assert len((await lola.eql.search(index="*", query="process where true")).body["hits"]["events"]) == 2
    with pytest.raises(AuthorizationException) as err:
        await lola.eql.search(index="logs,secret", query="process where true")
    assert "on indices [secret]" in err.value.body["error"]["reason"]

    lola_auth = basic("lola", "password-1")
    for query in ("source logs | append [source secret]", "source logs | join n [source secret]",
                  "source logs | lookup secret n OUTPUT n AS m", "inputlookup secret"):
        resp = await raw.post("/_sme/async_requests/request", headers=lola_auth, json={
            "query": query, "dtStart": "2024-05-01T00:00:00Z", "dtEnd": "2024-05-02T00:00:00Z"})
        assert resp.status == 403, (query, await resp.text())
        assert "on indices [secret]" in (await resp.json())["error"]["reason"]
    for query, status in (("source * qsize=100 | stats count", 200), ("source secret | stats count", 403)):
        resp = await raw.post("/_sme/async_requests/request", headers=lola_auth, json={
            "query": query, "dtStart": "2024-05-01T00:00:00Z", "dtEnd": "2024-05-02T00:00:00Z"})
        assert resp.status == status, await resp.text()
        if status == 200:
            task_id = (await resp.json())["id"]
            for _ in range(200):
                page = await (await raw.get(f"/_sme/async_requests/response/{task_id}", headers=lola_auth)).json()
                if not page.get("preview") and page.get("total") is not None and \
                        (await (await raw.get(f"/_sme/async_requests/status/{task_id}", headers=lola_auth)).json()
                         )["status"] == "COMPLETED":
                    break
                await asyncio.sleep(0.05)
            page = await (await raw.get(f"/_sme/async_requests/response/{task_id}", headers=lola_auth)).json()
            assert page["events"] == [{"count": 2}]

    await user_with(admin, "nobody", [])
    with pytest.raises(AuthorizationException) as err:
        await connect(basic_auth=("nobody", "password-1")).esql.query(query="FROM * | LIMIT 1")
    assert err.value.body["error"]["reason"].startswith("action [indices:data/read/esql] is unauthorized for user "
                                                        "[nobody]")


async def test_index_less_listings_show_only_the_readable_indices(
        admin: AsyncElasticsearch, connect: Callable[..., AsyncElasticsearch]) -> None:
    lola = await _two_indices(admin, connect)
    await admin.security.put_role(name="logs_only", indices=[
        {"names": ["logs"], "privileges": ["read", "view_index_metadata", "monitor"]}])
    assert set((await lola.indices.get_mapping()).body) == {"logs"}
    assert set((await admin.indices.get_mapping()).body) >= {"logs", "secret"}
    assert [row["index"] for row in (await lola.cat.indices(format="json")).body] == ["logs"]
    with pytest.raises(AuthorizationException):
        await connect(basic_auth=("lola", "password-1")).indices.get_mapping(index="secret")


async def test_async_results_and_tasks_are_their_submitters(
        admin: AsyncElasticsearch, connect: Callable[..., AsyncElasticsearch], secured: TestServer) -> None:
    """Async ES|QL and EQL results (get, status, stop, delete) and running tasks (``_tasks``
    list, get, cancel) are shown only to the user that submitted them (its API keys too), and
    to a superuser; another user, however privileged otherwise, finds nothing there (404)."""
    lola = await _two_indices(admin, connect)
    await admin.security.put_role(name="ops", cluster=["monitor", "manage", "manage_own_api_key"],
                                  indices=[{"names": ["logs"], "privileges": ["read"]}])
    await admin.security.put_user(username="lola", password="password-1", roles=["logs_only", "ops"])
    await user_with(admin, "lena", ["ops"])
    lena = connect(basic_auth=("lena", "password-1"))
    key = (await lola.security.create_api_key(name="lolas")).body["encoded"]
    lolas_key = connect(api_key=key)

    esql = (await lola.esql.async_query(query="FROM logs | LIMIT 5", keep_on_completion=True,
                                        wait_for_completion_timeout="5s")).body["id"]
    eql = (await lola.eql.search(index="logs", query="process where true", keep_on_completion=True,
                                 wait_for_completion_timeout="5s")).body["id"]
    for call in (lambda: lena.esql.async_query_get(id=esql), lambda: lena.esql.async_query_stop(id=esql),
                 lambda: lena.esql.async_query_delete(id=esql), lambda: lena.eql.get(id=eql),
                 lambda: lena.eql.get_status(id=eql), lambda: lena.eql.delete(id=eql)):
        with pytest.raises(NotFoundError):
            await call()
    for client in (lola, lolas_key, admin):
        assert len((await client.esql.async_query_get(id=esql)).body["values"]) == 2
        assert len((await client.eql.get(id=eql)).body["hits"]["events"]) == 2

    # a running task of lola's (registered as her request would register it)
    manager = secured.app[keys.TASKS]
    token = CALLER.set("lola")
    try:
        task = manager.register("indices:data/read/esql", "FROM logs", {})
    finally:
        CALLER.reset(token)
    try:
        listed = (await lena.tasks.list(group_by="none")).body["tasks"]
        assert task.task_id not in {t["node"] + ":" + str(t["id"]) for t in listed}
        with pytest.raises(NotFoundError):
            await lena.tasks.get(task_id=task.task_id)
        refused = (await lena.tasks.cancel(task_id=task.task_id)).body
        assert refused["node_failures"][0]["caused_by"]["type"] == "resource_not_found_exception"
        assert not task.cancelled
        assert (await lena.tasks.cancel(actions="indices:data/read/esql")).body["nodes"] == {}
        assert not task.cancelled
        assert (await lola.tasks.get(task_id=task.task_id)).body["task"]["description"] == "FROM logs"
        assert (await admin.tasks.get(task_id=task.task_id)).body["task"]["description"] == "FROM logs"
        await lola.tasks.cancel(task_id=task.task_id)
        assert task.cancelled
    finally:
        manager.unregister(task)
    await lola.esql.async_query_delete(id=esql)
    await lolas_key.eql.delete(id=eql)
    with pytest.raises(NotFoundError):
        await admin.eql.get(id=eql)


async def test_an_owner_survives_a_restart(secured_settings: Settings) -> None:
    """The owner is stored with the result: after a restart another user still finds nothing."""
    async with running(secured_settings) as server, \
            AsyncElasticsearch(str(server.make_url("/")), basic_auth=("elastic", PASSWORD)) as admin:
        await admin.index(index="logs", document={"n": 1}, refresh=True)
        await admin.security.put_role(name="r", indices=[{"names": ["logs"], "privileges": ["read"]}])
        for name in ("lola", "lena"):
            await user_with(admin, name, ["r"])
        async with AsyncElasticsearch(str(server.make_url("/")), basic_auth=("lola", "password-1")) as lola:
            search = (await lola.esql.async_query(query="FROM logs | LIMIT 1", keep_on_completion=True,
                                                  wait_for_completion_timeout="5s")).body["id"]
    async with running(secured_settings) as server:
        url = str(server.make_url("/"))
        async with AsyncElasticsearch(url, basic_auth=("lena", "password-1")) as lena, \
                AsyncElasticsearch(url, basic_auth=("lola", "password-1")) as lola:
            with pytest.raises(NotFoundError):
                await lena.esql.async_query_get(id=search)
            assert (await lola.esql.async_query_get(id=search)).body["values"] == [[1]]


# --- API keys --------------------------------------------------------------------------------

async def test_api_keys_authenticate_through_the_client(admin: AsyncElasticsearch,
                                                        connect: Callable[..., AsyncElasticsearch]) -> None:
    created = (await admin.security.create_api_key(name="ci", metadata={"purpose": "tests"})).body
    assert set(created) == {"id", "name", "api_key", "encoded"} and created["name"] == "ci"
    assert base64.b64decode(created["encoded"]).decode() == f"{created['id']}:{created['api_key']}"
    for client in (connect(api_key=created["encoded"]), connect(api_key=(created["id"], created["api_key"]))):
        me = (await client.security.authenticate()).body
        assert (me["username"], me["authentication_type"], me["api_key"]) == \
            ("elastic", "api_key", {"id": created["id"], "name": "ci"})
        assert me["authentication_realm"] == {"name": "_es_api_key", "type": "_es_api_key"}
        await client.indices.create(index=f"made-by-key-{len(me['api_key']['id'])}-{id(client) % 1000}")
    listed = (await admin.security.get_api_key(id=created["id"])).body["api_keys"]
    assert [(k["id"], k["name"], k["username"], k["invalidated"], k["metadata"]) for k in listed] == \
        [(created["id"], "ci", "elastic", False, {"purpose": "tests"})]
    assert "api_key" not in listed[0] and "key_hash" not in listed[0]
    limited = (await admin.security.get_api_key(id=created["id"], with_limited_by=True)).body["api_keys"][0]
    assert list(limited["limited_by"][0]) == ["superuser"]
    assert limited["limited_by"][0]["superuser"]["cluster"] == ["all"]


async def test_a_key_is_limited_by_its_creator(admin: AsyncElasticsearch,
                                               connect: Callable[..., AsyncElasticsearch]) -> None:
    await admin.security.put_role(name="keymaker", cluster=["manage_own_api_key", "monitor"])
    await user_with(admin, "kim", ["keymaker"])
    kim = connect(basic_auth=("kim", "password-1"))
    # asks for everything; gets at most what kim has
    key = (await kim.security.create_api_key(name="greedy", role_descriptors={
        "everything": {"cluster": ["all"], "indices": [{"names": ["*"], "privileges": ["all"]}]}})).body
    greedy = connect(api_key=key["encoded"])
    assert "nodes" in (await greedy.tasks.list()).body
    with pytest.raises(AuthorizationException) as err:
        await greedy.cluster.put_settings(persistent={"sme.core.async_requests.max_tasks_per_user": 5})
    assert err.value.body["error"]["reason"] == (
        f"action [cluster:admin/settings/update] is unauthorized for API key id [{key['id']}] of user [kim], "
        "this action is granted by the cluster privileges [manage,all]")
    with pytest.raises(AuthorizationException):
        await greedy.indices.create(index="nope")
    # narrower than kim: only what both allow
    narrow = (await kim.security.create_api_key(name="narrow", role_descriptors={"none": {"cluster": []}})).body
    with pytest.raises(AuthorizationException):
        await connect(api_key=narrow["encoded"]).tasks.list()


async def test_manage_own_api_key_sees_and_invalidates_only_its_own(
        admin: AsyncElasticsearch, connect: Callable[..., AsyncElasticsearch]) -> None:
    await admin.security.put_role(name="keymaker", cluster=["manage_own_api_key"])
    await user_with(admin, "kim", ["keymaker"])
    kim = connect(basic_auth=("kim", "password-1"))
    mine = (await kim.security.create_api_key(name="mine")).body
    theirs = (await admin.security.create_api_key(name="theirs")).body
    assert [k["name"] for k in (await kim.security.get_api_key(owner=True)).body["api_keys"]] == ["mine"]
    with pytest.raises(AuthorizationException):
        await kim.security.get_api_key()  # everyone's
    with pytest.raises(AuthorizationException):
        await kim.security.invalidate_api_key(ids=[theirs["id"]])
    assert [k["name"] for k in (await admin.security.get_api_key()).body["api_keys"]] == ["mine", "theirs"]
    done = (await kim.security.invalidate_api_key(ids=[mine["id"]], owner=True)).body
    assert done == {"invalidated_api_keys": [mine["id"]], "previously_invalidated_api_keys": [], "error_count": 0}
    again = (await kim.security.invalidate_api_key(ids=[mine["id"]], owner=True)).body
    assert again["previously_invalidated_api_keys"] == [mine["id"]]
    assert (await connect(api_key=theirs["encoded"]).security.authenticate())["username"] == "elastic"


async def test_an_invalidated_key_is_refused_at_once(admin: AsyncElasticsearch,
                                                     connect: Callable[..., AsyncElasticsearch]) -> None:
    key = (await admin.security.create_api_key(name="soon-gone")).body
    client = connect(api_key=key["encoded"])
    assert (await client.security.authenticate())["api_key"]["name"] == "soon-gone"  # cached now
    await admin.security.invalidate_api_key(ids=[key["id"]])
    with pytest.raises(AuthenticationException) as err:
        await client.security.authenticate()
    assert err.value.body["error"]["reason"] == ("unable to authenticate with provided credentials and anonymous "
                                                 "access is not allowed for this request")
    assert err.value.body["error"]["additional_unsuccessful_credentials"] == \
        f"API key: api key [{key['id']}] has been invalidated"


async def test_an_expired_key_is_refused(admin: AsyncElasticsearch, secured: TestServer,
                                         connect: Callable[..., AsyncElasticsearch]) -> None:
    security = secured.app[keys.SECURITY]
    now = [security.clock()]
    security.clock = lambda: now[0]
    key = (await admin.security.create_api_key(name="brief", expiration="1h")).body
    assert key["expiration"] == int(now[0] * 1000) + 3_600_000
    client = connect(api_key=key["encoded"])
    assert (await client.security.authenticate())["api_key"]["name"] == "brief"
    now[0] += 3601
    with pytest.raises(AuthenticationException) as err:
        await client.security.authenticate()
    assert err.value.body["error"]["additional_unsuccessful_credentials"] == "API key: api key is expired"
    assert [k["expiration"] for k in (await admin.security.get_api_key(name="brief")).body["api_keys"]] == \
        [key["expiration"]]
    assert (await admin.security.get_api_key(name="brief", active_only=True)).body == {"api_keys": []}


async def test_unknown_and_wrong_keys(raw: TestClient) -> None:
    for value, detail in ((base64.b64encode(b"nokey:secret").decode(), "API key: unable to find apikey with id nokey"),
                          ("%%%", "API key: invalid ApiKey value")):
        resp = await raw.get("/", headers={"Authorization": f"ApiKey {value}"})
        assert resp.status == 401
        assert (await resp.json())["error"]["additional_unsuccessful_credentials"] == detail


async def test_bad_api_key_requests_change_nothing(admin: AsyncElasticsearch) -> None:
    for body, reason in (({}, "Validation Failed: 1: api key name is required;"),
                         ({"name": "_hidden"}, "Validation Failed: 1: api key name may not begin with an underscore;"),
                         ({"name": "k", "expiration": "soon"}, "failed to parse setting [expiration] with value [soon] "
                                                               "as a time value: unit is missing or unrecognized"),
                         ({"name": "k", "role_descriptors": {"r": {"cluster": ["bogus"]}}},
                          "Validation Failed: 1: unknown cluster privilege [bogus].")):
        with pytest.raises(BadRequestError) as err:
            await admin.perform_request("POST", "/_security/api_key", body=body,
                                        headers={"content-type": "application/json"})
        assert err.value.body["error"]["reason"].startswith(reason)
    assert (await admin.security.get_api_key()).body == {"api_keys": []}
    with pytest.raises(BadRequestError) as err:
        await admin.security.invalidate_api_key()
    assert "One of [api key id(s), api key name, username, realm name] must be specified" in \
        err.value.body["error"]["reason"]


async def test_a_key_cannot_mint_a_key_with_privileges(admin: AsyncElasticsearch,
                                                       connect: Callable[..., AsyncElasticsearch]) -> None:
    parent = connect(api_key=(await admin.security.create_api_key(name="parent")).body["encoded"])
    for descriptors in (None, {}, {"some": {"cluster": ["monitor"]}}):
        with pytest.raises(BadRequestError) as err:
            await parent.security.create_api_key(name="child", role_descriptors=descriptors)
        assert err.value.body["error"]["reason"] == ("creating derived api keys requires an explicit role descriptor "
                                                     "that is empty (has no privileges)")
    child = (await parent.security.create_api_key(name="child", role_descriptors={"nothing": {}})).body
    with pytest.raises(AuthorizationException):
        await connect(api_key=child["encoded"]).info()


# --- security off -------------------------------------------------------------------------------

async def test_with_security_off_nothing_asks_for_credentials(es: AsyncElasticsearch, http: TestClient) -> None:
    assert (await es.info())["tagline"] == "You Know, for Search"
    resp = await http.get("/_security/_authenticate")  # unknown, as before security existed
    assert resp.status == 400
    assert (await resp.json())["error"] == "no handler found for uri [/_security/_authenticate] and method [GET]"
    resp = await http.get("/", headers=basic("elastic", "anything"))
    assert resp.status == 200


# --- no secret anywhere ---------------------------------------------------------------------

async def test_no_secret_in_responses(admin: AsyncElasticsearch) -> None:
    await user_with(admin, "sam", ["viewer"], "sam-password-42")
    key = (await admin.security.create_api_key(name="k")).body
    shown = [(await admin.security.get_user()).body, (await admin.security.get_api_key()).body,
             (await admin.security.authenticate()).body]
    text = repr(shown)
    for secret in ("sam-password-42", PASSWORD, key["api_key"], key["encoded"], "scrypt$"):
        assert secret not in text


async def test_authentication_comes_before_the_parameter_check(raw: TestClient) -> None:
    resp = await raw.get("/_tasks?no_such_param=1")
    assert resp.status == 401
    resp = await raw.get("/_tasks?no_such_param=1", headers=basic("elastic", PASSWORD))
    assert resp.status == 400
    assert (await resp.json())["error"]["reason"] == \
        "request [/_tasks] contains unrecognized parameter: [no_such_param]"


# --- SME tasks belong to their creator ---------------------------------------------------------

async def test_sme_tasks_are_seen_only_by_their_owner(admin: AsyncElasticsearch, secured: TestServer,
                                                      raw: TestClient) -> None:
    await admin.index(index="logs", document={"bytes": 1}, refresh=True)
    await user_with(admin, "alice", ["viewer"])
    await user_with(admin, "bob", ["viewer"])
    app = secured.app
    job = EsqlJob.compile("FROM logs | LIMIT 5", None, None, app[keys.CATALOG], QueryOptions.of(app[keys.SETTINGS]))
    view = await app[keys.BACKGROUND].create(job, "alice", {}, Limits(keep_alive_ms=60_000, max_running=1, max_tasks=5),
                                             {"query": "FROM logs | LIMIT 5"}, [])
    task_id = view.record.id
    alice, bob = basic("alice", "password-1"), basic("bob", "password-1")
    resp = await raw.get(f"/_sme/async_requests/status/{task_id}", headers=alice)
    assert resp.status == 200 and (await resp.json())["user"] == "alice"
    for path in (f"status/{task_id}", f"response/{task_id}", f"logs/{task_id}"):
        assert (await raw.get(f"/_sme/async_requests/{path}", headers=bob)).status == 404
    for path in (f"file_download/{task_id}", f"break/{task_id}"):
        assert (await raw.post(f"/_sme/async_requests/{path}", headers=bob, json={})).status == 404, path
    assert (await raw.delete(f"/_sme/async_requests/delete/{task_id}", headers=bob)).status == 404
    listed = await (await raw.get("/_sme/async_requests/status", headers=bob)).json()
    assert task_id not in repr(listed)
    assert task_id in repr(await (await raw.get("/_sme/async_requests/status", headers=alice)).json())


async def test_sme_limits_follow_the_user_and_its_roles(admin: AsyncElasticsearch, raw: TestClient) -> None:
    """The limits index under security: a user's own limit, else the most permissive of its
    roles', else the base limit; ``allowed_commands`` the union of its own and its roles'."""
    await admin.bulk(operations=[op for i in range(6) for op in (
        {"index": {"_index": "logs"}}, {"@timestamp": f"2024-05-01T00:00:0{i}Z", "n": i})], refresh=True)
    for role in ("analyst", "auditor"):
        await admin.security.put_role(name=role, indices=[{"names": ["logs"], "privileges": ["read"]}])
    await user_with(admin, "alice", ["analyst", "auditor"])
    await user_with(admin, "bob", ["analyst"])
    await admin.cluster.put_settings(transient={"sme.core.limits.base.max_qsize": "1"})
    await admin.bulk(index=".sm_sme_limits_user", refresh=True, operations=[
        {"index": {}}, {"role": "analyst", "max_qsize": 2, "allowed_commands": "source,stats"},
        {"index": {}}, {"role": "auditor", "max_qsize": 4, "allowed_commands": ["source", "eval"]},
        {"index": {}}, {"user": "bob", "allowed_commands": "table"}])
    body = {"dtStart": "2024-05-01T00:00:00Z", "dtEnd": "2024-05-02T00:00:00Z"}

    async def create(user: str, query: str) -> Any:
        resp = await raw.post("/_sme/async_requests/request", headers=basic(user, "password-1"),
                              json={"query": query, **body})
        if resp.status != 200:
            return resp.status, await resp.json()
        task_id = (await resp.json())["id"]
        logs = await raw.get(f"/_sme/async_requests/logs/{task_id}", headers=basic(user, "password-1"))
        return logs.status, {"warnings": [line["message"] for line in (await logs.json())["logs"]
                                          if line["level"] == "WARN"]}
    status, task = await create("alice", "source logs qsize=100 | eval x=1 | stats count")
    assert status == 200, task
    assert task["warnings"] == ["qsize=100 reduced to 4 by limit max_qsize"]  # auditor's is the larger
    status, refused = await create("alice", "source logs | table n")
    assert status == 403 and "command [table] is not allowed for user [alice]" in refused["error"]["reason"]
    status, task = await create("bob", "source logs qsize=100 | table n")  # its own list with its role's
    assert status == 200 and task["warnings"] == ["qsize=100 reduced to 2 by limit max_qsize"]
    status, refused = await create("bob", "source logs | eval x=1")
    assert status == 403


def test_every_route_has_an_action_and_every_action_a_route(secured_settings: Settings) -> None:
    """The security step refuses a route missing from ``actions.ACTIONS``: a new route must be
    given its action (and so its privilege) here before anyone can call it."""
    routes = {(r.method, r.resource.canonical) for r in create_app(secured_settings).router.routes()}
    assert sorted(routes - set(ACTIONS)) == []
    assert sorted(set(ACTIONS) - routes) == []


# --- every route, three callers ----------------------------------------------------------------

_FILLED = {"index": "logs", "id": "FmNoSuchId", "name": "someone", "task_id": "node:1"}


@pytest.mark.parametrize("method, template", sorted(ACTIONS))
async def test_every_route_asks_for_credentials_and_checks_privileges(raw: TestClient, admin: AsyncElasticsearch,
                                                                      method: str, template: str) -> None:
    """No credentials: 401 everywhere but the console's page and login (public, holding no
    data). A user without roles: 403 everywhere but ``_authenticate`` (and its own password)
    and its own async results and tasks (it finds none: 404 or an empty list). The superuser:
    never 401 or 403."""
    await user_with(admin, "nobody", [])
    path = template.format(**_FILLED)
    anonymous = await raw.request(method, path)
    if ACTIONS[(method, template)].public:
        assert anonymous.status not in (401, 403), (method, path, await anonymous.text())
        return
    assert anonymous.status == 401, (method, path)
    assert anonymous.headers.getall("WWW-Authenticate") == CHALLENGES
    nobody = await raw.request(method, path, headers=basic("nobody", "password-1"))
    if ACTIONS[(method, template)].self_service or ACTIONS[(method, template)].index == OWN:
        assert nobody.status not in (401, 403), (method, path, await nobody.text())
    else:
        assert nobody.status == 403, (method, path, await nobody.text())
        if method != "HEAD":
            reason = (await nobody.json())["error"]["reason"]
            assert reason.startswith(f"action [{ACTIONS[(method, template)].name}] is unauthorized for user [nobody]")
    superuser = await raw.request(method, path, headers=basic("elastic", PASSWORD))
    assert superuser.status not in (401, 403), (method, path, await superuser.text())


# --- the query command line on a secured service -------------------------------------------------

async def test_esquire_query_with_credentials(secured: TestServer, admin: AsyncElasticsearch) -> None:

    port = secured.port
    key = (await admin.security.create_api_key(name="cli")).body

    def esquire(url: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "service", "query", "--url", url, "--format", "csv",
                               "ROW a = 1 | LIMIT 1"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                              env={**os.environ, **(env or {})})

    for url, env in ((f"http://elastic:{PASSWORD}@127.0.0.1:{port}", None),
                     (f"http://127.0.0.1:{port}", {"ESQUIRE_API_KEY": key["encoded"]})):
        done = await asyncio.to_thread(esquire, url, env)
        assert (done.returncode, done.stdout) == (0, "a\n1\n"), done.stderr
    refused = await asyncio.to_thread(esquire, f"http://127.0.0.1:{port}")
    assert refused.returncode == 1
    assert "missing authentication credentials" in refused.stderr


async def test_bulk_items_are_authorized_one_by_one(admin: AsyncElasticsearch,
                                                    connect: Callable[..., AsyncElasticsearch]) -> None:
    for index in ("logs-a", "secret"):
        await admin.indices.create(index=index)
    await admin.security.put_role(name="logs_rw", indices=[{"names": ["logs-*"], "privileges": ["write"]}])
    await user_with(admin, "lou", ["logs_rw"])
    lou = connect(basic_auth=("lou", "password-1"))
    resp = (await lou.bulk(operations=[{"index": {"_index": "logs-a", "_id": "1"}}, {"n": 1},
                                       {"index": {"_index": "secret", "_id": "1"}}, {"n": 2},
                                       {"create": {"_index": "logs-new", "_id": "1"}}, {"n": 3},
                                       {"delete": {"_index": "secret", "_id": "1"}}], refresh=True)).body
    assert resp["errors"] is True
    statuses = [next(iter(item.values()))["status"] for item in resp["items"]]
    assert statuses == [201, 403, 403, 403]
    errors = [next(iter(item.values())).get("error", {}).get("reason") for item in resp["items"]]
    assert errors[1] == ("action [indices:data/write/index] is unauthorized for user [lou] with effective roles "
                         "[logs_rw] on indices [secret], this action is granted by the index privileges "
                         "[create_doc,create,index,write,all]")
    assert errors[2].startswith("action [indices:admin/auto_create] is unauthorized for user [lou]")
    assert errors[3].startswith("action [indices:data/write/delete] is unauthorized for user [lou]")
    assert (await admin.count(index="secret"))["count"] == 0
    assert not await admin.indices.exists(index="logs-new")
    assert (await admin.count(index="logs-a"))["count"] == 1
    # a path index is only the items' default: an item naming another index is checked on that one
    resp = (await lou.bulk(index="logs-a", operations=[{"index": {"_index": "secret"}}, {"n": 4}])).body
    assert next(iter(resp["items"][0].values()))["status"] == 403


# --- hostile bodies ------------------------------------------------------------------------------

def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["str", "int", "bool", "none", "float"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return rng.choice(["", " ", "password-1", "all", "monitor", "read", "*", "_x", "ü", "a" * 2000,
                           "cluster:monitor/*", "/[/", "1d", "-1", "viewer", "superuser"])
    if kind == "int":
        return rng.choice([0, -1, 1, 2 ** 63, -(2 ** 70)])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "float":
        return rng.choice([0.5, -1.5, 1e308])
    if kind == "list":
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys_ = ["password", "roles", "cluster", "indices", "names", "privileges", "name", "expiration",
             "role_descriptors", "metadata", "enabled", "full_name", "email", "ids", "owner", "run_as",
             "applications", "allow_restricted_indices", "query", "username", "zzz"]
    return {rng.choice(keys_): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


async def _state(admin: AsyncElasticsearch) -> Any:
    keys_ = (await admin.security.get_api_key()).body["api_keys"]
    return ((await admin.security.get_user()).body, (await admin.security.get_role()).body,
            sorted((k["id"], k["invalidated"]) for k in keys_))


async def test_hostile_bodies_never_fail_the_service_and_refusals_change_nothing(raw: TestClient,
                                                                                 admin: AsyncElasticsearch) -> None:

    rng = random.Random(int(os.environ.get("SEC_SEED", "14")))
    await user_with(admin, "fixed", ["viewer"])
    targets = [("PUT", "/_security/user/u"), ("PUT", "/_security/role/r"), ("POST", "/_security/api_key"),
               ("POST", "/_security/user/fixed/_password"), ("DELETE", "/_security/api_key")]
    headers = {**basic("elastic", PASSWORD), "Content-Type": "application/json"}
    for _ in range(int(os.environ.get("SEC_N", "120"))):
        method, path = rng.choice(targets)
        body = _random_value(rng) if rng.random() < 0.2 else {k: _random_value(rng, 1) for k in
                                                                  rng.sample(["password", "roles", "cluster", "indices",
                                                                              "name", "expiration", "metadata",
                                                                              "role_descriptors", "ids", "enabled"],
                                                                             rng.randint(0, 3))}
        before = await _state(admin)
        resp = await raw.request(method, path, data=json.dumps(body), headers=headers)
        assert resp.status < 500, (method, path, body, await resp.text())
        if resp.status >= 400:
            assert await _state(admin) == before, (method, path, body, await resp.text())
        elif path.endswith("/user/u"):
            await admin.security.delete_user(username="u")
        elif path.endswith("/role/r"):
            await admin.security.delete_role(name="r")


def _authorization_values() -> Any:
    """Authorization headers as a hostile client sends them: other schemes, broken base64,
    a colon missing or doubled, huge or non-ASCII names, a key id without its key."""
    from hypothesis import strategies as st

    def b64(text: str) -> str:
        return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()
    junk = st.text(max_size=40)
    return st.one_of(
        st.builds(lambda t: f"Basic {b64(t)}", junk),
        st.builds(lambda u, p: f"Basic {b64(u + ':' + p)}", junk, junk),
        st.builds(lambda t: f"ApiKey {b64(t)}", junk),
        st.builds(lambda i, k: f"ApiKey {b64(i + ':' + k)}", junk, junk),
        st.builds(lambda scheme, rest: f"{scheme} {rest}", st.sampled_from(["Basic", "ApiKey", "Bearer", "basic",
                                                                             "APIKEY", "Digest", ""]),
                  st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)),
        st.builds(lambda n: "Basic " + b64("u" * n + ":p"), st.integers(0, 5000)),
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
    )


async def test_hostile_authorization_headers_are_401(raw: TestClient, admin: AsyncElasticsearch) -> None:
    """Whatever the header holds: 401 with Elasticsearch's body and both challenges, never a
    500 and never an answer; the service then still serves the right credentials."""
    from hypothesis import HealthCheck, given, settings

    seen: list[str] = []

    @settings(max_examples=150, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(_authorization_values())
    def check(value: str) -> None:
        seen.append(value)
    check()
    for value in seen:
        resp = await raw.get("/", headers={"Authorization": value})
        assert resp.status == 401, (value, resp.status, await resp.text())
        body = await resp.json()
        assert body["error"]["type"] == "security_exception" and body["status"] == 401, value
        assert resp.headers.getall("WWW-Authenticate") == CHALLENGES
    assert (await raw.get("/", headers=basic("elastic", PASSWORD))).status == 200


async def test_a_role_with_document_or_field_security_is_kept_disabled(
        admin: AsyncElasticsearch, connect: Callable[..., AsyncElasticsearch]) -> None:
    await admin.index(index="logs", id="1", document={"user": "a", "secret": "s"}, refresh=True)
    await admin.security.put_role(name="dls", indices=[{"names": ["logs"], "privileges": ["read"],
                                                        "query": {"term": {"user": "a"}},
                                                        "field_security": {"grant": ["user"]}}])
    shown = (await admin.security.get_role(name="dls")).body["dls"]
    assert shown["transient_metadata"] == {"enabled": False, "unlicensed_features": ["dls/fls"]}
    assert shown["indices"][0]["query"] == {"term": {"user": "a"}}
    await user_with(admin, "dee", ["dls"])
    with pytest.raises(AuthorizationException):  # never the whole index in place of the filtered one
        await connect(basic_auth=("dee", "password-1")).get(index="logs", id="1")


async def test_the_cache_trusts_a_success_for_its_ttl_only(admin: AsyncElasticsearch, secured: TestServer,
                                                           connect: Callable[..., AsyncElasticsearch]) -> None:
    """A change made behind the service's back (straight in the store, as another tool might) is
    not seen while the success is cached, and is once the TTL has passed."""
    security = secured.app[keys.SECURITY]
    now = [security.clock()]
    security.clock = lambda: now[0]
    await user_with(admin, "tia", ["viewer"], "old-password")
    old = connect(basic_auth=("tia", "old-password"))
    assert (await old.security.authenticate())["username"] == "tia"
    await security.store.set_password("tia", passwords.hash_secret_now("new-password"), security.now_ms())
    now[0] += 60
    assert (await old.security.authenticate())["username"] == "tia"  # cached
    now[0] += security.cache.ttl_s
    with pytest.raises(AuthenticationException):
        await old.security.authenticate()
    assert (await connect(basic_auth=("tia", "new-password")).security.authenticate())["username"] == "tia"


def test_a_success_looked_up_across_a_change_is_not_cached() -> None:
    """A lookup that began before a change (its slow hash still running) may have read what the
    change replaced: its success is answered but not cached."""
    cache = AuthCache()
    credentials = Credentials("basic", "ann", "old-password")
    principal = Principal("ann", (), (), Permission())
    began = cache.generation
    cache.drop_user("ann")  # the password changed meanwhile
    cache.put(credentials, principal, generation=began)
    assert cache.get(credentials) is None
    cache.put(credentials, principal, generation=cache.generation)
    assert cache.get(credentials) is principal
