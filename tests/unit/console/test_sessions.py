"""The console's session cookie: encrypted, tamper-evident, expiring; the CSRF comparison."""

from __future__ import annotations

import time
from dataclasses import replace

from cryptography.fernet import Fernet

from ethhook.config import Settings
from ethhook.console.sessions import ConsoleSession, cookie_cipher, dump

SESSION_ID = "s" * 43
LIFETIME_S = Settings().console_session_lifetime_s


def load(cipher: Fernet, cookie: str | None) -> ConsoleSession | None:
    from ethhook.console.sessions import load as load_cookie

    return load_cookie(cipher, cookie, LIFETIME_S)


def test_a_session_survives_the_round_trip_and_hides_its_id():
    cipher = cookie_cipher(Settings())
    session = ConsoleSession.fresh(SESSION_ID).with_flash("Signed in.")
    cookie = dump(cipher, session)
    assert SESSION_ID not in cookie and "s" * 20 not in cookie
    assert load(cipher, cookie) == session


def test_forged_foreign_malformed_and_expired_cookies_are_no_session():
    cipher = cookie_cipher(Settings())
    cookie = dump(cipher, ConsoleSession.fresh(SESSION_ID))
    assert load(cipher, None) is None
    assert load(cipher, "") is None
    assert load(cipher, cookie[:-4] + "AAAA") is None
    assert load(cipher, "x" * 5000) is None
    assert load(Fernet(Fernet.generate_key()), cookie) is None
    assert load(cipher, cipher.encrypt(b"[1, 2]").decode()) is None
    assert load(cipher, cipher.encrypt(b'{"csrf": "t"}').decode()) is None
    old = replace(ConsoleSession.fresh(SESSION_ID), issued_at=time.time() - LIFETIME_S - 1)
    assert load(cipher, dump(cipher, old)) is None
    # Made by this server's key, so never seen in practice; refused all the same.
    for odd in (
        b'{"csrf": 5, "issued_at": 1}',
        b'{"csrf": "t", "issued_at": "1"}',
        b'{"csrf": "t", "issued_at": NaN}',
        b'{"csrf": "t", "issued_at": true}',
        b'{"csrf": "t", "issued_at": 1e300}',
        b'{"csrf": "t", "issued_at": 1, "session_id": ["x"]}',
    ):
        assert load(cipher, cipher.encrypt(odd).decode()) is None, odd


def test_the_cookie_key_comes_from_the_secret_keys_so_every_process_shares_it():
    settings = Settings(secret_keys=(Fernet.generate_key().decode(),))
    cookie = dump(cookie_cipher(settings), ConsoleSession.fresh(SESSION_ID))
    assert load(cookie_cipher(settings), cookie) is not None
    # Without keys each process makes its own: a cookie from another one is no session.
    assert (
        load(cookie_cipher(Settings()), dump(cookie_cipher(Settings()), ConsoleSession.fresh()))
        is None
    )


def test_only_the_sessions_own_token_matches():
    session = ConsoleSession.fresh()
    assert session.token_matches(session.csrf)
    assert not session.token_matches(None)
    assert not session.token_matches("")
    assert not session.token_matches(session.csrf + "x")
    assert not session.token_matches(ConsoleSession.fresh().csrf)
    assert session.csrf != ConsoleSession.fresh().csrf
