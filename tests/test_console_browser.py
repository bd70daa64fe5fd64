"""The web console (issue 16) in a real headless Chromium against the real app on a real socket:
what a user does on the page (submit, watch, stop, page, download, log in, filter) and what
it must never do (load or send anything to another origin, break its CSP). Every test saves a
screenshot to ``tests/screenshots/``."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import urlsplit

import openpyxl
import pytest
from aiohttp.test_utils import TestServer
from elasticsearch import AsyncElasticsearch

from conftest import SLOW, load_logs, running
from test_console_api import load_events  # the same 50 events the API tests read
from service.api.console import SECURITY_HEADERS
from service.query.control import Control
from service.settings import Settings, replace

try:
    from playwright.async_api import Page, async_playwright, expect
except ImportError:  # the test extra not installed
    pytest.skip("playwright is not installed (pip install -e .[test])", allow_module_level=True)

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (scripts/setup test installs Debian's)", allow_module_level=True)

# Without the background-networking flags Chromium waits on Google's services, which a closed
# network never answers.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).parent / "screenshots"
PASSWORD = "elastic-secret-1"
TIMEOUT_MS = 15_000


class Console:
    """A page of the console with what it sent and what the browser logged."""

    def __init__(self, page: Page, base: str) -> None:
        self.page, self.base = page, base
        self.requests: list[str] = []
        self.shown: str | None = None  # the search shown when the last query was run
        self.messages: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", lambda m: self.messages.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.messages.append(f"pageerror: {e}"))

    async def open(self) -> Any:
        response = await self.page.goto(f"{self.base}/_console/")
        return response

    async def run(self, language: str, query: str, **fields: str) -> None:
        """The query typed in the editor of ``language`` and submitted with Ctrl+Enter."""
        page = self.page
        self.shown = await page.locator("#current").get_attribute("data-id")
        await page.select_option("#language", language)
        for name, value in fields.items():
            if name == "range":
                await page.select_option("#range", value)
            else:
                await page.fill(f"#{name}", value)
        await page.fill("#query", query)
        await page.press("#query", "Control+Enter")

    async def finished(self, state: str = "completed") -> None:
        """Waits for the search just run (not the one shown before it) to reach ``state``."""
        current = self.page.locator("#current")
        if self.shown:
            await expect(current).not_to_have_attribute("data-id", self.shown)
        await expect(self.page.locator("#status")).to_contain_text(f"search {state}", timeout=TIMEOUT_MS)

    async def rows_text(self) -> list[list[str]]:
        return [await row.locator("td").all_inner_texts() for row in await self.rows().all()]

    def rows(self) -> Any:
        return self.page.locator("[data-testid=result-row]")

    def foreign(self) -> list[str]:
        """Every request not to the server's origin (a blob: URL of a download is the page's own)."""
        origin = urlsplit(self.base)
        out = []
        for url in self.requests:
            parts = urlsplit(url[len("blob:"):] if url.startswith("blob:") else url)
            if parts.scheme == "data":
                continue
            if (parts.scheme, parts.netloc) != (origin.scheme, origin.netloc):
                out.append(url)
        return out

    def errors(self) -> list[str]:
        """CSP violations (Chromium logs each) and uncaught errors of the page's script."""
        return [m for m in self.messages if "Content Security Policy" in m or m.startswith("pageerror")]


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@contextlib.asynccontextmanager
async def console_on(browser: Any, server: TestServer, request: pytest.FixtureRequest,
                     width: int = 1280) -> AsyncIterator[Console]:
    """A fresh browser context on ``server``'s console; at the end a screenshot, and the page
    must have spoken to no other origin and broken no CSP rule."""
    context = await browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    console = Console(page, str(server.make_url("")).rstrip("/"))
    try:
        yield console
    finally:
        SCREENSHOTS.mkdir(exist_ok=True)
        await page.screenshot(path=SCREENSHOTS / f"{request.node.name}.png", full_page=True)
        await context.close()
    assert console.foreign() == []
    assert console.errors() == []


