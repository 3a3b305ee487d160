"""Servers listen on 127.0.0.1 unless a deployment file says otherwise, and says why.

(`tests/e2e/test_up.py` checks the sockets of a running `ethhook up`.)
"""

from __future__ import annotations

import re

import pytest

from ethhook.config import load_settings
from tests.support.env import ROOT

yaml = pytest.importorskip("yaml", reason="PyYAML (test extra) reads the deployment files")

SCRAPED_SERVICES = ("listener", "match-worker", "deliver-worker", "maintenance-worker")
SCRAPED_UNITS = (
    "ethhook-listener.service",
    "ethhook-match-worker.service",
    "ethhook-deliver-worker.service",
    "ethhook-maintenance-worker.service",
)


def test_the_metrics_servers_and_the_api_default_to_loopback():
    assert load_settings({}).metrics_host == "127.0.0.1"
    assert load_settings({}).api_host == "127.0.0.1"


def test_flower_defaults_to_loopback_and_takes_an_override():
    script = (ROOT / "workers" / "flower.sh").read_text()
    assert '--address="${FLOWER_ADDRESS:-127.0.0.1}"' in script


def test_compose_opens_only_what_prometheus_scrapes_or_the_host_publishes():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in SCRAPED_SERVICES:
        assert services[name]["environment"]["ETHHOOK_METRICS_HOST"] == "0.0.0.0", name
    assert services["flower"]["environment"]["FLOWER_ADDRESS"] == "0.0.0.0"
    assert services["api"]["environment"]["ETHHOOK_API_HOST"] == "0.0.0.0"
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_systemd_opens_only_the_scraped_units_and_says_why():
    for unit in sorted((ROOT / "ops" / "systemd").glob("*.service")):
        text = unit.read_text()
        hosts = re.findall(r"^Environment=ETHHOOK_METRICS_HOST=(\S+)$", text, re.MULTILINE)
        assert hosts == (["0.0.0.0"] if unit.name in SCRAPED_UNITS else []), unit.name
        if hosts:
            assert "Prometheus scrapes" in text, unit.name
    env = (ROOT / "ops" / "systemd" / "ethhook.env.example").read_text()
    assert not re.search(r"^ETHHOOK_METRICS_HOST=", env, re.MULTILINE)
    assert re.search(r"^FLOWER_ADDRESS=127\.0\.0\.1$", env, re.MULTILINE)
    assert re.search(r"^ETHHOOK_API_HOST=127\.0\.0\.1$", env, re.MULTILINE)
    api_unit = (ROOT / "ops" / "systemd" / "ethhook-api.service").read_text()
    assert "Environment=ETHHOOK_API_HOST" not in api_unit
