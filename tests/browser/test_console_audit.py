"""The console's sessions, sign-in throttle, cookie flags and bad ids, over HTTP against real
`ethhook api` processes (two of them, sharing the database, Redis and ETHHOOK_SECRET_KEYS), and
signing out in a real browser."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Interval, literal, select, update

from ethhook.db import session_scope
from ethhook.db.models import ConsoleSessionRow
from tests.support.api import ApiServer
from tests.support.console import csrf_token, sign_in, signed_in_client, wait_for
from tests.support.waiting import wait_until

pytestmark = pytest.mark.browser

COOKIE = "ethhook_console"
SECRET_KEYS = Fernet.generate_key().decode()
# Server A sits behind a proxy on loopback; server B trusts no proxy.
SHARED = {
    "ETHHOOK_API_RATE_LIMIT": "0",
    "ETHHOOK_SECRET_KEYS": SECRET_KEYS,
    "ETHHOOK_CONSOLE_SIGN_IN_FAILURES_PER_MIN": "3",
    "ETHHOOK_CONSOLE_SIGN_IN_FAILURES_GLOBAL_PER_MIN": "5",
}
WRONG_KEY = "ehk_" + "x" * 43


@pytest.fixture(scope="module")
def servers(database: str, redis_server: str) -> Iterator[tuple[ApiServer, ApiServer]]:
    a = ApiServer({**SHARED, "ETHHOOK_TRUSTED_PROXIES": "127.0.0.1"})
    b = ApiServer(SHARED)
    yield a, b
    a.stop()
    b.stop()


def client(server: ApiServer, cookie: str | None = None) -> httpx.Client:
    """A client of the server's console, with this session cookie (a copy of another's)."""
    cookies = {COOKIE: cookie} if cookie is not None else None
    return httpx.Client(base_url=server.base, follow_redirects=False, timeout=30, cookies=cookies)


def opens_the_console(server: ApiServer, cookie: str) -> bool:
    answer = client(server, cookie).get("/console/endpoints")
    assert answer.status_code in (200, 303), answer.text
    return answer.status_code == 200


def try_key(server: ApiServer, key: str, forwarded_for: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    visitor = client(server)
    token = csrf_token(visitor.get("/console/sign-in").text)
    data = {"csrf_token": token, "key": key}
    return visitor.post("/console/sign-in", data=data, headers=headers)


def move_sessions(**back: timedelta) -> None:
    """Move every console session's times back (as if that much time had passed)."""
    columns = {
        name: getattr(ConsoleSessionRow, name) - literal(delta, Interval())
        for name, delta in back.items()
    }
    with session_scope() as db:
        db.execute(update(ConsoleSessionRow).values(**columns))


def session_rows() -> int:
    with session_scope() as db:
        return len(db.scalars(select(ConsoleSessionRow.id)).all())


# --- sessions end for good (finding 5) ----------------------------------------------------------


def test_a_cookie_from_before_sign_out_opens_nothing_on_any_process_or_after_a_restart(
    servers, tenant
):
    a, b = servers
    visitor, token = signed_in_client(a.base, tenant.key)
    kept, _ = signed_in_client(a.base, tenant.key)
    copied = visitor.cookies[COOKIE]
    assert opens_the_console(b, copied)

    answer = visitor.post("/console/sign-out", data={"csrf_token": token})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in"

    assert not opens_the_console(a, copied)
    assert not opens_the_console(b, copied)
    # An API process started after the sign-out (a restart) refuses it too, and keeps the
    # session that was not signed out.
    restarted = ApiServer(SHARED)
    try:
        assert not opens_the_console(restarted, copied)
        assert opens_the_console(restarted, kept.cookies[COOKIE])
    finally:
        restarted.stop()


def test_signing_in_again_ends_the_session_before(servers, tenant, other_tenant):
    a, _ = servers
    visitor, _ = signed_in_client(a.base, tenant.key)
    before = visitor.cookies[COOKIE]
    token = csrf_token(visitor.get("/console/sign-in").text)
    answer = visitor.post("/console/sign-in", data={"csrf_token": token, "key": other_tenant.key})
    assert answer.status_code == 303
    assert not opens_the_console(a, before)
    assert opens_the_console(a, visitor.cookies[COOKIE])


def test_a_session_unused_for_the_idle_timeout_ends(servers, tenant):
    a, _ = servers
    visitor, _ = signed_in_client(a.base, tenant.key)
    # Used 29 minutes ago: still open, and the visit counts as use.
    move_sessions(last_seen_at=timedelta(minutes=29))
    assert visitor.get("/console/endpoints").status_code == 200
    move_sessions(last_seen_at=timedelta(minutes=29))
    assert visitor.get("/console/endpoints").status_code == 200

    move_sessions(last_seen_at=timedelta(minutes=31))
    answer = visitor.get("/console/endpoints")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in"
    assert "Your session ended." in visitor.get("/console/sign-in").text


def test_a_session_ends_at_its_lifetime_even_in_use(servers, tenant):
    a, _ = servers
    visitor, _ = signed_in_client(a.base, tenant.key)
    move_sessions(expires_at=timedelta(hours=12, seconds=1))
    assert visitor.get("/console/endpoints").status_code == 303
    # The next sign-in deletes the rows of sessions past their lifetime: the table stays small.
    assert session_rows() == 1
    signed_in_client(a.base, tenant.key)
    assert session_rows() == 1