@pytest.fixture
async def console(browser: Any, server: TestServer, request: pytest.FixtureRequest) -> AsyncIterator[Console]:
    async with console_on(browser, server, request) as opened:
        yield opened


SML_DAY = {"range": "custom", "dt-start": "2024-05-01T00:00:00Z", "dt-end": "2024-05-02T00:00:00Z"}


# --- each language ----------------------------------------------------------------------------

async def test_each_language_runs_and_shows_its_results(es: AsyncElasticsearch, console: Console) -> None:
    await load_events(es)
    response = await console.open()
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name.lower()] == value
    page = console.page

    await console.run("esql", "FROM events | KEEP n, host.name | SORT n | LIMIT 7")
    await console.finished()
    await expect(console.rows()).to_have_count(7)
    assert await page.locator("[data-testid=column]").all_inner_texts() == ["n\nlong", "host.name\ntext"]
    assert (await console.rows_text())[2][:2] == ["2", "web-2"]
    raw = console.rows().nth(2).locator("details")
    await raw.locator("summary").click()
    assert json.loads(await raw.locator("pre").inner_text()) == {"n": 2, "host.name": "web-2"}

    await console.run("eql", 'process where process.name == "cmd.exe"', index="events")
    await console.finished()
    await expect(console.rows()).to_have_count(25)
    assert "_id\nkeyword" in await page.locator("[data-testid=column]").all_inner_texts()

    await console.run("eql", "sequence by host.name [process where n < 6] [process where n >= 6]", index="events")
    await console.finished()
    sequences = page.locator("[data-testid=sequence]")
    await expect(sequences).to_have_count(3)
    await expect(sequences.first.locator("th")).to_contain_text("Sequence 1 by")
    await expect(sequences.first.locator("[data-testid=result-row]")).to_have_count(2)

    await console.run("sml", "source events | where n < 30", **SML_DAY)
    await console.finished()
    await expect(page.locator("#page-info")).to_have_text("Rows 1–30 of 30")
    await expect(page.locator("[data-testid=timeline-bar]").first).to_be_visible()
    await expect(page.locator("[data-testid=sidebar-field][data-field='host.name']")).to_be_visible()

    # the history holds the four, newest first, and gives one back
    options = await page.locator("#history option").all_inner_texts()
    assert len(options) == 5 and options[1].startswith("SML: source events")
    await page.select_option("#history", index=4)
    await expect(page.locator("#query")).to_have_value("FROM events | KEEP n, host.name | SORT n | LIMIT 7")
    await expect(page.locator("#language")).to_have_value("esql")
    # My searches lists all four, each completed
    await expect(page.locator("[data-testid=search-row][data-state=COMPLETED]")).to_have_count(4)
    # every control a user can reach has a name a screen reader reads
    unnamed = await page.evaluate("""() => [...document.querySelectorAll('input, select, textarea, button, progress')]
        .filter((e) => !(e.labels?.length || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')
                         || (e.tagName === 'BUTTON' && e.textContent.trim())))
        .map((e) => e.outerHTML)""")
    assert unnamed == []


async def test_a_narrow_screen_stacks_the_panels(es: AsyncElasticsearch, browser: Any, server: TestServer,
                                                 request: pytest.FixtureRequest) -> None:
    await load_events(es, 10)
    async with console_on(browser, server, request, width=390) as console:
        await console.open()
        await console.run("esql", "FROM events | KEEP n | LIMIT 3")
        await console.finished()
        search = await console.page.locator("section.search").bounding_box()
        mine = await console.page.locator("section.mine").bounding_box()
        assert mine["y"] >= search["y"] + search["height"] and search["width"] <= 390
        width = await console.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390  # nothing wider than the screen: tables scroll in their own box


