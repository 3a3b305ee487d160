"""Browser-tier fixtures: the console served in the test process, two tenants, and a headless
Chromium driven by Selenium (helpers in tests/support/console.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.console import CHROMEDRIVER, CHROMIUM, ConsoleServer, Tenant, make_tenant


@pytest.fixture(scope="session")
def console(database: str, redis_server: str) -> Iterator[ConsoleServer]:
    server = ConsoleServer()
    yield server
    server.stop()


@pytest.fixture()
def tenant(db: None) -> Tenant:
    return make_tenant("acme")


@pytest.fixture()
def other_tenant(db: None) -> Tenant:
    return make_tenant("globex")


@pytest.fixture()
def browser() -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(
            "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,900")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()