# --- failed sign-ins are throttled (finding 14) -------------------------------------------------


def test_failed_sign_ins_from_one_address_are_throttled_on_every_process(servers, tenant):
    a, b = servers
    for _ in range(3):
        assert try_key(a, WRONG_KEY).status_code == 401

    refused = try_key(a, WRONG_KEY)
    assert refused.status_code == 429
    assert "Too many failed sign-ins from your address: try again in" in refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 20
    # The right key is refused too while the address waits: the answer tells nothing.
    assert try_key(a, tenant.key).status_code == 429
    # The other process shares the count; it trusts no proxy, so a forged X-Forwarded-For
    # does not make the client someone else.
    assert try_key(b, tenant.key, forwarded_for="198.51.100.7").status_code == 429
    # Behind the trusted proxy (A trusts 127.0.0.1), another client is another address.
    assert try_key(a, tenant.key, forwarded_for="198.51.100.7").status_code == 303

    # After the wait, one more try (GCRA: 3 a minute, one every 20 s once the burst is spent).
    wait_s = int(refused.headers["retry-after"])
    wait_until(lambda: try_key(a, tenant.key).status_code == 303, wait_s + 30, 1, "the wait")


def test_successful_sign_ins_are_not_counted_and_all_addresses_share_a_global_limit(
    servers, tenant
):
    a, _ = servers
    for _ in range(6):
        assert try_key(a, tenant.key).status_code == 303
    assert try_key(a, WRONG_KEY).status_code == 401

    # Five failures a minute from everyone together (ETHHOOK_..._GLOBAL_PER_MIN=5).
    for address in ("198.51.100.1", "198.51.100.1", "198.51.100.2", "198.51.100.2"):
        assert try_key(a, WRONG_KEY, forwarded_for=address).status_code == 401
    answer = try_key(a, tenant.key, forwarded_for="198.51.100.3")
    assert answer.status_code == 429
    assert "Too many failed sign-ins from all addresses together: try again in" in answer.text


# --- the Secure flag behind a TLS-terminating proxy (finding 15) --------------------------------


def session_cookie(answer: httpx.Response) -> str:
    cookies = [c for c in answer.headers.get_list("set-cookie") if c.startswith(COOKIE + "=")]
    assert len(cookies) == 1, answer.headers
    return cookies[0]


def test_the_cookie_is_secure_when_a_trusted_proxy_says_https(servers, db):
    a, b = servers
    https = {"X-Forwarded-Proto": "https"}
    assert "; secure" in session_cookie(client(a).get("/console/sign-in", headers=https)).lower()
    assert "; secure" not in session_cookie(client(a).get("/console/sign-in")).lower()
    # From a peer that is not a trusted proxy, the header is anyone's word: not believed.
    assert (
        "; secure" not in session_cookie(client(b).get("/console/sign-in", headers=https)).lower()
    )


def test_the_cookie_is_always_secure_when_told(database, redis_server, db):
    server = ApiServer({"ETHHOOK_CONSOLE_SECURE_COOKIE": "true"})
    try:
        assert "; secure" in session_cookie(client(server).get("/console/sign-in")).lower()
    finally:
        server.stop()


# --- ids typed as text are checked as ASCII digits (finding 3, console part) --------------------


def test_ids_and_cursors_that_are_not_ascii_digits_are_the_400_page(servers, tenant):
    a = servers[0]
    visitor, token = signed_in_client(a.base, tenant.key)
    # Superscript two, Arabic-Indic three, fullwidth three: str.isdigit() says yes to all three.
    for value in ("²", "٣", "３", "1 ", "+1", "0x1", "1e3", "99999999999999999999"):
        answer = visitor.get("/console/failed", params={"endpoint": value})
        assert answer.status_code == 400, value
        assert "expected a positive integer id" in answer.text
        answer = visitor.post(
            "/console/failed/retry", data={"csrf_token": token, "endpoint_id": value}
        )
        assert answer.status_code == 400, value
        assert "expected a positive integer id" in answer.text
    for path in ("/console/failed", "/console/endpoints"):
        for cursor in ("²", "٣", "djE6²"):
            answer = visitor.get(path, params={"cursor": cursor})
            assert answer.status_code == 400, (path, cursor)
            assert "invalid cursor" in answer.text


# --- in a real browser --------------------------------------------------------------------------


def test_signing_out_in_the_browser_ends_the_session_for_a_copy_of_its_cookie(
    console, tenant, browser
):
    sign_in(browser, console.url, tenant.key)
    assert browser.current_url.endswith("/console/endpoints")
    copied = browser.get_cookie(COOKIE)["value"]
    assert (
        httpx.get(console.url + "/console/endpoints", cookies={COOKIE: copied}).status_code == 200
    )

    browser.find_element("css selector", "form[action='/console/sign-out'] button").click()
    assert "Signed out." in wait_for(browser, "flash").text
    answer = httpx.get(console.url + "/console/endpoints", cookies={COOKIE: copied})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in"