# --- a search that really runs -------------------------------------------------------------------

async def test_progress_moves_and_stop_keeps_partial_results(logs: AsyncElasticsearch, console: Console,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Control, "pause_s", 0.05)  # a pause per slice: the scan takes seconds
    page = console.page
    await console.open()
    await console.run("esql", SLOW)
    await console.finished("running")
    bar = page.locator("#progress")
    # functions, not strings: the page's CSP forbids eval, which a string expression needs
    above = "at => document.getElementById('progress').value > at"
    await page.wait_for_function(above, arg=0, timeout=TIMEOUT_MS)
    first = await bar.evaluate("b => b.value")
    await page.wait_for_function(above, arg=first, timeout=TIMEOUT_MS)
    assert await page.locator("#elapsed").inner_text() != ""
    await page.click("#stop")
    await console.finished("stopped")
    await expect(page.locator("#partial")).to_be_visible()
    await expect(page.locator("#result-table caption")).to_contain_text("(partial)")
    await expect(console.rows()).to_have_count(1)
    total, n = (await console.rows_text())[0][:2]
    assert 0 < int(n) < 20000 and int(total) > 0  # some of the rows, not all
    await expect(page.locator("[data-testid=search-row] [data-testid=search-state]")).to_have_text("STOPPED (partial)")
    await page.click("#delete")
    await expect(page.locator("[data-testid=search-row]")).to_have_count(0)


async def test_cancel_and_open_from_my_searches(logs: AsyncElasticsearch, console: Console,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Control, "pause_s", 0.05)
    page = console.page
    await console.open()
    await console.run("esql", "FROM logs | KEEP bytes | SORT bytes | LIMIT 3")
    await console.finished()
    await console.run("esql", SLOW)
    await console.finished("running")
    rows = page.locator("[data-testid=search-row]")
    await expect(rows).to_have_count(2)
    await page.click("#cancel")
    await expect(page.locator("#current")).to_be_hidden()
    await expect(rows).to_have_count(1)
    await expect(page.locator("#mine-status")).to_contain_text("Deleted ES|QL search")
    # the one left opens again from the list, read from disk
    await rows.first.locator("[data-testid=open]").click()
    await expect(page.locator("#status")).to_have_text("ES|QL search completed: 3 rows")
    assert [row[0] for row in await console.rows_text()] == ["0", "1", "2"]
    await expect(page.locator("#query")).to_have_value("FROM logs | KEEP bytes | SORT bytes | LIMIT 3")  # its query


@pytest.fixture
async def big_server(settings: Settings) -> AsyncIterator[TestServer]:
    async with running(replace(settings, max_result_rows=100_000)) as server:
        yield server


async def test_a_100k_row_result_is_paged_from_disk(big_server: TestServer, browser: Any,
                                                     request: pytest.FixtureRequest) -> None:
    es = AsyncElasticsearch(str(big_server.make_url("/")), request_timeout=60)
    try:
        await load_logs(es)
    finally:
        await es.close()
    async with console_on(browser, big_server, request) as console:
        page = console.page
        await console.open()
        await console.run("esql", "FROM logs | EVAL k = [1, 2, 3, 4, 5] | MV_EXPAND k | KEEP bytes, k | LIMIT 100000")
        await console.finished()
        await expect(page.locator("#page-info")).to_have_text("Rows 1–100 of 100000")
        await expect(page.locator("#prev")).to_be_disabled()
        await page.click("#next")
        await expect(page.locator("#page-info")).to_have_text("Rows 101–200 of 100000")
        await expect(console.rows()).to_have_count(100)
        await page.select_option("#page-size", "1000")
        await expect(page.locator("#page-info")).to_have_text("Rows 101–1100 of 100000")
        await page.fill("#page-from", "99950")
        await page.press("#page-from", "Enter")
        await expect(page.locator("#page-info")).to_have_text("Rows 99951–100000 of 100000")
        await expect(console.rows()).to_have_count(50)
        await expect(page.locator("#next")).to_be_disabled()
        await page.click("#prev")
        await expect(page.locator("#page-info")).to_have_text("Rows 98951–99950 of 100000")


