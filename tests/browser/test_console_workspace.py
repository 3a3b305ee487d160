"""Acceptance (issue 25): the console as a customer's whole workspace, in a real Chromium, on
`ethhook api` with anvil, `ethhook listen`, a Celery worker and a replay worker.

Signed in with an application key, the customer creates an endpoint through the form with a
`where` condition, pointing at a loopback receiver; its webhooks arrive, verified with the secret
the page showed; a new condition filters the next events; a replay started from the endpoint's
page runs to its end on a page that updates itself; a delivery found by transaction hash opens
its explanation; the endpoint is deleted. At 390 px wide (a phone) the same flow saves a
screenshot of each page (ETHHOOK_SCREENSHOTS=docs/console)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests.support.api import ApiServer
from tests.support.chain import Token
from tests.support.console import (
    fill,
    make_tenant,
    new_browser,
    phone_size,
    screenshot,
    sign_in,
    wait_for,
)
from tests.support.factories import TRANSFER
from tests.support.listener import wait_for_cursor
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.usefixtures("db", "worker")]


@pytest.fixture()
def chain(
    start_anvil, start_listener, start_replay_worker
) -> Iterator[tuple[Token, ApiServer, Any]]:
    """A token on anvil; a replay worker and the console reach the node; and a function that
    starts the listener (once the endpoint is there: a listener loads the contracts it watches
    at start, then every 2 s)."""
    node = start_anvil(chain_id=1)
    token = Token(node)
    env = {"ETHEREUM_HTTP": node.http_url}
    start_replay_worker(env)
    api = ApiServer({**env, "ETHHOOK_API_RATE_LIMIT": "0"})

    def listen() -> None:
        start_listener(env).wait_started(1)

    yield token, api, listen
    api.stop()


def values_on(receiver, path: str) -> list[int]:
    return sorted(int(r.json["data"]["decoded"]["args"]["value"]) for r in receiver.on(path))


@pytest.mark.parametrize("width", [1280, 390])
def test_a_customer_runs_an_endpoint_from_the_console(chain, receiver, width):
    token, api, listen = chain
    tenant = make_tenant("acme")
    driver: Any = new_browser()
    if driver is None:
        pytest.skip("chromium and chromedriver are not installed")
    try:
        if width < 600:
            phone_size(driver, width)
        assert driver.execute_script("return window.innerWidth") == width
        _workspace(driver, api.base, tenant, token, receiver, width, listen)
    finally:
        driver.quit()


def _shot(driver: Any, width: int, name: str) -> None:
    if width < 600:  # the phone's pages are the ones the docs show
        # Nothing wider than the phone: no sideways scrolling of the page.
        wide = driver.execute_script(
            "return [document.documentElement.scrollWidth, [...document.querySelectorAll('body *')]"
            ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
            ".map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 8)]"
        )
        assert wide[0] <= width, (name, wide)
        screenshot(driver, f"phone-{name}", width)


def _workspace(driver, base, tenant, token, receiver, width, listen) -> None:
    shot = lambda name: _shot(driver, width, name)  # noqa: E731
    sign_in(driver, base, tenant.key)
    assert driver.current_url.endswith("/console/endpoints")

    # Create: a Transfer condition, to a loopback receiver; the secret is shown once.
    wait_for(driver, "new-endpoint").click()
    wait_for(driver, "endpoint-form")
    fill(
        driver,
        {
            "url": receiver.url("/hook"),
            "name": "big-transfers",
            "chains": "ethereum",
            "contracts": token.address,
            "events": TRANSFER,
            "where": "value >= 100",
        },
    )
    shot("new-endpoint")
    driver.find_element(By.ID, "save").click()
    secret = wait_for(driver, "new-secret").text
    receiver.secrets["/hook"] = secret
    shot("created")
    driver.find_element(By.ID, "to-endpoint").click()
    wait_for(driver, "filters")
    endpoint_url = driver.current_url

    # Its webhooks arrive, verified with that secret: only the Transfers the condition selects.
    listen()
    token.emit_transfers(10, 95)  # values 95 … 104
    wait_until(lambda: len(receiver.on("/hook")) >= 5, 60, 0.2, "the first five webhooks")
    assert all(r.verified for r in receiver.on("/hook"))

    # Edit the condition: the next Transfers are filtered by the new one.
    driver.find_element(By.ID, "edit-endpoint").click()
    fill(driver, {"where": "value >= 200"})
    shot("edit-endpoint")
    driver.find_element(By.ID, "save").click()
    assert "saved" in wait_for(driver, "flash").text
    second_tx = token.emit_transfers(10, 195)  # values 195 … 204
    wait_for_cursor(1, token.node.block_number())
    wait_until(lambda: len(receiver.on("/hook")) >= 10, 60, 0.2, "five more webhooks")
    assert values_on(receiver, "/hook") == [*range(100, 105), *range(200, 205)]
    assert all(r.verified for r in receiver.on("/hook"))

    # A replay of the second transaction's block, started from the endpoint's page, runs to its
    # end on a page that updates itself (the same document throughout).
    block = int(token.node.rpc("eth_getTransactionReceipt", second_tx)["blockNumber"], 16)
    driver.get(endpoint_url)
    shot("endpoint")
    fill(driver, {"chain": "ethereum", "from_block": str(block), "to_block": str(block)})
    driver.find_element(By.ID, "start-replay").click()
    wait_for(driver, "replay-progress")
    driver.execute_script("window.sameDocument = true;")
    wait_until(
        lambda: driver.find_element(By.ID, "replay-state").text == "done",
        60,
        0.2,
        "the replay to finish",
    )
    assert driver.execute_script("return window.sameDocument === true;")
    # The block's 10 Transfers read again; the 5 the condition selects delivered again.
    line = driver.find_element(By.ID, "replay-line").text
    assert "1/1 blocks (100%), 10 events, 5 deliveries" in line
    assert not driver.find_elements(By.ID, "cancel-replay")
    shot("replay")
    wait_until(lambda: len(receiver.on("/hook")) >= 15, 60, 0.2, "the replayed webhooks")
    assert values_on(receiver, "/hook") == sorted(
        [*range(100, 105), *range(200, 205), *range(200, 205)]
    )

    # The delivery of a transaction, found by its hash, and its explanation.
    driver.find_element(By.LINK_TEXT, "Deliveries").click()
    fill(driver, {"tx": second_tx})
    driver.find_element(By.ID, "search").click()
    wait_until(lambda: "tx=" in driver.current_url, 10, 0.05, "the search's answer")
    # The transaction's five, each delivered live and again by the replay.
    assert wait_for(driver, "found-count").text.startswith("5 deliveries found")
    shot("deliveries")
    driver.find_element(By.ID, "explain-tx").click()
    assert wait_for(driver, "tx-hash").text == second_tx.lower()
    shot("explain")

    # Delete it, after the confirmation page.
    driver.get(endpoint_url)
    wait_for(driver, "delete-endpoint").click()
    wait_for(driver, "confirm-delete")
    shot("delete-endpoint")
    driver.find_element(By.ID, "confirm-delete").click()
    assert "deleted" in wait_for(driver, "flash").text
    assert not driver.find_elements(By.CSS_SELECTOR, "tr[data-endpoint-id]")
    shot("endpoints")
