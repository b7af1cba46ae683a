"""The duty board in a real browser (Debian's chromium, driven by Playwright) on the running
duty service, with alerts the real processor raised from published events: sign-in, the
team's board kept live over its stream, acting from an alert's page, team scoping, CSRF,
compare-and-set, the panel view and its CSV, and the keyboard. Screenshots of the board and
an alert's page are kept in test-artifacts/."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from services.alerts.entrypoints.http import SESSION_COOKIE
from tests.integration.alerts.conftest import (
    BRADFORD,
    LEEDS,
    OPTIONS,
    PASSWORD,
    DutyWorld,
)

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
ALERT_PAGE = re.compile(r"/board/alerts/[0-9a-f-]{36}(\?.*)?$")


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: run `make browser` (make test does)")
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: Path, duty: DutyWorld) -> AsyncIterator[Browser]:
    """One chromium for the module (closed before the duty service stops)."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium), args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@asynccontextmanager
async def browsing(browser: Browser, duty: DutyWorld, username: str | None = None
                   ) -> AsyncIterator[Page]:
    """A page on a 1366x768 laptop in London, signed in as ``username`` (its token as the
    session cookie, as the sign-in form sets it) or not at all. Every page it showed kept
    to the Content-Security-Policy (no inline script or style was refused)."""
    context = await browser.new_context(base_url=duty.url, locale="en-GB",
                                        timezone_id="Europe/London",
                                        viewport={"width": 1366, "height": 768})
    context.set_default_timeout(15_000)
    refused: list[str] = []
    context.on("console", lambda m: refused.append(m.text)
               if "Content Security Policy" in m.text else None)
    try:
        if username is not None:
            await context.add_cookies([{"name": SESSION_COOKIE,
                                        "value": duty.tokens[username], "url": duty.url}])
        yield await context.new_page()
    finally:
        await context.close()
    assert refused == []


def cookie_client(duty: DutyWorld, username: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=duty.url, cookies={SESSION_COOKIE: duty.tokens[username]},
                             timeout=30, follow_redirects=False)


async def alert_row(duty: DutyWorld, alert_id: str) -> dict:
    row = await duty.pool.fetchrow(
        "SELECT status, version, acknowledged_by, assignee, person_key FROM alert "
        "WHERE alert_id = $1::uuid", alert_id)
    assert row is not None
    return dict(row)


async def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name), full_page=True)


async def test_signing_in_through_the_form_shows_the_teams_board(
        browser: Browser, duty: DutyWorld) -> None:
    alert_id = await duty.raise_alert()
    async with browsing(browser, duty) as page:
        await page.goto("/board")
        assert "/sign-in" in page.url  # every page needs a signed-in member
        await page.get_by_label("Username").fill("housing.officer")
        await page.get_by_label("Password").fill("not the password at all")
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_text("The username or password is not right").wait_for()

        await page.get_by_label("Username").fill("housing.officer")
        await page.get_by_label("Password").fill(PASSWORD)
        async with page.expect_response(re.compile(r"/board$")) as shown:
            await page.get_by_role("button", name="Sign in").click()
        response = await shown.value
        assert response.status == 200
        headers = await response.all_headers()
        assert "default-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert (headers["x-frame-options"], headers["referrer-policy"]) == ("DENY",
                                                                           "no-referrer")
        session = next(c for c in await page.context.cookies() if c["name"] == SESSION_COOKIE)
        assert (session["httpOnly"], session["sameSite"], session["path"]) == (True, "Strict",
                                                                              "/")
        assert session["expires"] > 0  # Max-Age: the token's lifetime

        row = page.locator(f'tr[data-alert-id="{alert_id}"]')
        await row.wait_for()
        assert "High" in await row.inner_text()
        assert await page.locator("html").get_attribute("lang") == "en-GB"
        assert await page.get_by_role("heading", level=1).inner_text() == (
            "Leeds housing options: alerts to work")
        await screenshot(page, "board.png")

        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url(re.compile(r"/sign-in"))
        await page.goto("/board")
        assert "/sign-in" in page.url
    async with httpx.AsyncClient(base_url=duty.url, cookies={
            SESSION_COOKIE: session["value"]}) as old:  # the token itself was revoked
        assert (await old.get("/board")).status_code == 303


async def test_sign_in_without_the_forms_cookie_is_refused(duty: DutyWorld) -> None:
    async with httpx.AsyncClient(base_url=duty.url, timeout=30) as c:
        answer = await c.post("/sign-in", data={"username": "housing.officer",
                                                "password": PASSWORD, "csrf_token": "x"})
    assert answer.status_code == 403 and SESSION_COOKIE not in answer.cookies


