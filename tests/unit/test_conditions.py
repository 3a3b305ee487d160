"""`--where` conditions: every operator, every value type, every error, the integer bounds."""

from __future__ import annotations

import pytest
from eth_hash.auto import keccak as raw_keccak

from ethhook.abi import decode_log, keccak, parse_event_signature
from ethhook.conditions import canonical_args, compiled, parse_condition, topic_key, topic_word
from ethhook.exceptions import InputError

TRANSFER = parse_event_signature(
    "Transfer(address indexed from, address indexed to, uint256 value)"
)
KITCHEN = parse_event_signature(
    "Kitchen(int256 indexed delta, bool indexed flag, bytes32 indexed tag, uint8 small, "
    "int8 tiny, bool ok, bytes4 sel, bytes blob, string memo, address who, uint256[] list)"
)
HASHED = parse_event_signature("Named(string indexed name, bytes indexed raw)")
A = "0x" + "aa" * 20
B = "0x" + "bb" * 20
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"  # EIP-55 mixed case


@pytest.mark.parametrize(
    ("text", "op", "values"),
    [
        ("to == " + A, "==", (A,)),
        ("to != " + A.upper().replace("0X", "0x"), "!=", (A,)),  # all upper case is accepted
        ("from == " + USDC, "==", (USDC.lower(),)),  # a correct checksum is accepted
        (f"from in ({A}, {B})", "in", (A, B)),
        (f"from in({A},{B})", "in", (A, B)),
        ("value == 0", "==", (0,)),
        ("value != 7", "!=", (7,)),
        ("value < 10", "<", (10,)),
        ("value <= 10", "<=", (10,)),
        ("value > 10", ">", (10,)),
        ("value >= 1000000000000000000", ">=", (10**18,)),
        ("value>=5", ">=", (5,)),
        ("  value   >=   5  ", ">=", (5,)),
        (f"value >= {2**255}", ">=", (2**255,)),
        (f"value <= {2**256 - 1}", "<=", (2**256 - 1,)),
        ("value in (1, 2, 3)", "in", (1, 2, 3)),
    ],
)
def test_transfer_conditions_parse_to_canonical_values(text, op, values):
    condition = parse_condition(text, TRANSFER)

    assert (condition.op, condition.values, condition.text) == (op, values, text.strip())


@pytest.mark.parametrize(
    ("text", "values"),
    [
        (f"delta == {-(2**255)}", (-(2**255),)),
        (f"delta == {2**255 - 1}", (2**255 - 1,)),
        ("delta < -5", (-5,)),
        ("flag == true", (True,)),
        ("ok != false", (False,)),
        ("tag == 0x" + "AB" * 32, ("0x" + "ab" * 32,)),
        ("small <= 255", (255,)),
        ("tiny >= -128", (-128,)),
        ("sel == 0xa9059cbb", ("0xa9059cbb",)),
        ("blob == 0x", ("0x",)),
        ("blob in (0x01, 0x0203)", ("0x01", "0x0203")),
        ('memo == "hello, \\"world\\" (x)"', ('hello, "world" (x)',)),
        ('memo in ("a", "b")', ("a", "b")),
        ("who == " + A, (A,)),
    ],
)
def test_every_value_type_parses(text, values):
    assert parse_condition(text, KITCHEN).values == values


def test_an_indexed_string_or_bytes_is_compared_by_its_hash():
    name = parse_condition('name == "alice"', HASHED)
    raw = parse_condition("raw == 0x0102", HASHED)
    name_hash = "0x" + keccak("alice").hex()
    raw_hash = "0x" + bytes(raw_keccak(b"\x01\x02")).hex()
    log = decode_log(HASHED.text, [HASHED.topic0, name_hash, raw_hash], "0x")
    assert log is not None

    assert (name.values, raw.values) == ((name_hash,), (raw_hash,))
    args = canonical_args(HASHED, log["args"])
    assert name.holds(args) and raw.holds(args)
    assert topic_key((name,), HASHED) == (1, (name_hash,))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at column 1: empty condition; expected e.g. 'value >= 1000'"),
        ("valu > 1", "at column 1: Transfer has no argument 'valu' (it has: from, to, value)"),
        ("value", "at column 6: expected an operator: ==, !=, <, <=, >, >=, in"),
        ("value = 5", "at column 7: unexpected '='; use =="),
        ("value => 5", "at column 7: unexpected '='; use =="),
        ("value ~ 5", "at column 7: expected an operator: ==, !=, <, <=, >, >=, in"),
        ("value >=", "at column 9: expected a value after >="),
        ("value >= 5 6", "at column 12: unexpected '6' after the value"),
        ("value >= 1x", "at column 10: expected a decimal integer for value (uint256), found '1x'"),
        ("value >= 1e18", "at column 10: expected a decimal integer for value (uint256)"),
        ("value >= -1", "at column 10: out of range for value (uint256: 0 to 2^256-1), found '-1'"),
        (f"value >= {2**256}", "at column 10: out of range for value (uint256: 0 to 2^256-1)"),
        ('value > "x"', """at column 9: value is uint256, not a string, found '"x"'"""),
        ("value >= (", "at column 10: expected a value, found '('"),
        ("to == 5", "at column 7: expected an address (0x and 40 hex digits) for to, found '5'"),
        ("to == 0x" + "Ab" * 20, "at column 7: wrong EIP-55 checksum for to"),
        ("to < " + A, "at column 4: < compares integers; to is address (use ==, != or in)"),
        ("from >= " + A, "at column 6: >= compares integers; from is address"),
        ("value in 1", "at column 10: expected ( after in, found '1'"),
        ("value in", "at column 9: expected ( after in, found the end"),
        ("value in (1, 2", "at column 15: the list is not closed with )"),
        ("value in (1,,2)", "at column 13: unexpected ',' in the list"),
        ("value in (1, 2) 3", "at column 17: unexpected '3' after )"),
        ('value == "open', """at column 10: unexpected '"'"""),
        ("== 5", "at column 1: expected an argument name"),
    ],
)
def test_each_error_says_what_and_where(text, message):
    with pytest.raises(InputError) as caught:
        parse_condition(text, TRANSFER)

    assert str(caught.value).startswith(f"invalid --where {text!r} {message}")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"delta > {2**255}", "out of range for delta (int256: -2^255 to 2^255-1)"),
        (f"delta < {-(2**255) - 1}", "out of range for delta (int256: -2^255 to 2^255-1)"),
        ("small > 256", "out of range for small (uint8: 0 to 2^8-1)"),
        ("tiny < -129", "out of range for tiny (int8: -2^7 to 2^7-1)"),
        ("flag == 1", "expected true or false for flag"),
        ("ok > false", "> compares integers; ok is bool"),
        ("tag == 0x01", "expected exactly 32 bytes for tag (bytes32)"),
        ("blob == 0x123", "expected 0x and an even number of hex digits for blob"),
        ("memo == hello", "expected a double-quoted string"),
        ('memo < "a"', "< compares integers; memo is string"),
        ("list == 1", "list is an array; it has no condition"),
    ],
)
def test_type_errors_on_every_kind_of_argument(text, message):
    with pytest.raises(InputError, match="^invalid --where .* at column [0-9]+: (.*)$") as caught:
        parse_condition(text, KITCHEN)

    assert message in str(caught.value)


