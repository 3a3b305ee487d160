"""The console's session cookie: encrypted, tamper-evident, expiring; the CSRF comparison."""

from __future__ import annotations

import time
from dataclasses import replace

from cryptography.fernet import Fernet

from ethhook.config import Settings
from ethhook.console.sessions import (
    SESSION_LIFETIME_S,
    ConsoleSession,
    cookie_cipher,
    dump,
    load,
)

KEY = "ehk_" + "a" * 40


def test_a_session_survives_the_round_trip_and_hides_the_key():
    cipher = cookie_cipher(Settings())
    session = ConsoleSession.fresh(KEY).with_flash("Signed in.")
    cookie = dump(cipher, session)
    assert KEY not in cookie and "a" * 20 not in cookie
    assert load(cipher, cookie) == session


def test_forged_foreign_malformed_and_expired_cookies_are_no_session():
    cipher = cookie_cipher(Settings())
    cookie = dump(cipher, ConsoleSession.fresh(KEY))
    assert load(cipher, None) is None
    assert load(cipher, "") is None
    assert load(cipher, cookie[:-4] + "AAAA") is None
    assert load(cipher, "x" * 5000) is None
    assert load(Fernet(Fernet.generate_key()), cookie) is None
    assert load(cipher, cipher.encrypt(b"[1, 2]").decode()) is None
    assert load(cipher, cipher.encrypt(b'{"csrf": "t"}').decode()) is None
    old = replace(ConsoleSession.fresh(KEY), issued_at=time.time() - SESSION_LIFETIME_S - 1)
    assert load(cipher, dump(cipher, old)) is None


def test_the_cookie_key_comes_from_the_secret_keys_so_every_process_shares_it():
    settings = Settings(secret_keys=(Fernet.generate_key().decode(),))
    cookie = dump(cookie_cipher(settings), ConsoleSession.fresh(KEY))
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
