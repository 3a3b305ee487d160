"""The console in a real headless Chromium: a failed delivery retried by a real Celery worker to a
real loopback receiver, enable/disable, secret rotation, a test webhook, a wrong key, a delivery
held for its chain's order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select, update

from ethhook.db import session_scope
from ethhook.db.models import Delivery, DeliveryStatus, Endpoint, Event, utcnow
from ethhook.match.service import match_stored
from tests.support.console import running_replay, screenshot, set_progress, sign_in, wait_for
from tests.support.db import publish_events
from tests.support.endpoints import add_endpoint
from tests.support.factories import TRANSFER, address, transfer
from tests.support.matcher import later, stored_batch
from tests.support.waiting import wait_until

pytestmark = pytest.mark.browser


def _text(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def _deliveries(endpoint_id: int) -> list[Delivery]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(Delivery).where(Delivery.endpoint_id == endpoint_id).order_by(Delivery.id)
            )
        )


def _accept_confirm(driver) -> None:
    alert = wait_until(lambda: _alert(driver), 5, 0.05, "the confirmation dialog")
    alert.accept()


def _alert(driver):
    from selenium.common.exceptions import NoAlertPresentException

    try:
        return driver.switch_to.alert
    except NoAlertPresentException:
        return None


def test_a_wrong_key_shows_an_error_and_stays_on_the_sign_in_page(console, tenant, browser):
    sign_in(browser, console.url, "ehk_" + "0" * 40)
    assert "That key is not valid" in _text(browser, "sign-in-error")
    assert browser.current_url.endswith("/console/sign-in")
    assert "Endpoints" not in browser.title


def test_a_failed_delivery_retried_from_the_console_gets_a_new_successful_attempt(
    console, tenant, worker, receiver, browser
):
    answers = {"status": 500}
    receiver.responders["/orders"] = lambda n: (answers["status"], {}, b'{"error":"db down"}')
    endpoint_id, secret = add_endpoint(
        receiver.url("/orders"),
        application_id=tenant.application_id,
        name="orders-service",
        chains=["ethereum"],
        contracts=[address(41)],
        events=[TRANSFER],
        rate_limit_per_s=50,
        retry_schedule="0",
    )
    add_endpoint(receiver.url("/ledger"), application_id=tenant.application_id, name="ledger")
    receiver.secrets["/orders"] = secret
    publish_events([transfer(contract=address(41), block=3, log_index=i, value=i) for i in (0, 1)])
    wait_until(
        lambda: [d.status for d in _deliveries(endpoint_id)] == [DeliveryStatus.FAILED] * 2,
        60,
        0.2,
        "two dead letters",
    )
    failed_id = _deliveries(endpoint_id)[0].id

    sign_in(browser, console.url, tenant.key)
    assert browser.current_url.endswith("/console/endpoints")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-endpoint-id="{endpoint_id}"]')
    assert "orders-service" in row.text and "enabled" in row.text and "closed" in row.text
    assert row.find_element(By.CLASS_NAME, "success-rate").text == "0.0%"
    screenshot(browser, "endpoints")

    row.find_element(By.LINK_TEXT, "orders-service").click()
    filters = wait_for(browser, "filters").text
    assert "ethereum" in filters and address(41) in filters and "Transfer(" in filters
    assert "50/s" in filters and "0 s" in filters
    assert "2 attempts, 2 failed" in browser.find_element(By.CSS_SELECTOR, "h2 .hint").text
    assert browser.find_elements(By.CSS_SELECTOR, "#minute-chart rect.bar-failed")
    screenshot(browser, "endpoint")

    browser.find_element(By.LINK_TEXT, "Failed deliveries").click()
    wait_for(browser, "failed-deliveries")
    assert browser.find_elements(By.CSS_SELECTOR, f'tr[data-delivery-id="{failed_id}"]')
    screenshot(browser, "failed-deliveries")

    browser.find_element(By.CSS_SELECTOR, f'tr[data-delivery-id="{failed_id}"] td.id a').click()
    wait_for(browser, "attempts")
    attempts = browser.find_elements(By.CSS_SELECTOR, "#attempts tbody tr")
    assert len(attempts) == 1
    assert "500" in attempts[0].text and '{"error":"db down"}' in attempts[0].text
    screenshot(browser, "delivery")

    answers["status"] = 200
    browser.find_element(By.ID, "retry").click()
    assert wait_for(browser, "flash").text == "Retrying 1 delivery now."

    def second_attempt_shown() -> bool:
        browser.refresh()
        return len(browser.find_elements(By.CSS_SELECTOR, "#attempts tbody tr")) == 2

    wait_until(second_attempt_shown, 30, 0.5, "the retry's attempt on the delivery page")
    newest = browser.find_element(By.CSS_SELECTOR, '#attempts tr[data-attempt="2"]')
    assert "200" in newest.text
    assert _text(browser, "delivery-status") == "succeeded"
    sent = receiver.on("/orders")
    assert len(sent) == 3 and sent[-1].verified and sent[-1].status == 200
    # The other failed delivery was not sent again.
    assert [d.status for d in _deliveries(endpoint_id)] == ["succeeded", "failed"]

    browser.find_element(By.LINK_TEXT, "Failed deliveries").click()
    wait_for(browser, "failed-deliveries")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#failed-deliveries tbody tr")) == 1
    browser.find_element(By.ID, "retry-all").click()
    _accept_confirm(browser)
    assert wait_for(browser, "flash").text == "Retrying 1 delivery now."
    wait_until(
        lambda: [d.status for d in _deliveries(endpoint_id)] == ["succeeded"] * 2,
        30,
        0.2,
        "the last failed delivery sent again",
    )
    assert len(receiver.on("/orders")) == 4
    browser.refresh()
    assert "No failed deliveries" in browser.page_source


def test_disable_enable_rotate_the_secret_and_send_a_test(console, tenant, receiver, browser):
    endpoint_id, old_secret = add_endpoint(
        receiver.url("/hook"), application_id=tenant.application_id, name="payments"
    )
    sign_in(browser, console.url, tenant.key)
    browser.get(f"{console.url}/console/endpoints/{endpoint_id}")

    browser.find_element(By.ID, "disable").click()
    _accept_confirm(browser)
    wait_for(browser, "enable")
    assert _text(browser, "endpoint-state") == "disabled"
    assert _text(browser, "flash") == f"Endpoint {endpoint_id} disabled."
    with session_scope() as session:
        endpoint = session.get(Endpoint, endpoint_id)
        assert endpoint is not None and not endpoint.active
        assert endpoint.disabled_reason == "disabled in the console"

    browser.find_element(By.ID, "enable").click()
    wait_for(browser, "disable")
    assert _text(browser, "endpoint-state") == "enabled"

    browser.find_element(By.ID, "rotate-secret").click()
    _accept_confirm(browser)
    new_secret = wait_for(browser, "new-secret").text
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    with session_scope() as session:
        endpoint = session.get(Endpoint, endpoint_id)
        assert endpoint is not None and endpoint.secret == new_secret
    screenshot(browser, "rotated-secret")
    browser.get(f"{console.url}/console/endpoints/{endpoint_id}")
    wait_for(browser, "filters")
    assert new_secret not in browser.page_source

    receiver.secrets["/hook"] = new_secret
    browser.find_element(By.ID, "send-test").click()
    assert wait_for(browser, "test-outcome").text == "delivered"
    assert "200" in _text(browser, "test-result")
    screenshot(browser, "test-webhook")
    (test,) = receiver.on("/hook")
    assert test.verified and test.json["type"] == "endpoint.test"
    assert test.webhook_id in _text(browser, "test-result")


def test_sign_in_page_screenshot(console, browser, db):
    browser.get(f"{console.url}/console/")
    assert browser.current_url.endswith("/console/sign-in")
    assert browser.find_element(By.ID, "key").get_attribute("type") == "password"
    screenshot(browser, "sign-in")


def test_a_running_replay_updates_its_page_without_a_reload_and_cancels(console, tenant, browser):
    endpoint_id, _ = add_endpoint("http://127.0.0.1:9/r", application_id=tenant.application_id)
    job_id = running_replay(
        endpoint_id,
        from_block=19_000_000,
        to_block=19_009_999,
        next_block=19_004_000,
        chunk_blocks=1000,
        chunks_done=5,
        blocks_done=4000,
        events=1234,
        deliveries=1234,
    )
    sign_in(browser, console.url, tenant.key)
    browser.get(f"{console.url}/console/replays/{job_id}")
    wait_for(browser, "replay-progress")
    browser.execute_script("window.sameDocument = true;")
    assert _replay_page(browser)[:3] == [4000, 10000, "running"]
    screenshot(browser, "replay")
    assert "4,000/10,000 blocks (40%), 1,234 events" in _replay_page(browser)[3]
    # The job moves on: the page shows it, still the same document (no reload).
    set_progress(job_id, blocks_done=7000, chunks_done=8, events=2000, deliveries=2000)
    wait_until(
        lambda: _replay_page(browser)[0] == 7000, 10, 0.1, "the page to show the new progress"
    )
    assert "7,000/10,000 blocks (70%), 2,000 events" in _replay_page(browser)[3]
    assert browser.execute_script("return window.sameDocument === true;")
    browser.find_element(By.ID, "cancel-replay").click()
    assert "cancelled" in wait_for(browser, "flash").text
    assert browser.find_element(By.ID, "replay-state").text == "cancelled"
    assert not browser.find_elements(By.ID, "cancel-replay")


def _replay_page(driver) -> list:
    return driver.execute_script(
        "const p = document.getElementById('replay-progress');"
        "return [p.value, p.max, document.getElementById('replay-state').textContent,"
        " document.body.innerText];"
    )


def test_a_delivery_held_for_the_chains_order_says_why_it_has_no_number(console, tenant, browser):
    token = address(43)
    endpoint_id, _ = add_endpoint(
        "http://127.0.0.1:9/ledger",
        application_id=tenant.application_id,
        contracts=[token],
        ordered="pause",
    )
    early, late = stored_batch(token, 30, 2), stored_batch(token, 31, 2)
    with session_scope() as session:
        # Nobody (beat included) matches the earlier block while the page is read.
        session.execute(
            update(Event)
            .where(Event.id.in_(early))
            .values(lease_token="m-held", lease_expires_at=utcnow() + timedelta(hours=1))
        )
        match_stored(session, late, "test", later())
    (held, _) = _deliveries(endpoint_id)
    assert (held.status, held.sequence) == (DeliveryStatus.WAITING, None)

    sign_in(browser, console.url, tenant.key)
    browser.get(f"{console.url}/console/deliveries/{held.id}")
    assert wait_for(browser, "sequence").text == (
        "not yet (held until the chain's earlier events are matched)"
    )
