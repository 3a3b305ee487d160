"""The console's search box in a real headless Chromium: a transaction explained for the signed-in
application only (another application's endpoint is not on the page), an unknown one in one line,
and the page at 390 px wide."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from selenium.webdriver.common.by import By

from ethhook.db import session_scope
from ethhook.db.models import utcnow
from tests.support.console import screenshot, sign_in, wait_for
from tests.support.db import add_failed_attempt, store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.factories import TRANSFER, address, transfer

# The delivery's retry is due now: no worker of the session may send it while the page is read.
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("without_session_worker")]

TOKEN = address(31)
URL = "http://127.0.0.1:9/hooks"


def rows(driver) -> dict[int, tuple[str, str]]:
    """Each endpoint row of the first log: (matched, reason)."""
    found = {}
    for row in driver.find_elements(By.CSS_SELECTOR, "section.log tr[data-endpoint-id]"):
        matched = row.find_element(By.CSS_SELECTOR, "td.matched").text
        reason = row.find_element(By.CSS_SELECTOR, "td.reason").text
        found[int(row.get_attribute("data-endpoint-id"))] = (matched, reason)
    return found


def test_the_search_box_explains_a_transaction_for_the_signed_in_application(
    console, tenant, other_tenant, browser
):
    # Given two endpoints of the application and one of another, and a stored Transfer of 7
    app = tenant.application_id
    sent, _ = add_endpoint(URL, contracts=[TOKEN], events=[TRANSFER], application_id=app)
    large, _ = add_endpoint(
        URL, contracts=[TOKEN], events=[TRANSFER], where=["value >= 1000"], application_id=app
    )
    theirs, _ = add_endpoint(URL, contracts=[TOKEN], application_id=other_tenant.application_id)
    event = replace(
        transfer(contract=TOKEN, block=40, log_index=2, value=7), block_timestamp=int(time.time())
    )
    with session_scope() as session:
        store_and_match(session, [event], utcnow())
    add_failed_attempt(sent, 503, 41.7)

    # When the application's user opens Explain and searches for the transaction
    sign_in(browser, console.url, tenant.key)
    browser.find_element(By.LINK_TEXT, "Explain").click()
    wait_for(browser, "tx").send_keys(event.transaction_hash)
    browser.find_element(By.ID, "explain").click()
    wait_for(browser, "explanation")

    # Then the page shows the transaction and the verdict of each of its own endpoints only
    assert browser.find_element(By.ID, "tx-hash").text == event.transaction_hash
    assert browser.find_element(By.ID, "block-number").text == "40"
    assert "database" in browser.find_element(By.ID, "source").text
    assert rows(browser) == {
        sent: (
            "matched",
            "retrying: 1 attempt failed (the last: HTTP 503); the next is due now",
        ),
        large: ("not matched", "where: value >= 1000 is false (value = 7)"),
    }
    assert theirs not in rows(browser)
    attempts = browser.find_element(By.CSS_SELECTOR, f"tr[data-endpoint-id='{sent}'] .attempt")
    assert "#1" in attempts.text and "503" in attempts.text and "HTTP 503" in attempts.text
    screenshot(browser, "explain")

    # …and at 390 px wide nothing runs off the side
    browser.set_window_size(390, 900)
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390

    # An unknown transaction is one line beside the search box
    browser.set_window_size(1280, 900)
    field = browser.find_element(By.ID, "tx")
    field.clear()
    field.send_keys("0x" + "ee" * 32)
    browser.find_element(By.ID, "explain").click()
    error = wait_for(browser, "explain-error").text
    assert "EthHook stored none of its logs" in error and "\n" not in error
    assert not browser.find_elements(By.ID, "explanation")
