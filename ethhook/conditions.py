"""`--where` conditions on an event's decoded arguments: parse them, check them, evaluate them.

Grammar: `ARG OP VALUE` (OP one of == != < <= > >=) or `ARG in (V1, V2, …)`. Values are checked
against the argument's type when the endpoint is registered; integers are exact Python ints, so
2^256 − 1 compares exactly. Equality and `in` on an indexed argument also yield the topic words
the log carries for it, which the matcher looks up through an index (match/service.py).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

from ethhook.abi import EventParam, EventSignature, keccak, keccak_bytes, parse_event_signature
from ethhook.abi import to_checksum_address as checksum
from ethhook.exceptions import InputError

ORDERING = ("<", "<=", ">", ">=")
OPERATORS = ("==", "!=", *ORDERING, "in")
_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>==|!=|<=|>=|<|>)|(?P<punct>[(),])'
    r'|(?P<word>[^\s,()"<>=!]+)|(?P<bad>\S))'
)
_DECIMAL = re.compile(r"^-?[0-9]+$")
_HEX = re.compile(r"^0x(?:[0-9a-fA-F]{2})*$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    column: int  # 1-based, where the token starts in the condition


@dataclass(frozen=True)
class Condition:
    """One parsed condition: `values` are canonical (int, bool, lowercase 0x hex, str)."""

    text: str
    param: EventParam
    op: str
    values: tuple[Any, ...]
    # The test on the argument's value, made once: the matcher runs it for every (event,
    # endpoint) pair its query found, 10,000 of them per event for 10,000 `value >= X` endpoints.
    test: Callable[[Any], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.op in ("==", "in"):
            test = frozenset(self.values).__contains__
        else:
            test = partial(_flipped(self.op), self.values[0])
        object.__setattr__(self, "test", test)

    @property
    def by_topic(self) -> bool:
        """An equality or `in` on an indexed argument: answerable from the log's topics alone."""
        return self.op in ("==", "in") and self.param.indexed

    def holds(self, args: dict[str, Any]) -> bool:
        """Whether the event's arguments, in canonical form (`canonical_args`), satisfy it."""
        return bool(self.test(args[self.param.name]))


def _flipped(op: str) -> Callable[[Any, Any], bool]:
    """The comparison with the bound first (for `partial(f, bound)(value)`): `value >= bound`
    is `bound <= value`."""
    return {
        "!=": operator.ne,
        "<": operator.gt,
        "<=": operator.ge,
        ">": operator.lt,
        ">=": operator.le,
    }[op]


def _kind(type_: str) -> str:
    if "[" in type_:
        return "array"
    if type_.startswith(("uint", "int")):
        return "integer"
    if type_.startswith("bytes"):
        return "bytes"
    return type_  # address, bool, string


def _hashed(param: EventParam) -> bool:
    """An indexed dynamic argument: the log carries only its keccak-256."""
    return param.indexed and param.type in ("string", "bytes")


def canonical_arg(param: EventParam, decoded: Any) -> Any:
    """A decoded argument (abi.decode_log_values' Python value, or decode_log's JSON-safe one)
    in the form condition values take."""
    kind = _kind(param.type)
    if kind == "integer":
        return int(decoded)
    if isinstance(decoded, bytes):
        return "0x" + decoded.hex()
    if kind in ("address", "bytes") or _hashed(param):
        return str(decoded).lower()
    return decoded


def canonical_args(signature: EventSignature, decoded: dict[str, Any]) -> dict[str, Any]:
    """Every decoded argument in canonical form, computed once per event and signature; arrays
    are left out (no condition names them)."""
    return {
        p.name: canonical_arg(p, decoded[p.name])
        for p in signature.params
        if _kind(p.type) != "array"
    }


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # only trailing whitespace is left
            break
        kind = match.lastgroup or "bad"
        out.append(_Token(kind, match.group(kind), match.start(kind) + 1))
        position = match.end()
    return out


def _error(text: str, column: int, message: str) -> InputError:
    return InputError(f"invalid --where {text!r} at column {column}: {message}")


def _bits(type_: str, prefix: str) -> int:
    return int(type_[len(prefix) :] or 256)


def _integer(param: EventParam, token: str) -> int:
    if not _DECIMAL.match(token):
        raise ValueError(f"expected a decimal integer for {param.name} ({param.type})")
    value = int(token)
    if param.type.startswith("uint"):
        bits = _bits(param.type, "uint")
        low, high, bounds = 0, (1 << bits) - 1, f"0 to 2^{bits}-1"
    else:
        bits = _bits(param.type, "int") - 1
        low, high, bounds = -(1 << bits), (1 << bits) - 1, f"-2^{bits} to 2^{bits}-1"
    if not low <= value <= high:
        raise ValueError(f"out of range for {param.name} ({param.type}: {bounds})")
    return value


def _bytes_value(param: EventParam, token: str) -> str:
    if not _HEX.match(token):
        raise ValueError(f"expected 0x and an even number of hex digits for {param.name}")
    size = param.type[5:]
    if size and len(token) != 2 + 2 * int(size):
        raise ValueError(f"expected exactly {size} bytes for {param.name} ({param.type})")
    return token.lower()


def _address(param: EventParam, token: str) -> str:
    if not _ADDRESS.match(token):
        raise ValueError(f"expected an address (0x and 40 hex digits) for {param.name}")
    body = token[2:]
    if body != body.lower() and body != body.upper() and token != checksum(token):
        raise ValueError(f"wrong EIP-55 checksum for {param.name}")
    return token.lower()


def _string(token: _Token) -> str:
    if token.kind != "string":
        raise ValueError("expected a double-quoted string")
    return re.sub(r"\\(.)", r"\1", token.text[1:-1])


