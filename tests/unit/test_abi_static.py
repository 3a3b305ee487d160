"""The static-argument decoder in ethhook.abi agrees with eth_abi word for word."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator

import pytest
from eth_abi import decode
from eth_utils import to_checksum_address as reference_checksum

from ethhook.abi import _NotStatic, _static_word, checksum, decode_log, to_checksum_address

TYPES = (
    "address", "bool", "uint8", "uint16", "uint24", "uint64", "uint160", "uint256", "int8",
    "int24", "int64", "int128", "int256", "bytes1", "bytes4", "bytes20", "bytes31", "bytes32",
)  # fmt: skip


def _words() -> Iterator[bytes]:
    """Edge words (zero/one-filled at every width, sign boundaries) and seeded random ones."""
    rng = random.Random(7)
    yield b"\0" * 32
    yield b"\xff" * 32
    for k in range(1, 33):
        yield b"\0" * (32 - k) + b"\xff" * k
        yield b"\xff" * (32 - k) + b"\0" * k
        yield b"\0" * (32 - k) + b"\x80" + b"\0" * (k - 1)
        yield b"\xff" * (32 - k) + b"\x7f" + b"\xff" * (k - 1)
        yield b"\0" * 31 + bytes([k])
    for _ in range(300):
        k = rng.randint(0, 32)
        tail = rng.randbytes(k)
        yield rng.randbytes(32)
        yield b"\0" * (32 - k) + tail
        yield b"\xff" * (32 - k) + tail
        yield tail + b"\0" * (32 - k)


@pytest.mark.parametrize("type_", TYPES)
def test_static_words_decode_exactly_as_eth_abi(type_: str) -> None:
    for word in _words():
        try:
            expected: tuple[str, object] = ("ok", decode([type_], word)[0])
        except Exception as exc:  # noqa: BLE001 (any rejection by eth_abi)
            expected = ("rejected", type(exc).__name__)
        try:
            mine = _static_word(type_, word)
        except _NotStatic:
            # Left to eth_abi: only words eth_abi rejects (else eth_abi would be loaded for nothing).
            assert expected[0] == "rejected", (type_, word.hex(), expected)
            continue
        assert expected == ("ok", mine), (type_, word.hex())


def test_checksum_addresses_match_eth_utils() -> None:
    rng = random.Random(11)
    for _ in range(500):
        address = "0x" + rng.randbytes(20).hex()
        assert to_checksum_address(address) == reference_checksum(address)
        assert to_checksum_address(reference_checksum(address)) == reference_checksum(address)
        assert to_checksum_address(address[2:].upper()) == reference_checksum(address)
        assert checksum(address) == checksum(address) == reference_checksum(address)


@pytest.mark.parametrize("bad", ["", "0x", "0x123", "0x" + "g" * 40, "0x" + "00" * 21])
def test_checksum_rejects_what_is_not_an_address(bad: str) -> None:
    with pytest.raises(ValueError, match="not a 20-byte hex address"):
        to_checksum_address(bad)


def test_static_events_decode_without_importing_eth_abi() -> None:
    # Given a fresh interpreter, when a Transfer log is decoded, then eth_abi was never imported
    # (it costs every deliver worker ~22 MB), and a log with a string argument does import it.
    code = (
        "import sys\n"
        "from ethhook.abi import decode_log\n"
        "sig = 'Transfer(address indexed from, address indexed to, uint256 value)'\n"
        "t0 = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef'\n"
        "a = '0x' + '00' * 12 + '11' * 20\n"
        "out = decode_log(sig, [t0, a, a], '0x' + '00' * 31 + '2a')\n"
        "assert out['args']['value'] == '42', out\n"
        "print('eth_abi' in sys.modules, 'eth_utils' in sys.modules)\n"
        "from ethhook.abi import parse_event_signature\n"
        "note = parse_event_signature('Note(string text)').topic0\n"
        "text = '0x' + (32).to_bytes(32, 'big').hex() + (2).to_bytes(32, 'big').hex()\n"
        "text += b'hi'.hex() + '00' * 30\n"
        "assert decode_log('Note(string text)', [note], text) == {'event': 'Note', 'args': "
        "{'text': 'hi'}}\n"
        "print('eth_abi' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True"]


def test_dynamic_arguments_still_decode_through_eth_abi() -> None:
    from eth_abi import encode

    from ethhook.abi import parse_event_signature

    sig = "Note(address indexed who, string text, uint256[] values)"
    topic0 = parse_event_signature(sig).topic0
    who = "0x" + "00" * 12 + "ab" * 20
    data = "0x" + encode(["string", "uint256[]"], ["hello", [1, 2**60]]).hex()
    assert decode_log(sig, [topic0, who], data) == {
        "event": "Note",
        "args": {
            "who": reference_checksum("0x" + "ab" * 20),
            "text": "hello",
            "values": ["1", str(2**60)],
        },
    }


@pytest.mark.parametrize(
    ("given", "accepted"),
    [
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", True),  # EIP-55's own example
        ("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", True),  # all lower case: no checksum
        ("0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED", True),  # all upper case: no checksum
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", False),  # one letter's case wrong
    ],
)
def test_registration_checks_a_mixed_case_address_with_this_checksum(given, accepted):
    from ethhook.exceptions import InputError
    from ethhook.service.validation import parse_address

    if accepted:
        assert parse_address(given) == given.lower()
    else:
        with pytest.raises(InputError, match="EIP-55 checksum is wrong"):
            parse_address(given)
