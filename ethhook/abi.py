"""Solidity event signatures: parse them, compute topic0, decode logs into JSON-safe arguments.

Static arguments (address, bool, intN, uintN, bytesN: one 32-byte word each) are decoded here;
eth_abi is imported only for logs with dynamic ones (string, bytes, arrays). eth_abi pulls in
eth_utils and pydantic (memory in every process that loads it, bench/RESULTS.md §4), and most
events (Transfer, Approval, Swap…) have static arguments only, so a deliver worker usually never
loads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_hash.backends.pysha3 import keccak256 as _keccak

from ethhook.exceptions import InputError

_NAME = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_TYPE = re.compile(
    r"^(address|bool|string|bytes([1-9]|[12][0-9]|3[0-2])?|u?int(8|16|24|32|40|48|56|64|72|80|88|96|"
    r"104|112|120|128|136|144|152|160|168|176|184|192|200|208|216|224|232|240|248|256)?)"
    r"(\[[0-9]*\])*$"
)
_TOPIC = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^(0x)?[0-9a-fA-F]{40}$")
_JS_SAFE_INT = 2**53 - 1
_WORD = 32


# eth-hash's pysha3 backend (safe-pysha3, a C extension): 0.65 µs per hash of an address against
# 6 µs for its default pycryptodome backend, whose every call builds a cffi-backed object; a
# webhook's body checksums each address it carries (bench/RESULTS.md §14).
def keccak_bytes(data: bytes) -> bytes:
    """Keccak-256 of raw bytes."""
    return bytes(_keccak(data))


def keccak(text: str) -> bytes:
    """Keccak-256 of a UTF-8 string (what topic0 and EIP-55 checksums hash)."""
    return keccak_bytes(text.encode())


# EIP-55 upper-cases a letter where the keccak of the lowercase hex has a nibble ≥ 8. Both tests
# are done for all 40 characters at once: 0x20 (the ASCII lowercase bit) where the character is a
# letter, and where the digest's hex digit is 8–f; the two masks ANDed, XORed into the text.
_LETTER_BIT = bytes(0x20 if c in b"abcdef" else 0 for c in range(256))
_HIGH_NIBBLE_BIT = bytes(0x20 if c in b"89abcdef" else 0 for c in range(256))


def to_checksum_address(address: str) -> str:
    """The EIP-55 mixed-case form of a 20-byte hex address (with or without 0x)."""
    if not _ADDRESS.match(address):
        raise ValueError(f"not a 20-byte hex address: {address!r}")
    hex_ = address[-40:].lower().encode()
    digest = keccak_bytes(hex_).hex()[:40].encode()
    letters = int.from_bytes(hex_.translate(_LETTER_BIT), "big")
    high = int.from_bytes(digest.translate(_HIGH_NIBBLE_BIT), "big")
    return "0x" + (int.from_bytes(hex_, "big") ^ (letters & high)).to_bytes(40, "big").decode()


# Addresses repeat (hot contracts, routers, exchanges' wallets), and each checksum is a keccak:
# 4096 of them is ~1 MB per process.
@lru_cache(maxsize=4096)
def checksum(address: str) -> str:
    """to_checksum_address, remembered for the addresses seen most recently."""
    return to_checksum_address(address)


@dataclass(frozen=True)
class EventParam:
    name: str
    type: str
    indexed: bool


@dataclass(frozen=True)
class EventSignature:
    """A parsed event like `Transfer(address indexed from, address indexed to, uint256 value)`."""

    name: str
    params: tuple[EventParam, ...]

    @property
    def canonical(self) -> str:
        """The form hashed into topic0: `Transfer(address,address,uint256)`."""
        return f"{self.name}({','.join(p.type for p in self.params)})"

    @property
    def topic0(self) -> str:
        return "0x" + keccak(self.canonical).hex()

    @property
    def text(self) -> str:
        """The normalised human form, kept on the endpoint for decoding."""
        parts = []
        for p in self.params:
            parts.append(" ".join(x for x in (p.type, "indexed" if p.indexed else "", p.name) if x))
        return f"{self.name}({', '.join(parts)})"


def _normalise_type(raw: str) -> str:
    base, _, dims = raw.partition("[")
    dims = "[" + dims if dims else ""
    if base == "uint":
        base = "uint256"
    elif base == "int":
        base = "int256"
    return base + dims


def parse_event_signature(text: str) -> EventSignature:
    """Parse a Solidity event signature; raise InputError saying what is wrong."""
    source = text.strip()
    if source.startswith("event "):
        source = source[len("event ") :].strip()
    source = source.rstrip(";").strip()
    match = re.fullmatch(r"([A-Za-z_$][A-Za-z0-9_$]*)\s*\((.*)\)", source, re.S)
    if not match:
        raise InputError(
            f"invalid event signature {text!r}: expected e.g. "
            "'Transfer(address indexed from, address indexed to, uint256 value)'"
        )
    name, body = match.group(1), match.group(2).strip()
    params: list[EventParam] = []
    if body:
        for i, chunk in enumerate(body.split(",")):
            words = chunk.split()
            if not words:
                raise InputError(f"invalid event signature {text!r}: empty parameter {i + 1}")
            type_ = _normalise_type(words[0])
            if "(" in chunk or not _TYPE.match(type_):
                raise InputError(
                    f"invalid event signature {text!r}: unsupported type {words[0]!r} "
                    "(tuples are not supported; use the raw topic0 instead)"
                )
            indexed = len(words) > 1 and words[1] == "indexed"
            rest = words[2:] if indexed else words[1:]
            if len(rest) > 1 or (rest and not _NAME.match(rest[0])):
                raise InputError(
                    f"invalid event signature {text!r}: bad parameter {chunk.strip()!r}"
                )
            params.append(
                EventParam(name=rest[0] if rest else f"arg{i}", type=type_, indexed=indexed)
            )
    if sum(p.indexed for p in params) > 3:
        raise InputError(f"invalid event signature {text!r}: at most 3 parameters can be indexed")
    return EventSignature(name=name, params=tuple(params))


def parse_event_filter(text: str) -> tuple[str, EventSignature | None]:
    """An --event value is a Solidity signature or a raw 32-byte topic0; return (topic0, signature)."""
    if _TOPIC.match(text.strip()):
        return text.strip().lower(), None
    signature = parse_event_signature(text)
    return signature.topic0, signature


def _json_safe(value: Any, type_: str) -> Any:
    if isinstance(value, (list, tuple)):
        inner = type_[: type_.rindex("[")]
        return [_json_safe(v, inner) for v in value]
    if type_ == "address" and isinstance(value, str):
        return checksum(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        # Integers wider than a JavaScript number are decimal strings, and so are all uint/int
        # of 64+ bits, so a receiver never sees the same field change type between events.
        return str(value) if _int_bits(type_) > 53 or abs(value) > _JS_SAFE_INT else value
    return value


@lru_cache(maxsize=256)
def _int_bits(type_: str) -> int:
    """The width of an int/uint type (of its elements for an array type)."""
    return int(re.sub(r"\D", "", type_.split("[")[0]) or 256)


@lru_cache(maxsize=1024)
def _signature(text: str) -> EventSignature:
    return parse_event_signature(text)


class _NotStatic(Exception):
    """A value this module does not decode itself: eth_abi decides (decodes it or rejects it)."""


def _static_word(type_: str, word: bytes) -> Any:
    """One static ABI value from its 32-byte word, exactly as eth_abi decodes it.

    Raises _NotStatic for a dynamic or array type and for any word eth_abi would reject (bad
    padding, out of range), so eth_abi has the last say on everything irregular."""
    if type_ == "address":
        if any(word[:12]):
            raise _NotStatic
        return "0x" + word[12:].hex()
    if type_ == "bool":
        if any(word[:31]) or word[31] > 1:
            raise _NotStatic
        return word[31] == 1
    if type_.startswith("uint") and "[" not in type_:
        bits = int(type_[4:] or 256)
        value = int.from_bytes(word, "big")
        if value >> bits:
            raise _NotStatic
        return value
    if type_.startswith("int") and "[" not in type_:
        bits = int(type_[3:] or 256)
        value = int.from_bytes(word, "big", signed=True)
        if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
            raise _NotStatic
        return value
    fixed = re.fullmatch(r"bytes([0-9]{1,2})", type_)
    if fixed:
        size = int(fixed[1])
        if any(word[size:]):
            raise _NotStatic
        return word[:size]
    raise _NotStatic


def _decode_values(types: list[str], data: bytes) -> tuple[Any, ...]:
    """ABI-decode `data` as a tuple of `types`; raises ValueError when it does not fit."""
    if len(data) == _WORD * len(types):
        try:
            return tuple(
                _static_word(t, data[i * _WORD : (i + 1) * _WORD]) for i, t in enumerate(types)
            )
        except _NotStatic:
            pass
    # Imported here: only logs with dynamic arguments (or malformed words) need eth_abi.
    from eth_abi import decode as abi_decode
    from eth_abi.exceptions import DecodingError

    try:
        return tuple(abi_decode(types, data))
    except DecodingError as exc:
        raise ValueError(str(exc)) from exc


@dataclass(frozen=True)
class _Plan:
    """What decoding a log by one signature needs, worked out once per signature."""

    signature: EventSignature
    topic0: str
    indexed: tuple[EventParam, ...]
    plain_types: list[str]
    plain_names: tuple[str, ...]
    # Indexed dynamic values (string, bytes, arrays): the log carries only their hash.
    hashed: frozenset[str]
    # Each argument's name and type in the order decode_log lists them (indexed ones first).
    order: tuple[tuple[str, str], ...]


@lru_cache(maxsize=1024)
def _plan(text: str) -> _Plan:
    sig = _signature(text)
    indexed = tuple(p for p in sig.params if p.indexed)
    plain = [p for p in sig.params if not p.indexed]
    hashed = frozenset(p.name for p in indexed if p.type in ("string", "bytes") or "[" in p.type)
    types = {p.name: p.type for p in sig.params}
    names = [p.name for p in indexed] + [p.name for p in plain]
    return _Plan(
        signature=sig,
        topic0=sig.topic0,
        indexed=indexed,
        plain_types=[p.type for p in plain],
        plain_names=tuple(p.name for p in plain),
        hashed=hashed,
        order=tuple((name, types[name]) for name in dict.fromkeys(names)),
    )


def decode_log_values(signature_text: str, topics: list[str], data: str) -> dict[str, Any] | None:
    """The log's arguments as Python values (int, bool, bytes, lowercase 0x addresses; the
    hash, as 0x hex, of an indexed dynamic value), indexed ones first; None when the log does
    not fit the signature. What `--where` conditions compare, without the JSON-safe forms'
    cost (an EIP-55 checksum is a keccak per address)."""
    plan = _plan(signature_text)
    if not topics or topics[0].lower() != plan.topic0 or len(topics) - 1 != len(plan.indexed):
        return None
    args: dict[str, Any] = {}
    try:
        for param, topic in zip(plan.indexed, topics[1:], strict=True):
            raw = bytes.fromhex(topic[2:])
            if param.name in plan.hashed:
                args[param.name] = "0x" + raw.hex()
            else:
                args[param.name] = _decode_values([param.type], raw)[0]
        values = (
            _decode_values(plan.plain_types, bytes.fromhex(data[2:])) if plan.plain_types else ()
        )
    except (ValueError, OverflowError):
        return None
    for name, value in zip(plan.plain_names, values, strict=True):
        args[name] = value
    return args


def decode_log(signature_text: str, topics: list[str], data: str) -> dict[str, Any] | None:
    """Decode a log with the endpoint's signature; None when the log does not fit it."""
    values = decode_log_values(signature_text, topics, data)
    if values is None:
        return None
    plan = _plan(signature_text)
    hashed = plan.hashed
    args = {
        name: values[name] if name in hashed else _json_safe(values[name], type_)
        for name, type_ in plan.order
    }
    return {"event": plan.signature.name, "args": args}