def _value(param: EventParam, token: _Token) -> Any:
    """The canonical value of `token` for `param`; ValueError says why it does not fit."""
    kind = _kind(param.type)
    if token.kind not in ("word", "string"):
        raise ValueError("expected a value")
    if kind == "string":
        text = _string(token)
        return "0x" + keccak(text).hex() if _hashed(param) else text
    if token.kind == "string":
        raise ValueError(f"{param.name} is {param.type}, not a string")
    if kind == "integer":
        return _integer(param, token.text)
    if kind == "address":
        return _address(param, token.text)
    if kind == "bool":
        if token.text not in ("true", "false"):
            raise ValueError(f"expected true or false for {param.name}")
        return token.text == "true"
    value = _bytes_value(param, token.text)
    return "0x" + keccak_bytes(bytes.fromhex(value[2:])).hex() if _hashed(param) else value


def _find_param(signature: EventSignature, text: str, token: _Token) -> EventParam:
    for param in signature.params:
        if param.name == token.text:
            if _kind(param.type) == "array":
                raise _error(text, token.column, f"{param.name} is an array; it has no condition")
            return param
    names = ", ".join(p.name for p in signature.params) or "none"
    raise _error(
        text, token.column, f"{signature.name} has no argument {token.text!r} (it has: {names})"
    )


def _value_tokens(text: str, tokens: list[_Token], op: _Token) -> list[_Token]:
    """The value tokens after the operator: one, or a parenthesised list after `in`."""
    rest = tokens[2:]
    end_column = len(text.rstrip()) + 1
    if op.text != "in":
        if not rest:
            raise _error(text, end_column, f"expected a value after {op.text}")
        if len(rest) > 1:
            raise _error(text, rest[1].column, f"unexpected {rest[1].text!r} after the value")
        return rest
    if not rest or rest[0].text != "(":
        found = repr(rest[0].text) if rest else "the end"
        column = rest[0].column if rest else end_column
        raise _error(text, column, f"expected ( after in, found {found}")
    values: list[_Token] = []
    for i, token in enumerate(rest[1:]):
        expect_value = i % 2 == 0
        if expect_value and token.kind in ("word", "string"):
            values.append(token)
        elif not expect_value and token.text == ",":
            continue
        elif not expect_value and token.text == ")":
            if i + 2 < len(rest):
                extra = rest[i + 2]
                raise _error(text, extra.column, f"unexpected {extra.text!r} after )")
            return values
        else:
            raise _error(text, token.column, f"unexpected {token.text!r} in the list")
    raise _error(text, end_column, "the list is not closed with )")


def parse_condition(text: str, signature: EventSignature) -> Condition:
    """Parse one condition against the endpoint's event; InputError says what and where."""
    tokens = _tokens(text)
    if not tokens:
        raise _error(text, 1, "empty condition; expected e.g. 'value >= 1000'")
    for token in tokens:
        if token.kind == "bad":
            hint = "; use ==" if token.text == "=" else ""
            raise _error(text, token.column, f"unexpected {token.text!r}{hint}")
    if tokens[0].kind != "word":
        raise _error(text, tokens[0].column, "expected an argument name")
    param = _find_param(signature, text, tokens[0])
    if len(tokens) < 2 or not (tokens[1].kind == "op" or tokens[1].text == "in"):
        column = tokens[1].column if len(tokens) > 1 else len(text.rstrip()) + 1
        raise _error(text, column, f"expected an operator: {', '.join(OPERATORS)}")
    op = tokens[1]
    if op.text in ORDERING and _kind(param.type) != "integer":
        raise _error(
            text,
            op.column,
            f"{op.text} compares integers; {param.name} is {param.type} (use ==, != or in)",
        )
    values = []
    for token in _value_tokens(text, tokens, op):
        try:
            values.append(_value(param, token))
        except ValueError as exc:
            raise _error(text, token.column, f"{exc}, found {token.text!r}") from None
    return Condition(text=text.strip(), param=param, op=op.text, values=tuple(values))


def parse_conditions(texts: Sequence[str], signature: EventSignature) -> tuple[Condition, ...]:
    return tuple(parse_condition(t, signature) for t in texts)


@lru_cache(maxsize=1024)
def event_signature(text: str) -> EventSignature:
    """A stored (already valid) signature, parsed once per process."""
    return parse_event_signature(text)


@lru_cache(maxsize=4096)
def compiled(signature_text: str, texts: tuple[str, ...]) -> tuple[Condition, ...]:
    """The stored conditions of an endpoint, parsed once per process (they were checked when
    the endpoint was registered)."""
    return parse_conditions(texts, event_signature(signature_text))


def topic_word(param: EventParam, value: Any) -> str:
    """The 32-byte topic (0x and 64 lowercase hex digits) a log carries for this indexed value."""
    kind = _kind(param.type)
    if _hashed(param) or kind == "address":
        return "0x" + str(value)[2:].rjust(64, "0")
    if kind == "bool":
        return "0x" + f"{int(value):064x}"
    if kind == "integer":
        return "0x" + (value % (1 << 256)).to_bytes(32, "big").hex()
    return "0x" + str(value)[2:].ljust(64, "0")  # bytesN: left-aligned


def topic_key(
    conditions: Sequence[Condition], signature: EventSignature
) -> tuple[int, tuple[str, ...]] | None:
    """The one indexed equality (or `in`) the matcher looks up by index: its topic position and
    words. The first such condition is used; every condition is still checked after the query."""
    indexed = [p for p in signature.params if p.indexed]
    for condition in conditions:
        if condition.by_topic:
            position = indexed.index(condition.param) + 1
            words = tuple(dict.fromkeys(topic_word(condition.param, v) for v in condition.values))
            return position, words
    return None
