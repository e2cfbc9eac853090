"""Encode calls and decode results, logs and reverts from a contract's JSON ABI (eth-abi underneath)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_typing import ABIError, ABIEvent, ABIFunction
from eth_utils import (
    abi_to_signature,
    event_abi_to_log_topic,
    function_abi_to_4byte_selector,
    function_signature_to_4byte_selector,
    to_checksum_address,
)
from eth_utils.abi import collapse_if_tuple

from warden.hexutil import parse_hex

ERROR_STRING = function_signature_to_4byte_selector("Error(string)")
PANIC_UINT = function_signature_to_4byte_selector("Panic(uint256)")

PANIC_CODES = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow",
    0x12: "division by zero",
    0x21: "invalid enum value",
    0x31: "pop from empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to an uninitialised function",
}


@dataclass(frozen=True)
class DecodedLog:
    """One log decoded against the ABI, with where it happened."""

    event: str
    args: dict[str, Any]
    address: str
    block_number: int
    tx_hash: str
    log_index: int
    block_hash: str = ""


class ContractAbi:
    """Functions by name or full signature, events by name or topic, errors by selector."""

    def __init__(self, abi: Sequence[Mapping[str, Any]]) -> None:
        self.abi = list(abi)
        self.functions: dict[str, list[Mapping[str, Any]]] = {}
        self.by_signature: dict[str, Mapping[str, Any]] = {}
        self.events: dict[str, Mapping[str, Any]] = {}
        self.events_by_topic: dict[bytes, Mapping[str, Any]] = {}
        self.errors_by_selector: dict[bytes, Mapping[str, Any]] = {}
        self.constructor: Mapping[str, Any] | None = None
        for entry in self.abi:
            kind = entry.get("type")
            if kind == "function":
                self.functions.setdefault(str(entry["name"]), []).append(entry)
                self.by_signature[abi_to_signature(cast(ABIFunction, entry))] = entry
            elif kind == "event":
                self.events[str(entry["name"])] = entry
                self.events_by_topic[_topic(entry)] = entry
            elif kind == "error":
                self.errors_by_selector[_selector(entry)] = entry
            elif kind == "constructor":
                self.constructor = entry

    # -- functions -------------------------------------------------------------------------------
    def function(self, name: str, nargs: int | None = None) -> Mapping[str, Any]:
        """Look up by full signature (`f(uint256)`) or by name, using the argument count for overloads."""
        if "(" in name:
            if name not in self.by_signature:
                raise KeyError(f"no function {name}")
            return self.by_signature[name]
        candidates = self.functions.get(name, [])
        if nargs is not None:
            candidates = [c for c in candidates if len(c.get("inputs", [])) == nargs]
        if len(candidates) != 1:
            raise KeyError(f"no unique function {name} with {nargs} arguments")
        return candidates[0]

    def encode_call(self, name: str, *args: Any) -> bytes:
        entry = self.function(name, len(args))
        types = [collapse_if_tuple(p) for p in entry.get("inputs", [])]
        values = [_to_abi_value(p, a) for p, a in zip(entry.get("inputs", []), args, strict=True)]
        return _selector(entry) + abi_encode(types, values)

    def decode_output(self, name: str, data: bytes, nargs: int | None = None) -> Any:
        """The return value: a single value unwrapped, several as a tuple."""
        entry = self.function(name, nargs)
        outputs = entry.get("outputs", [])
        values = abi_decode([collapse_if_tuple(p) for p in outputs], data)
        values = tuple(_from_abi_value(p, v) for p, v in zip(outputs, values, strict=True))
        return values[0] if len(values) == 1 else values

    def encode_deploy(self, bytecode: bytes, *args: Any) -> bytes:
        inputs = self.constructor.get("inputs", []) if self.constructor else []
        types = [collapse_if_tuple(p) for p in inputs]
        return bytecode + abi_encode(types, [_to_abi_value(p, a) for p, a in zip(inputs, args, strict=True)])

    # -- events ----------------------------------------------------------------------------------
    def event_topic(self, name: str) -> bytes:
        return _topic(self.events[name])

    def decode_log(self, log: Mapping[str, Any]) -> DecodedLog | None:
        """Decode an eth_getLogs / receipt log; None when the topic is not an event of this ABI."""
        topics = [bytes.fromhex(str(t)[2:]) for t in log.get("topics", [])]
        if not topics or topics[0] not in self.events_by_topic:
            return None
        entry = self.events_by_topic[topics[0]]
        inputs = entry.get("inputs", [])
        indexed = [p for p in inputs if p.get("indexed")]
        plain = [p for p in inputs if not p.get("indexed")]
        args: dict[str, Any] = {}
        for param, topic in zip(indexed, topics[1:], strict=False):
            kind = collapse_if_tuple(param)
            if kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("("):
                args[str(param["name"])] = topic  # only the hash is logged for dynamic types
            else:
                args[str(param["name"])] = _from_abi_value(param, abi_decode([kind], topic)[0])
        data = bytes.fromhex(str(log.get("data", "0x"))[2:])
        for param, value in zip(plain, abi_decode([collapse_if_tuple(p) for p in plain], data), strict=True):
            args[str(param["name"])] = _from_abi_value(param, value)
        return DecodedLog(
            event=str(entry["name"]),
            args=args,
            address=str(to_checksum_address(str(log["address"]))),
            block_number=int(str(log["blockNumber"]), 16),
            tx_hash=str(log["transactionHash"]),
            log_index=int(str(log["logIndex"]), 16),
            block_hash=str(log.get("blockHash") or ""),
        )

    # -- reverts ---------------------------------------------------------------------------------
    def decode_revert(self, data: bytes) -> str | None:
        """A readable revert reason (`Error(string)`, a panic, or a custom error with its arguments)."""
        return decode_revert(data, self)


def _selector(entry: Mapping[str, Any]) -> bytes:
    """The 4-byte selector of a function or a custom error (both are keccak of the signature, cut to 4 bytes)."""
    return function_abi_to_4byte_selector(cast(ABIFunction | ABIError, entry))


def _topic(entry: Mapping[str, Any]) -> bytes:
    """topic0 of an event's logs: keccak of its signature."""
    return event_abi_to_log_topic(cast(ABIEvent, entry))


