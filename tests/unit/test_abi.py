"""Event signatures: parsing, topic0 and decoding into JSON-safe arguments."""

import pytest
from eth_abi import encode
from eth_utils import to_checksum_address

from ethhook.abi import decode_log, parse_event_filter, parse_event_signature
from ethhook.exceptions import InputError
from tests.support.factories import TRANSFER, TRANSFER_TOPIC, address, word_address


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (TRANSFER, "Transfer(address,address,uint256)"),
        (
            "event Transfer(address indexed from, address indexed to, uint256 value);",
            "Transfer(address,address,uint256)",
        ),
        ("Deposit(uint amount, int delta, bytes32[] ids)", "Deposit(uint256,int256,bytes32[])"),
        ("Ping()", "Ping()"),
        ("Anon(address, uint8)", "Anon(address,uint8)"),
    ],
)
def test_canonical_forms(text, canonical):
    assert parse_event_signature(text).canonical == canonical


def test_transfer_topic0_is_the_well_known_hash():
    assert TRANSFER_TOPIC == "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


@pytest.mark.parametrize(
    "text",
    [
        "Transfer",
        "Transfer(address indexed from",
        "Foo(uint7 a)",
        "Foo(address a b)",
        "Foo((uint256,address) t)",
        "Foo(uint256 indexed a, uint256 indexed b, uint256 indexed c, uint256 indexed d)",
        "1Foo()",
        "Foo(address,)",
        "0x1234",
    ],
)
def test_bad_signatures_are_refused_with_a_message(text):
    with pytest.raises(InputError, match="invalid event signature"):
        parse_event_signature(text)


def test_event_filter_takes_a_raw_topic0():
    topic = "0x" + "AB" * 32
    assert parse_event_filter(topic) == (topic.lower(), None)


def test_decodes_transfer_with_big_values_as_strings():
    value = 2**200 + 7
    topics = [TRANSFER_TOPIC, word_address(address(1)), word_address(address(2))]
    decoded = decode_log(TRANSFER, topics, "0x" + encode(["uint256"], [value]).hex())
    assert decoded == {
        "event": "Transfer",
        "args": {
            "from": to_checksum_address(address(1)),
            "to": to_checksum_address(address(2)),
            "value": str(value),
        },
    }


def test_decodes_mixed_types():
    sig = (
        "Thing(uint8 indexed small, bool flag, bytes data, string name, int64 delta, address[] who)"
    )
    parsed = parse_event_signature(sig)
    data = encode(
        ["bool", "bytes", "string", "int64", "address[]"],
        [True, b"\x01\x02", "hi", -5, [address(3)]],
    )
    topics = [parsed.topic0, "0x" + encode(["uint8"], [7]).hex()]
    decoded = decode_log(sig, topics, "0x" + data.hex())
    assert decoded is not None
    args = decoded["args"]
    assert args["small"] == 7 and args["flag"] is True and args["data"] == "0x0102"
    assert args["name"] == "hi" and args["delta"] == "-5"
    assert [a.lower() for a in args["who"]] == [address(3)]


@pytest.mark.parametrize(
    ("topics", "data"),
    [
        ([TRANSFER_TOPIC], "0x"),  # wrong number of indexed topics
        (["0x" + "00" * 32, word_address(address(1)), word_address(address(2))], "0x" + "00" * 32),
        ([TRANSFER_TOPIC, word_address(address(1)), word_address(address(2))], "0x1234"),
    ],
)
def test_logs_that_do_not_fit_decode_to_none(topics, data):
    assert decode_log(TRANSFER, topics, data) is None
