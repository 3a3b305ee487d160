"""Ed25519 (`v1a`) signing: the key formats, the header's shape, and signatures that the RFC 8032
test vector and `cryptography`'s own verification agree with."""

import base64

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ethhook.deliver.ed25519 import generate_key_pair, load_private_key, public_key_of, sign_v1a
from ethhook.deliver.signing import KeyRing, generate_secret, webhook_headers

# RFC 8032, section 7.1, TEST 1: the secret key (seed), its public key, the signature of "".
SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b"
    "46bd25bf5f0595bbe24655141438e7a100b"
)
PRIVATE = "whsk_" + base64.b64encode(SEED).decode()


def public(whpk: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(whpk.removeprefix("whpk_")))


def test_the_rfc_8032_vector():
    key = load_private_key(PRIVATE)
    assert public_key_of(key) == "whpk_" + base64.b64encode(PUBLIC).decode()
    assert sign_v1a(key, b"") == "v1a," + base64.b64encode(SIGNATURE).decode()


def test_a_key_pair_is_whsk_and_whpk_and_base64_of_32_bytes():
    private, whpk = generate_key_pair()
    assert private.startswith("whsk_") and whpk.startswith("whpk_")
    assert len(base64.b64decode(private[5:])) == 32 and len(base64.b64decode(whpk[5:])) == 32
    assert public_key_of(load_private_key(private)) == whpk
    assert generate_key_pair()[0] != private


def test_the_header_is_one_v1a_signature_of_id_timestamp_body():
    private, whpk = generate_key_pair()
    headers = webhook_headers(KeyRing.of("ed25519", [private]), "msg_1", 1700000000, b"{}", "UA")
    assert set(headers) == {
        "content-type",
        "user-agent",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
    version, signature = headers["webhook-signature"].split(",")
    assert version == "v1a" and len(base64.b64decode(signature, validate=True)) == 64
    public(whpk).verify(base64.b64decode(signature), b"msg_1.1700000000.{}")
    with pytest.raises(InvalidSignature):
        public(whpk).verify(base64.b64decode(signature), b"msg_1.1700000000.{} ")


def test_during_a_rotation_both_keys_sign_newest_first_space_separated():
    (new, new_public), (old, old_public) = generate_key_pair(), generate_key_pair()
    header = KeyRing.of("ed25519", [new, old]).signature("msg_2", 1, b"[]")
    first, second = header.split(" ")
    public(new_public).verify(base64.b64decode(first.removeprefix("v1a,")), b"msg_2.1.[]")
    public(old_public).verify(base64.b64decode(second.removeprefix("v1a,")), b"msg_2.1.[]")


def test_hmac_keyring_signs_as_before():
    secret = generate_secret()
    assert (
        KeyRing.of("hmac", [secret]).signature("m", 1, b"{}")
        == webhook_headers([secret], "m", 1, b"{}", "UA")["webhook-signature"]
    )
    assert KeyRing.of("hmac", [secret]).signature("m", 1, b"{}").startswith("v1,")


def test_a_key_of_the_wrong_kind_is_refused():
    with pytest.raises(ValueError, match="whsk_"):
        KeyRing.of("ed25519", [generate_secret()])
