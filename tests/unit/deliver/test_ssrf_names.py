"""Host names getaddrinfo cannot encode fail to resolve like any other name, in every client."""

import socket

import pytest

from ethhook.deliver import http
from ethhook.deliver.http import ssrf

NAMES = ["a..b", "." + "example", "x" * 64 + ".example"]


@pytest.mark.parametrize("host", NAMES)
def test_the_guard_reports_a_name_that_cannot_be_encoded_as_unresolved(host):
    with pytest.raises(socket.gaierror, match="not a valid host name"):
        list(ssrf.checked_addresses(host, host, 80))
    ssrf.check_url(f"http://{host}/")  # accepted at registration, as any name not resolving yet


@pytest.mark.parametrize("client", [http.post_urllib3, http.post_gevent])
@pytest.mark.parametrize("host", NAMES)
def test_both_clients_fail_the_request_with_an_outcome(client, host):
    outcome = client(f"http://{host}/hook", b"{}", {}, 1.0, 1.0)
    assert outcome.status_code is None
    assert outcome.error and outcome.error.startswith(
        f"connection error: Failed to resolve '{host}'"
    )