# --- downloads ------------------------------------------------------------------------------------

async def download(console: Console, fmt: str, zipped: bool = False, first: int | None = None) -> tuple[str, bytes]:
    page = console.page
    await page.select_option("#dl-format", fmt)
    await page.set_checked("#dl-zip", zipped)
    await page.set_checked("#dl-all", first is None)
    if first is not None:
        await page.fill("#dl-size", str(first))
    async with page.expect_download() as info:
        await page.locator("[data-testid=search-row] [data-testid=download]").first.click()
    done = await info.value
    return done.suggested_filename, Path(await done.path()).read_bytes()


async def test_downloads_in_each_format(es: AsyncElasticsearch, console: Console) -> None:
    await load_events(es)
    await console.open()
    await console.run("esql", "FROM events | KEEP n, host.name | SORT n | LIMIT 40")
    await console.finished()

    name, body = await download(console, "csv")
    assert name.endswith(".csv")
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0] == ["n", "host.name"] and rows[1] == ["0", "web-0"] and len(rows) == 41

    name, body = await download(console, "json", first=3)
    assert name.endswith(".json")
    assert json.loads(body) == [{"n": 0, "host.name": "web-0"}, {"n": 1, "host.name": "web-1"},
                                {"n": 2, "host.name": "web-2"}]

    name, body = await download(console, "xlsx", zipped=True)
    assert name.endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        sheet = openpyxl.load_workbook(io.BytesIO(archive.read(archive.namelist()[0])), read_only=True).active
        values = [list(r) for r in sheet.iter_rows(values_only=True)]
        sheet.parent.close()
    assert values[0] == ["n", "host.name"] and values[1] == [0, "web-0"] and len(values) == 41


# --- filters and errors ------------------------------------------------------------------------------

async def filter_by(console: Console, field: str, value: str, query: str, rows: str) -> None:
    """Click ``value`` of ``field`` in the sidebar: the editor then holds ``query``, whose run
    shows ``rows``."""
    page = console.page
    sidebar = page.locator(f"[data-testid=sidebar-field][data-field='{field}']")
    await sidebar.locator("summary").click()
    await sidebar.locator(f"[data-testid=sidebar-value][data-value='{value}']").click()
    await expect(page.locator("#query")).to_have_value(query)
    await page.press("#query", "Control+Enter")
    await expect(page.locator("#page-info")).to_have_text(rows, timeout=TIMEOUT_MS)


async def test_a_sidebar_value_adds_a_filter(es: AsyncElasticsearch, console: Console) -> None:
    await load_events(es)
    page = console.page
    await console.open()
    await console.run("sml", "source events | fields n, host.name", **SML_DAY)
    await console.finished()
    await expect(page.locator("#fields-scope")).to_have_text("Top values of all 50 events")
    await filter_by(console, "host.name", "web-1", 'source events | fields n, host.name\n| where host.name == "web-1"',
                    "Rows 1–17 of 17")
    assert {row[1] for row in await console.rows_text()} == {"web-1"}

    # ES|QL: the values of the page shown, as WHERE
    await console.run("esql", "FROM events | KEEP n, process.name | LIMIT 50")
    await console.finished()
    await filter_by(console, "process.name", "sh",
                    'FROM events | KEEP n, process.name | LIMIT 50\n| WHERE process.name == "sh"', "Rows 1–25 of 25")

    # EQL: and-ed to the condition, kept apart from an "or" in it
    await console.run("eql", "process where n < 10 or n > 100", index="events")
    await console.finished()
    await filter_by(console, "process.name", "cmd.exe",
                    'process where (n < 10 or n > 100) and process.name == "cmd.exe"', "Rows 1–5 of 5")


