"""Secrets at rest: the stored form, reading it with any key, and what `reencrypt` leaves alone."""

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.dialects import postgresql, sqlite

from ethhook.db.secrets import (
    NO_KEYS,
    PREFIX,
    STORED_LENGTH,
    WRONG_KEYS,
    EncryptedSecret,
    decrypt,
    encrypt,
    is_current,
)
from ethhook.exceptions import ConfigError

OLD, NEW, OTHER = (Fernet.generate_key().decode() for _ in range(3))
SECRET = "whsec_" + "A" * 43 + "="


def test_the_newest_key_encrypts_and_any_listed_key_decrypts():
    stored = encrypt(SECRET, [OLD])
    assert stored.startswith(PREFIX) and SECRET not in stored and "whsec_" not in stored
    assert len(stored) <= STORED_LENGTH
    assert decrypt(stored, [NEW, OLD]) == SECRET
    assert decrypt(encrypt(SECRET, [NEW, OLD]), [NEW]) == SECRET
    assert encrypt(SECRET, [NEW]) != encrypt(SECRET, [NEW])  # a fresh IV every time


def test_plaintext_from_before_the_keys_reads_as_it_is():
    assert decrypt(SECRET, []) == SECRET
    assert decrypt(SECRET, [NEW]) == SECRET


@pytest.mark.parametrize(("keys", "message"), [([], NO_KEYS), ([OTHER], WRONG_KEYS)])
def test_an_unreadable_secret_is_a_config_error_naming_the_variable(keys, message):
    with pytest.raises(ConfigError) as caught:
        decrypt(encrypt(SECRET, [OLD]), keys)
    assert str(caught.value) == message and "ETHHOOK_SECRET_KEYS" in message
    assert "\n" not in message


def test_current_means_under_the_newest_key_or_plaintext_when_decrypting():
    under_old, under_new = encrypt(SECRET, [OLD]), encrypt(SECRET, [NEW])
    assert is_current(under_new, [NEW, OLD])
    assert not is_current(under_old, [NEW, OLD])
    assert not is_current(SECRET, [NEW, OLD])
    assert is_current(SECRET, [NEW], to_plaintext=True)
    assert not is_current(under_new, [NEW], to_plaintext=True)


def test_the_column_is_wide_on_postgresql_and_left_as_it_was_on_sqlite():
    column = EncryptedSecret()
    assert column.load_dialect_impl(postgresql.dialect()).length == STORED_LENGTH
    assert column.load_dialect_impl(sqlite.dialect()).length == 100