def word(n: int) -> str:
    return "0x" + (n % 2**256).to_bytes(32, "big").hex()


def transfer_args(value: int) -> dict:
    log = decode_log(
        TRANSFER.text, [TRANSFER.topic0, topic_word(TRANSFER.params[0], A), word(0)], word(value)
    )
    assert log is not None
    return canonical_args(TRANSFER, log["args"])


@pytest.mark.parametrize(
    ("condition", "value", "holds"),
    [
        (f"value >= {2**256 - 1}", 2**256 - 1, True),
        (f"value >= {2**256 - 1}", 2**256 - 2, False),  # a float would call these equal
        (f"value > {2**255}", 2**255 + 1, True),
        (f"value > {2**255}", 2**255, False),
        (f"value < {2**255}", 2**255 - 1, True),
        (f"value <= {2**255}", 2**255, True),
        (f"value == {2**256 - 1}", 2**256 - 1, True),
        (f"value != {2**256 - 1}", 2**256 - 1, False),
        ("value in (1, 2)", 2, True),
        ("value in (1, 2)", 3, False),
        ("from == " + A, 0, True),
        ("from == " + A.upper().replace("0X", "0x"), 0, True),
        ("from != " + A, 0, False),
        (f"from in ({B}, {A})", 0, True),
        ("to == " + A, 0, False),
    ],
)
def test_conditions_hold_exactly_on_decoded_events(condition, value, holds):
    (parsed,) = compiled(TRANSFER.text, (condition,))

    assert parsed.holds(transfer_args(value)) is holds


def test_the_key_is_the_first_indexed_equality_as_topic_words():
    conditions = compiled(TRANSFER.text, ("value > 5", f"to in ({A}, {B}, {A})", "from == " + B))

    assert topic_key(conditions, TRANSFER) == (
        2,
        ("0x" + "0" * 24 + A[2:], "0x" + "0" * 24 + B[2:]),
    )
    assert topic_key(compiled(TRANSFER.text, ("value > 5", "to != " + A)), TRANSFER) is None


@pytest.mark.parametrize(
    ("condition", "topic"),
    [
        ("delta == -1", "0x" + "ff" * 32),
        ("delta == 1", word(1)),
        ("flag == true", word(1)),
        ("tag == 0x" + "12" * 32, "0x" + "12" * 32),
    ],
)
def test_topic_words_are_what_the_log_carries(condition, topic):
    (parsed,) = compiled(KITCHEN.text, (condition,))

    assert topic_word(parsed.param, parsed.values[0]) == topic


def test_conditions_hold_on_the_raw_values_of_every_type():
    from eth_abi import encode

    from ethhook.abi import decode_log_values

    data = encode(
        ["uint8", "int8", "bool", "bytes4", "bytes", "string", "address", "uint256[]"],
        [255, -128, True, b"\xa9\x05\x9c\xbb", b"\x01\x02", "hi", A, [1, 2]],
    )
    topics = [KITCHEN.topic0, word(-(2**255)), word(1), "0x" + "12" * 32]
    values = decode_log_values(KITCHEN.text, topics, "0x" + data.hex())
    assert values is not None
    args = canonical_args(KITCHEN, values)
    holding = (
        f"delta == {-(2**255)}", "delta < 0", "flag == true", "tag == 0x" + "12" * 32,
        "small >= 255", "tiny == -128", "ok == true", "sel == 0xA9059CBB", "blob == 0x0102",
        'memo == "hi"', f"who == {A}",
    )  # fmt: skip
    failing = ("delta > 0", "flag == false", "small < 255", "sel != 0xa9059cbb", 'memo == "HI"')

    assert all(c.holds(args) for c in compiled(KITCHEN.text, holding))
    assert not any(c.holds(args) for c in compiled(KITCHEN.text, failing))