def decode_revert(data: bytes, abi: ContractAbi | None = None) -> str | None:
    if len(data) < 4:
        return None
    head, body = data[:4], data[4:]
    try:
        if head == ERROR_STRING:
            return str(abi_decode(["string"], body)[0])
        if head == PANIC_UINT:
            code = int(abi_decode(["uint256"], body)[0])
            return f"panic: {PANIC_CODES.get(code, hex(code))}"
        if abi is not None and head in abi.errors_by_selector:
            entry = abi.errors_by_selector[head]
            inputs = entry.get("inputs", [])
            values = abi_decode([collapse_if_tuple(p) for p in inputs], body)
            shown = ", ".join(
                f"{p['name']}={_show(_from_abi_value(p, v))}" for p, v in zip(inputs, values, strict=True)
            )
            return f"{entry['name']}({shown})"
    except Exception:  # a malformed revert payload is reported raw below
        pass
    return f"custom error 0x{data.hex()}"


def _show(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


def _to_abi_value(param: Mapping[str, Any], value: Any) -> Any:
    """Accept dicts for structs and hex strings for bytes, so callers can pass what they have."""
    kind = str(param["type"])
    if kind.endswith("]"):
        element = dict(param, type=kind[: kind.rindex("[")])
        return [_to_abi_value(element, v) for v in value]
    if kind == "tuple":
        components = param["components"]
        if isinstance(value, Mapping):
            value = [value[c["name"]] for c in components]
        return tuple(_to_abi_value(c, v) for c, v in zip(components, value, strict=True))
    if kind.startswith("bytes") and isinstance(value, str):
        return parse_hex(value, str(param.get("name") or kind))
    return value


def _from_abi_value(param: Mapping[str, Any], value: Any) -> Any:
    kind = str(param["type"])
    if kind == "address":
        return str(to_checksum_address(value))
    if kind.endswith("]"):
        element = dict(param, type=kind[: kind.rindex("[")])
        return [_from_abi_value(element, v) for v in value]
    if kind == "tuple":
        return tuple(_from_abi_value(c, v) for c, v in zip(param["components"], value, strict=True))
    return value
