"""Which addresses and ports the SSRF guard refuses, at registration and at connect time."""

import ipaddress

import pytest

from ethhook.deliver.http import post
from ethhook.deliver.http.ssrf import check_url, embedded_ipv4, forbidden_port, forbidden_reason
from ethhook.exceptions import InputError


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("10.0.0.1", True),
        ("172.16.5.4", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("::1", True),
        ("::", True),
        ("fe80::1", True),
        ("fc00::1", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:10.0.0.1", True),
        ("fd00:ec2::254", True),
        ("93.184.216.34", False),
        ("8.8.8.8", False),
        ("2606:4700:4700::1111", False),
    ],
)
def test_forbidden_addresses(address, refused):
    assert (forbidden_reason(ipaddress.ip_address(address)) is not None) is refused


# IPv6 addresses that carry an IPv4 address the network delivers to: (address, the IPv4 inside).
EMBEDDED_PRIVATE = [
    # IPv4-mapped ::ffff:0:0/96
    ("::ffff:127.0.0.1", "127.0.0.1"),
    ("::ffff:169.254.169.254", "169.254.169.254"),
    # IPv4-compatible ::/96 (deprecated)
    ("::127.0.0.1", "127.0.0.1"),
    ("::10.1.2.3", "10.1.2.3"),
    ("::169.254.169.254", "169.254.169.254"),
    # 6to4 2002::/16: the IPv4 address in bits 16..48
    ("2002:7f00:1::", "127.0.0.1"),
    ("2002:7f00:1:1234::5", "127.0.0.1"),
    ("2002:a00:1::1", "10.0.0.1"),
    ("2002:c0a8:101::", "192.168.1.1"),
    ("2002:a9fe:a9fe::", "169.254.169.254"),
    ("2002:6440:1::", "100.64.0.1"),
    # NAT64 well-known prefix 64:ff9b::/96: the IPv4 address in the last 32 bits
    ("64:ff9b::7f00:1", "127.0.0.1"),
    ("64:ff9b::a00:1", "10.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
    ("64:ff9b::192.168.0.1", "192.168.0.1"),
    # Teredo 2001::/32: server in bits 32..64, client = last 32 bits XOR 0xffffffff
    ("2001:0:7f00:1::", "127.0.0.1"),  # the server
    ("2001:0:808:808:0:0:80ff:fefe", "127.0.1.1"),  # the client (~0x80fffefe)
    ("2001:0:808:808:0:0:f5ff:fffe", "10.0.0.1"),  # the client (~0xf5fffffe)
]


@pytest.mark.parametrize(("address", "inner"), EMBEDDED_PRIVATE)
def test_an_ipv6_address_leading_to_a_private_ipv4_address_is_refused(address, inner):
    ip = ipaddress.IPv6Address(address)
    assert ipaddress.IPv4Address(inner) in embedded_ipv4(ip)
    reason = forbidden_reason(ip)
    assert reason is not None and reason.startswith(f"an IPv6 address that leads to {inner}")


@pytest.mark.parametrize(
    "address",
    ["64:ff9b:1::808:808", "64:ff9b:1:ffff::1", "64:ff9b:1:0:0:0:7f00:1"],
)
def test_local_use_nat64_is_refused_whatever_it_embeds(address):
    assert forbidden_reason(ipaddress.IPv6Address(address)) == "a local-use NAT64 address"


@pytest.mark.parametrize(
    ("address", "inner"),
    [
        ("2002:808:808::", "8.8.8.8"),  # 6to4 relaying to a public host
        ("64:ff9b::808:808", "8.8.8.8"),  # what DNS64 answers on an IPv6-only network
        ("64:ff9b::5db8:d822", "93.184.216.34"),
        ("::ffff:8.8.8.8", "8.8.8.8"),
    ],
)
def test_an_ipv6_address_leading_to_a_public_ipv4_address_is_allowed(address, inner):
    ip = ipaddress.IPv6Address(address)
    assert embedded_ipv4(ip) == [ipaddress.IPv4Address(inner)]
    assert forbidden_reason(ip) is None


@pytest.mark.parametrize(
    "address", ["2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "::1", "::", "fe80::1"]
)
def test_plain_ipv6_addresses_embed_nothing(address):
    assert embedded_ipv4(ipaddress.IPv6Address(address)) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://[2002:7f00:1::]/hook",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "https://[2001:0:7f00:1::]:8443/",
        "http://[::ffff:10.0.0.1]/",
        "http://[::127.0.0.1]/",
        "http://[64:ff9b:1::8.8.8.8]/",
    ],
)
def test_registration_refuses_an_ipv6_literal_that_leads_to_a_private_address(url):
    with pytest.raises(InputError, match="ETHHOOK_ALLOW_PRIVATE_TARGETS=true"):
        check_url(url)


def test_port_0_is_the_only_forbidden_port():
    assert forbidden_port(0) is not None
    assert [forbidden_port(p) for p in (None, 1, 80, 443, 65535)] == [None] * 5


@pytest.mark.parametrize(
    ("url", "error"),
    [
        # urllib3 would keep port 0 for the pool; the guard stops it before any DNS or socket.
        ("http://93.184.216.34:0/hook", "port 0, which no server listens on"),
        ("http://[2002:7f00:1::]:8080/", "leads to 127.0.0.1, a loopback address"),
        ("http://[64:ff9b::7f00:1]:8080/", "leads to 127.0.0.1, a loopback address"),
        ("http://[::ffff:127.0.0.1]:8080/", "leads to 127.0.0.1, a loopback address"),
        ("http://[2001:0:7f00:1::]:8080/", "leads to 127.0.0.1, a loopback address"),
    ],
)
def test_the_connect_time_guard_refuses_before_connecting(url, error):
    outcome = post(url, b"{}", {}, connect_timeout_s=1, read_timeout_s=1)
    assert outcome.status_code is None
    assert outcome.error is not None and error in outcome.error
