"""The endpoint forms' failure paths in a real browser, on `ethhook api` with private targets
refused (as a deployment has them): a bad URL, a bad condition, a forbidden address, a bad
number each come back beside their field, the form as typed; a form without its CSRF token is
refused; nothing is created. Then a good form creates the endpoint, edit and delete work."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests.support.api import ApiServer
from tests.support.console import fill, new_browser, sign_in, signed_in_client, wait_for
from tests.support.console import make_tenant as tenant_named
from tests.support.factories import TRANSFER

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture(scope="module")
def server(database: str, redis_server: str) -> Iterator[ApiServer]:
    api = ApiServer({"ETHHOOK_ALLOW_PRIVATE_TARGETS": "false", "ETHHOOK_API_RATE_LIMIT": "0"})
    yield api
    api.stop()


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    browser = new_browser()
    if browser is None:
        pytest.skip("chromium and chromedriver are not installed")
    yield browser
    browser.quit()


def endpoint_count(application_id: int) -> int:
    from sqlalchemy import func, select

    from ethhook.db import session_scope
    from ethhook.db.models import Endpoint

    with session_scope() as db:
        query = select(func.count()).where(Endpoint.application_id == application_id)
        return int(db.scalar(query.select_from(Endpoint)) or 0)


def created(client, token: str) -> int:
    """The id of an endpoint made with the GOOD form."""
    made = client.post("/console/endpoints/new", data={**GOOD, "csrf_token": token})
    assert made.status_code == 200 and 'id="new-secret"' in made.text
    return int(made.text.split('data-endpoint-id="')[1].split('"')[0])


GOOD = {
    "url": "https://hooks.example.com/eth",
    "name": "treasury",
    "chains": "1",
    "events": TRANSFER,
    "where": "value >= 1000",
    "rate_limit": "5",
}

REFUSED = [
    ({"url": "ftp://hooks.example.com/x"}, "url", "only http:// and https://"),
    ({"url": "http://10.0.0.1/hook"}, "url", "refused URL"),
    ({"where": "amount > 5"}, "where", "amount"),
    ({"confirmations": "many"}, "confirmations", "expected a whole number"),
    ({"contracts": "0x1234"}, "contracts", "invalid contract address"),
]


@pytest.mark.parametrize(("change", "field", "message"), REFUSED)
def test_a_refused_create_form_says_why_beside_the_field_and_keeps_what_was_typed(
    server, driver, change, field, message
):
    tenant = tenant_named("acme")
    sign_in(driver, server.base, tenant.key)
    driver.get(server.base + "/console/endpoints/new")
    typed = {**GOOD, **change}
    fill(driver, typed)
    driver.find_element(By.ID, "save").click()
    error = wait_for(driver, f"{field}-error")
    assert message in error.text
    box = driver.find_element(By.NAME, field)
    assert box.get_attribute("aria-invalid") == "true"
    assert field in (box.get_attribute("aria-describedby") or "")
    for name, value in typed.items():  # the form as typed
        assert driver.find_element(By.NAME, name).get_attribute("value") == value
    assert len(driver.find_elements(By.CLASS_NAME, "field-error")) == 1
    assert endpoint_count(tenant.application_id) == 0


def test_a_form_without_its_csrf_token_is_refused_and_creates_nothing(server, driver):
    # In the browser: the form's token removed before it is sent.
    tenant = tenant_named("acme")
    sign_in(driver, server.base, tenant.key)
    driver.get(server.base + "/console/endpoints/new")
    fill(driver, GOOD)
    driver.execute_script("document.querySelector('#endpoint-form [name=csrf_token]').remove()")
    driver.find_element(By.ID, "save").click()
    message = wait_for(driver, "form-error").text
    assert "The form was stale or not sent by this console" in message
    for name, value in GOOD.items():  # the form as typed, with a new token: it can be sent again
        assert driver.find_element(By.ID, name).get_attribute("value") == value
    assert endpoint_count(tenant.application_id) == 0

    # Over plain HTTP: none, or a wrong one, for each form.
    client, token = signed_in_client(server.base, tenant.key)
    refused = client.post("/console/endpoints/new", data=GOOD)
    assert refused.status_code == 403 and 'id="form-error"' in refused.text
    wrong = client.post("/console/endpoints/new", data={**GOOD, "csrf_token": token + "x"})
    assert wrong.status_code == 403
    assert endpoint_count(tenant.application_id) == 0
    endpoint_id = created(client, token)
    edit = client.post(
        f"/console/endpoints/{endpoint_id}/edit", data={**GOOD, "url": "https://x.example.com/"}
    )
    assert edit.status_code == 403 and 'value="https://x.example.com/"' in edit.text
    delete = client.post(f"/console/endpoints/{endpoint_id}/delete", data={})
    assert delete.status_code == 403 and "The form was stale" in delete.text
    page = client.get(f"/console/endpoints/{endpoint_id}").text
    assert "https://hooks.example.com/eth" in page  # unchanged, still there
    assert endpoint_count(tenant.application_id) == 1


def test_another_application_cannot_see_edit_or_delete_the_endpoint(server):
    owner, other = tenant_named("acme"), tenant_named("globex")
    client, token = signed_in_client(server.base, owner.key)
    endpoint_id = created(client, token)
    intruder, their_token = signed_in_client(server.base, other.key)
    for path in ("edit", "delete"):
        assert intruder.get(f"/console/endpoints/{endpoint_id}/{path}").status_code == 404
        answer = intruder.post(
            f"/console/endpoints/{endpoint_id}/{path}", data={**GOOD, "csrf_token": their_token}
        )
        assert answer.status_code == 404
    assert endpoint_count(owner.application_id) == 1


def test_create_edit_and_delete_through_the_forms(server, driver):
    tenant = tenant_named("acme")
    sign_in(driver, server.base, tenant.key)
    driver.get(server.base + "/console/endpoints")
    wait_for(driver, "new-endpoint").click()
    wait_for(driver, "endpoint-form")
    fill(driver, {**GOOD, "finality": "safe", "retry_schedule": "0,5,60", "ordered": "pause"})
    driver.find_element(By.ID, "save").click()
    secret = wait_for(driver, "new-secret").text
    assert secret.startswith("whsec_")
    driver.find_element(By.ID, "to-endpoint").click()
    edit = wait_for(driver, "edit-endpoint")
    assert re.fullmatch(r"Endpoint \d+ · EthHook console", driver.title), driver.title
    edit.click()
    assert driver.find_element(By.NAME, "where").get_attribute("value") == "value >= 1000"
    assert driver.find_element(By.NAME, "ordered").get_attribute("value") == "pause"
    fill(driver, {"where": "value >= 5\nvalue < 100", "finality": "latest", "confirmations": "3"})
    driver.find_element(By.ID, "save").click()
    assert "saved" in wait_for(driver, "flash").text
    filters = driver.find_element(By.ID, "filters").text
    assert "value >= 5" in filters and "value < 100" in filters and "latest" in filters
    # a refused edit keeps what was typed and changes nothing
    driver.find_element(By.ID, "edit-endpoint").click()
    fill(driver, {"where": "nonsense here"})
    driver.find_element(By.ID, "save").click()
    assert wait_for(driver, "where-error").text
    assert driver.find_element(By.NAME, "where").get_attribute("value") == "nonsense here"
    driver.find_element(By.LINK_TEXT, "Cancel").click()
    assert "value >= 5" in wait_for(driver, "filters").text
    driver.find_element(By.ID, "delete-endpoint").click()
    wait_for(driver, "confirm-delete").click()
    assert "deleted" in wait_for(driver, "flash").text
    assert endpoint_count(tenant.application_id) == 0


def test_a_refused_replay_form_says_why_and_starts_nothing(server):
    from sqlalchemy import func, select

    from ethhook.db import session_scope
    from ethhook.db.models import ReplayJob

    owner, other = tenant_named("acme"), tenant_named("globex")
    client, token = signed_in_client(server.base, owner.key)
    endpoint_id = created(client, token)
    path = f"/console/endpoints/{endpoint_id}/replay"
    fields = {"chain": "1", "from_block": "10", "to_block": "", "csrf_token": token}
    missing = client.post(path, data=fields)
    assert missing.status_code == 400
    assert 'id="to_block-error"' in missing.text and "give the to block" in missing.text
    assert 'value="10"' in missing.text  # kept as typed
    backwards = client.post(path, data={**fields, "to_block": "5"})
    assert 'id="to_block-error"' in backwards.text
    assert "to_block 5 is before from_block 10" in backwards.text
    nowhere = client.post(path, data={**fields, "chain": "atlantis", "to_block": "20"})
    assert 'id="chain-error"' in nowhere.text and "unknown chain" in nowhere.text
    stale = client.post(path, data={**fields, "to_block": "20", "csrf_token": ""})
    assert stale.status_code == 403 and 'id="replay-error"' in stale.text
    assert 'value="20"' in stale.text
    intruder, their_token = signed_in_client(server.base, other.key)
    stolen = intruder.post(path, data={**fields, "to_block": "20", "csrf_token": their_token})
    assert stolen.status_code == 404
    with session_scope() as db:
        assert db.scalar(select(func.count()).select_from(ReplayJob)) == 0


def test_the_form_is_reached_by_keyboard_with_a_visible_focus(server, driver):
    from selenium.webdriver.common.keys import Keys

    tenant = tenant_named("acme")
    sign_in(driver, server.base, tenant.key)
    driver.get(server.base + "/console/endpoints/new")
    wait_for(driver, "endpoint-form")
    driver.find_element(By.ID, "url").click()
    reached, outlines = [], []
    for _ in range(30):
        focused = driver.switch_to.active_element
        reached.append(focused.get_attribute("id"))
        outlines.append(focused.value_of_css_property("outline-style"))
        if reached[-1] == "save":
            break
        focused.send_keys(Keys.TAB)
    fields = ["url", "name", "chains", "contracts", "events", "where", "confirmations"]
    fields += ["finality", "lifecycle", "rate_limit", "retry_schedule", "ordered", "signing"]
    fields += ["from_block", "live_only", "save"]
    assert reached == fields
    assert "none" not in outlines[1:], dict(zip(reached, outlines, strict=True))
    for name in fields[:-1]:  # every input has its label
        label = driver.find_element(By.CSS_SELECTOR, f'label[for="{name}"]')
        assert label.text


def test_the_operator_names_the_application_an_endpoint_is_for(server, operator_key):
    tenant = tenant_named("acme")
    client, token = signed_in_client(server.base, operator_key)
    form = client.get("/console/endpoints/new").text
    assert 'name="application_id"' in form
    missing = client.post(
        "/console/endpoints/new", data={**GOOD, "application_id": "999999", "csrf_token": token}
    )
    assert missing.status_code == 400 and 'id="form-error"' in missing.text
    made = client.post(
        "/console/endpoints/new",
        data={**GOOD, "application_id": str(tenant.application_id), "csrf_token": token},
    )
    assert made.status_code == 200 and 'id="new-secret"' in made.text
    assert endpoint_count(tenant.application_id) == 1
    own, _ = signed_in_client(server.base, tenant.key)
    assert 'name="application_id"' not in own.get("/console/endpoints/new").text


def test_an_ed25519_endpoint_shows_its_public_key_and_a_backfill_needs_the_listener(server):
    tenant = tenant_named("acme")
    client, token = signed_in_client(server.base, tenant.key)
    made = client.post(
        "/console/endpoints/new", data={**GOOD, "signing": "ed25519", "csrf_token": token}
    )
    assert made.status_code == 200 and 'id="new-public-key">whpk_' in made.text
    assert 'id="new-secret"' not in made.text
    backfill = client.post(
        "/console/endpoints/new", data={**GOOD, "from_block": "5", "csrf_token": token}
    )
    assert backfill.status_code == 400 and 'id="from_block-error"' in backfill.text
    assert "the listener has not read ethereum yet" in backfill.text
    assert endpoint_count(tenant.application_id) == 1