async def test_a_raised_alert_appears_live_without_a_reload_and_is_announced(
        browser: Browser, duty: DutyWorld) -> None:
    async with browsing(browser, duty, "housing.officer") as page:
        await page.goto("/board")
        await page.locator('#alerts[data-live="on"]').wait_for()
        await page.evaluate("window.stillTheSamePage = true")
        alert_id = await duty.raise_alert()
        await page.locator(f'tr[data-alert-id="{alert_id}"]').wait_for()
        assert await page.evaluate("window.stillTheSamePage") is True
        await page.locator("#announce", has_text="New alert").wait_for()


async def test_acting_from_the_alerts_page_changes_it_in_postgresql(
        browser: Browser, duty: DutyWorld) -> None:
    alert_id = await duty.raise_alert()
    async with browsing(browser, duty, "housing.officer") as page:
        await page.goto(f"/board/alerts/{alert_id}")
        text = await page.locator("main").inner_text()
        for shown in ("settled accommodation on release", "Homelessness Reduction Act 2017",
                      "Why this alert", "The person's timeline across agencies"):
            assert shown in text
        assert re.search(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} \w{3} \d{4} \d\d:\d\d "
                         r"(GMT|BST)", text)
        assert await page.locator("table.records tbody tr").count() >= 1
        await screenshot(page, "alert.png")

        await page.get_by_role("button", name="Acknowledge").click()
        await page.wait_for_url(re.compile(r"done=acknowledge"))
        row = await alert_row(duty, alert_id)
        assert (row["status"], row["acknowledged_by"], row["version"]) == (
            "acknowledged", "housing.officer", 2)

        await page.get_by_label("Assign to a member of the team").select_option(
            "housing.colleague")
        await page.get_by_role("button", name="Assign").click()
        await page.wait_for_url(re.compile(r"done=assign"))
        await page.get_by_label("Comment for the alert's history").fill("Rang the hostel.")
        await page.get_by_role("button", name="Add comment").click()
        await page.wait_for_url(re.compile(r"done=comment"))
        assert "Rang the hostel." in await page.locator("table.history").inner_text()
        row = await alert_row(duty, alert_id)
        assert (row["assignee"], row["version"]) == ("housing.colleague", 4)


async def test_another_teams_member_sees_neither_the_alert_nor_the_board(
        browser: Browser, duty: DutyWorld) -> None:
    alert_id = await duty.raise_alert()
    async with browsing(browser, duty, "bradford.officer") as page:
        await page.goto("/board")
        assert "Bradford housing options" in await page.locator("h1").inner_text()
        assert alert_id not in await page.content()
        other_board = await page.goto(f"/board?team={OPTIONS}")
        assert other_board is not None and other_board.status == 403
        assert alert_id not in await page.content()
        detail = await page.goto(f"/board/alerts/{alert_id}")
        assert detail is not None and detail.status == 404
        assert alert_id not in await page.content()
    async with cookie_client(duty, "bradford.officer") as c:
        assert (await c.get("/board/rows", params={"team": OPTIONS})).status_code == 403


async def test_a_form_post_without_the_csrf_token_is_refused_and_changes_nothing(
        duty: DutyWorld) -> None:
    alert_id = await duty.raise_alert()
    before = await alert_row(duty, alert_id)
    async with cookie_client(duty, "housing.officer") as c:
        page = await c.get(f"/board/alerts/{alert_id}")
        assert page.status_code == 200
        without = await c.post(f"/board/alerts/{alert_id}/acknowledge", data={"version": "1"})
        wrong = await c.post(f"/board/alerts/{alert_id}/resolve", data={
            "version": "1", "outcome": "duplicate", "csrf_token": "0" * 64})
        sign_out = await c.post("/sign-out", data={})
        still = await c.get("/board")
    assert (without.status_code, wrong.status_code, sign_out.status_code) == (403, 403, 403)
    assert still.status_code == 200  # the session was not signed out either
    assert await alert_row(duty, alert_id) == before
    assert await duty.pool.fetchval("SELECT count(*) FROM alert_history WHERE alert_id = "
                                    "$1::uuid", alert_id) == 1


