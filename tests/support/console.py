"""The web console for tests: served by uvicorn in the test process, tenants made through the
service layer, Selenium steps (sign in, wait for an element, screenshots) and an HTTP client that
signs in like a browser.

Screenshots of the pages are saved only when ETHHOOK_SCREENSHOTS names a folder (e.g.
`ETHHOOK_SCREENSHOTS=docs/console pytest tests/browser`), so that CI leaves the tree clean.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.support.env import ROOT
from tests.support.waiting import free_port, wait_until


@dataclass(frozen=True)
class Tenant:
    application_id: int
    key: str


class ConsoleServer:
    """The HTTP API's app with the console mounted, as `ethhook api` serves it, by uvicorn in a
    thread of the test process."""

    def __init__(self) -> None:
        import uvicorn

        from ethhook.api.app import create_app
        from ethhook.config import get_settings
        from ethhook.console import mount

        settings = get_settings()
        app = create_app(settings)
        mount(app, settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)
        self._thread.start()
        wait_until(lambda: self.server.started, 30, 0.05, "the console server to start")

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(10)


def make_tenant(name: str) -> Tenant:
    from ethhook.db import session_scope
    from ethhook.service.apps import create_application
    from ethhook.service.scope import OPERATOR

    with session_scope() as session:
        created = create_application(session, name, scope=OPERATOR)
    return Tenant(created.application.id, created.api_key)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def new_browser(width: int = 1280, height: int = 900) -> Any:
    """A headless Chromium (the caller quits it); None when it is not installed."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    return driver


def fill(driver: Any, fields: dict[str, str]) -> None:
    """Type into the page's form fields, each found by its id, which is also its `name` (text
    boxes and text areas are cleared first; a select takes the option's value)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    for name, value in fields.items():
        element = driver.find_element(By.ID, name)
        assert element.get_attribute("name") == name
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)


def screenshot(driver: Any, name: str, width: int = 1280) -> None:
    """Save the whole page as <ETHHOOK_SCREENSHOTS>/<name>.png when that variable is set, laid
    out `width` CSS pixels wide (a page at a phone's 390 stays that wide after)."""
    folder = os.environ.get("ETHHOOK_SCREENSHOTS")
    if not folder:
        return
    path = Path(folder) if Path(folder).is_absolute() else ROOT / folder
    path.mkdir(parents=True, exist_ok=True)
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    metrics = {"width": width, "height": max(720, height), "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        driver.save_screenshot(str(path / f"{name}.png"))
    finally:
        if width < 600:
            phone_size(driver, width)
        else:
            driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def phone_size(driver: Any, width: int = 390, height: int = 844) -> None:
    """Lay pages out `width` CSS px wide, as a phone shows them (a window is at least 500 px
    wide; Chromium's mobile emulation misplaces Selenium's clicks, so it is not used)."""
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def sign_in(driver: Any, base_url: str, key: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base_url}/console/sign-in")
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.ID, "sign-in").click()
    wait_until(
        lambda: (
            driver.find_elements(By.ID, "sign-in-error")
            or not driver.current_url.endswith("/console/sign-in")
        ),
        10,
        0.05,
        "the answer to signing in",
    )


def wait_for(driver: Any, element_id: str) -> Any:
    """The element with this id, once the page that has it has loaded (a click on a link or a
    form button may return before the next page is there)."""
    from selenium.webdriver.common.by import By

    return wait_until(lambda: driver.find_elements(By.ID, element_id), 10, 0.05, element_id)[0]


# --- an HTTP client that signs in like a browser ------------------------------------------------

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def signed_in_client(base_url: str, key: str) -> tuple[httpx.Client, str]:
    """A client with a console session for `key`, and the session's CSRF token."""
    client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)
    token = csrf_token(client.get("/console/sign-in").text)
    answer = client.post("/console/sign-in", data={"csrf_token": token, "key": key})
    assert answer.status_code == 303, answer.text
    page = client.get("/console/endpoints")
    assert page.status_code == 200
    return client, csrf_token(page.text)


def running_replay(endpoint_id: int, **progress: int) -> int:
    """A running replay job on chain 1 for the endpoint, with this range and progress; its id.

    Held by a chunk message for an hour, so that beat (a worker may be running) leaves it."""
    from ethhook.db import session_scope
    from ethhook.db.models import ReplayJob, ReplayState, utcnow

    with session_scope() as session:
        job = ReplayJob(
            chain_id=1,
            endpoint_id=endpoint_id,
            state=ReplayState.RUNNING,
            lease_token="held-by-the-test",
            lease_expires_at=utcnow() + timedelta(hours=1),
            **progress,
        )
        session.add(job)
        session.flush()
        return job.id


def set_progress(job_id: int, **progress: int) -> None:
    """Move a replay job on, as its chunks would."""
    from sqlalchemy import update

    from ethhook.db import session_scope
    from ethhook.db.models import ReplayJob

    with session_scope() as session:
        session.execute(update(ReplayJob).where(ReplayJob.id == job_id).values(**progress))