async def test_a_syntax_error_is_shown_at_its_line_and_column(console: Console) -> None:
    page = console.page
    await console.open()
    await console.run("esql", "ROW a = 1\n| EVAL b = a +\n| KEEP b")
    error = page.locator("#query-error")
    await expect(error).to_be_visible()
    await expect(page.locator("#query-error-message")).to_contain_text("line 3:1")
    assert await page.locator("#query-error-line").inner_text() == "3 | | KEEP b\n  | ^"
    assert (await error.get_attribute("data-line"), await error.get_attribute("data-column")) == ("3", "1")
    await expect(page.locator("#query")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#query")).to_be_focused()
    offset = await page.locator("#query").evaluate("q => q.selectionStart")
    assert offset == len("ROW a = 1\n| EVAL b = a +\n")
    await expect(page.locator("[data-testid=search-row]")).to_have_count(0)  # nothing was stored

    await console.run("sml", "source events | where n <", range="now-15m")
    await expect(page.locator("#query-error-message")).to_contain_text("line 1:26")
    assert (await page.locator("#query-error-line").inner_text()).endswith(" " * 25 + "^")
    await page.type("#query", "5")
    await expect(error).to_be_hidden()  # editing clears it


# --- security on -------------------------------------------------------------------------------------

@pytest.fixture
async def secured(settings: Settings) -> AsyncIterator[TestServer]:
    async with running(replace(settings, security=True, bootstrap_password=PASSWORD)) as server:
        admin = AsyncElasticsearch(str(server.make_url("/")), basic_auth=("elastic", PASSWORD), request_timeout=30)
        try:
            await load_events(admin)
            await admin.security.put_role(name="reader", indices=[{"names": ["events"], "privileges": ["read"]}])
            for user in ("lola", "lena"):
                await admin.security.put_user(username=user, password="password-1", roles=["reader"])
        finally:
            await admin.close()
        yield server


async def log_in(console: Console, user: str, password: str = "password-1") -> None:
    page = console.page
    await expect(page.locator("#login-panel")).to_be_visible()
    await page.fill("#username", user)
    await page.fill("#password", password)
    await page.press("#password", "Enter")


async def test_log_in_and_out_and_see_only_ones_own_searches(secured: TestServer, browser: Any,
                                                              request: pytest.FixtureRequest) -> None:
    async with console_on(browser, secured, request) as console:
        page = console.page
        await console.open()
        await expect(page.locator("#app")).to_be_hidden()
        await log_in(console, "lola", "wrong")
        await expect(page.locator("#login-error")).not_to_be_empty()
        await log_in(console, "lola")
        await expect(page.locator("#who")).to_have_text("Logged in as lola")
        await console.run("esql", "FROM events | KEEP n | LIMIT 3")
        await console.finished()
        await expect(console.rows()).to_have_count(3)
        rows = page.locator("[data-testid=search-row]")
        await expect(rows).to_have_count(1)
        lolas = await rows.first.get_attribute("data-id")

        await page.reload()  # the session survives a reload (sessionStorage)
        await expect(page.locator("#who")).to_have_text("Logged in as lola")
        await expect(rows).to_have_count(1)
        await page.click("#logout")
        await expect(page.locator("#login-error")).to_have_text("You have logged out.")
        assert await page.evaluate("sessionStorage.length") == 0

        await log_in(console, "lena")
        await expect(page.locator("#who")).to_have_text("Logged in as lena")
        await expect(page.locator("#mine-status")).to_have_text("No searches yet.")
        await expect(page.locator(f"[data-testid=search-row][data-id='{lolas}']")).to_have_count(0)
        await console.run("sml", "source events | fields n", **SML_DAY)
        await console.finished()
        await expect(rows).to_have_count(1)
        assert await rows.first.get_attribute("data-id") != lolas
        assert re.fullmatch(r"[\w-]+", lolas)