async def test_a_stale_version_gives_the_page_again_with_409(
        browser: Browser, duty: DutyWorld) -> None:
    alert_id = await duty.raise_alert()
    async with browsing(browser, duty, "housing.officer") as page:
        await page.goto(f"/board/alerts/{alert_id}")
        async with duty.client("housing.colleague") as colleague:  # acts first
            first = await colleague.post(f"/v1/alerts/{alert_id}/acknowledgement",
                                         json={"version": 1})
            assert first.status_code == 200
        await page.get_by_label("Comment for the alert's history").fill("Too late.")
        async with page.expect_response(re.compile(r"/comment$")) as posted:
            await page.get_by_role("button", name="Add comment").click()
        assert (await posted.value).status == 409
        problem = await page.locator("#problem").inner_text()
        assert "Somebody else acted first; here is the alert as it stands now" in problem
        assert "by housing.colleague" in await page.locator("#status").inner_text()
    assert (await alert_row(duty, alert_id))["version"] == 2
    assert not await duty.pool.fetchval(
        "SELECT count(*) FROM alert_history WHERE alert_id = $1::uuid AND comment IS NOT NULL",
        alert_id)


async def panel_people(page: Page, area: str) -> list[str]:
    await page.goto(f"/panel?area={area}")
    return [p for p in await page.locator("#agenda tbody tr[data-person]").evaluate_all(
        "rows => rows.map(r => r.dataset.person)")]


async def test_the_panel_lists_the_areas_people_with_open_alerts_and_the_csv_matches(
        browser: Browser, duty: DutyWorld) -> None:
    leeds, bradford = await asyncio.gather(duty.raise_alert(LEEDS),
                                           duty.raise_alert(BRADFORD))
    leeds_person = (await alert_row(duty, leeds))["person_key"]
    bradford_person = (await alert_row(duty, bradford))["person_key"]
    working = ("SELECT person_key FROM alert WHERE area = $1 AND status <> 'resolved' "
               "GROUP BY person_key ORDER BY min(raised_at), person_key")
    expected = [r["person_key"] for r in await duty.pool.fetch(working, LEEDS)]
    async with browsing(browser, duty, "housing.officer") as page:
        listed = await panel_people(page, LEEDS)
        assert listed == expected  # exactly them, longest open gap first
        assert leeds_person in listed and bradford_person not in listed
        released = page.locator("#chart-table tbody tr", has=page.locator(
            "th", has_text="Released from prison with no settled accommodation"))
        assert await released.locator("td").last.inner_text() == str(await duty.pool.fetchval(
            "SELECT count(*) FROM alert WHERE area = $1 AND status <> 'resolved'", LEEDS))
        assert await page.locator("figure.chart svg[role=img]").count() == 1

        # another area's panel: there, what the reader's teams do not work is as the read
        # path shows it to them (here: withheld), and the read is in the person's audit
        assert await panel_people(page, BRADFORD) == [
            r["person_key"] for r in await duty.pool.fetch(working, BRADFORD)]
        row = page.locator(f'tr[data-person="{bradford_person}"]')
        assert "Confidential" in await row.inner_text()
        assert "Released from prison" not in await row.inner_text()
        await screenshot(page, "panel.png")
        await row.get_by_role("link").click()  # their record, through the read path
        await page.wait_for_url(re.compile(f"/board/people/{bradford_person}$"))
        assert "Confidential" in await page.locator("main").inner_text()
    assert await duty.pool.fetchval(
        "SELECT count(*) FROM access_audit WHERE person_id = $1::uuid AND action = "
        "'read.alerts' AND purpose = 'care_coordination'", bradford_person) >= 1
    async with cookie_client(duty, "housing.officer") as c:
        answer = await c.get("/panel.csv", params={"area": LEEDS})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["person_id"] for r in rows] == listed
    assert all(int(r["open_gaps"]) >= 1 for r in rows)


async def test_the_keyboard_reaches_the_first_alert_and_enter_opens_it(
        browser: Browser, duty: DutyWorld) -> None:
    await duty.raise_alert()
    async with browsing(browser, duty, "housing.officer") as page:
        await page.goto("/board")
        first = page.locator("a.alert-link").first
        first_href = await first.get_attribute("href")
        first_title = await first.inner_text()
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == (
            "Skip to main content")
        for _ in range(30):
            if await page.evaluate("document.activeElement.classList.contains('alert-link')"):
                break
            await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.getAttribute('href')") == first_href
        await page.keyboard.press("Enter")
        await page.wait_for_url(ALERT_PAGE)
        assert await page.get_by_role("heading", level=1).inner_text() == first_title
