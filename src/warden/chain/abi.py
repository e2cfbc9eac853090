"""Encode calls and decode results, logs and reverts from a contract's JSON ABI (eth-abi underneath)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from warden.errors import BadInput

ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
PANIC_UINT = bytes.fromhex("4e487b71")  # Panic(uint256)

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


def abi_type(param: Mapping[str, Any]) -> str:
    """The canonical type string of one ABI parameter, expanding tuples (structs)."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def signature(entry: Mapping[str, Any]) -> str:
    return f"{entry['name']}({','.join(abi_type(p) for p in entry.get('inputs', []))})"


def selector(sig: str) -> bytes:
    return bytes(keccak(text=sig)[:4])


@dataclass(frozen=True)
class DecodedLog:
    """One log decoded against the ABI, with where it happened."""

    event: str
    args: dict[str, Any]
    address: str
    block_number: int
    tx_hash: str
    log_index: int


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
                self.by_signature[signature(entry)] = entry
            elif kind == "event":
                self.events[str(entry["name"])] = entry
                self.events_by_topic[bytes(keccak(text=signature(entry)))] = entry
            elif kind == "error":
                self.errors_by_selector[selector(signature(entry))] = entry
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
        types = [abi_type(p) for p in entry.get("inputs", [])]
        values = [_to_abi_value(p, a) for p, a in zip(entry.get("inputs", []), args, strict=True)]
        return selector(signature(entry)) + abi_encode(types, values)

    def decode_output(self, name: str, data: bytes, nargs: int | None = None) -> Any:
        """The return value: a single value unwrapped, several as a tuple."""
        entry = self.function(name, nargs)
        outputs = entry.get("outputs", [])
        values = abi_decode([abi_type(p) for p in outputs], data)
        values = tuple(_from_abi_value(p, v) for p, v in zip(outputs, values, strict=True))
        return values[0] if len(values) == 1 else values

    def encode_deploy(self, bytecode: bytes, *args: Any) -> bytes:
        inputs = self.constructor.get("inputs", []) if self.constructor else []
        types = [abi_type(p) for p in inputs]
        return bytecode + abi_encode(types, [_to_abi_value(p, a) for p, a in zip(inputs, args, strict=True)])

    # -- events ----------------------------------------------------------------------------------
    def event_topic(self, name: str) -> bytes:
        return bytes(keccak(text=signature(self.events[name])))

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
            kind = abi_type(param)
            if kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("("):
                args[str(param["name"])] = topic  # only the hash is logged for dynamic types
            else:
                args[str(param["name"])] = _from_abi_value(param, abi_decode([kind], topic)[0])
        data = bytes.fromhex(str(log.get("data", "0x"))[2:])
        for param, value in zip(plain, abi_decode([abi_type(p) for p in plain], data), strict=True):
            args[str(param["name"])] = _from_abi_value(param, value)
        return DecodedLog(
            event=str(entry["name"]),
            args=args,
            address=str(to_checksum_address(str(log["address"]))),
            block_number=int(str(log["blockNumber"]), 16),
            tx_hash=str(log["transactionHash"]),
            log_index=int(str(log["logIndex"]), 16),
        )

    # -- reverts ---------------------------------------------------------------------------------
    def decode_revert(self, data: bytes) -> str | None:
        """A readable revert reason (`Error(string)`, a panic, or a custom error with its arguments)."""
        return decode_revert(data, self)


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
            values = abi_decode([abi_type(p) for p in inputs], body)
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
        digits = value[2:] if value[:2].lower() == "0x" else value
        try:
            return bytes.fromhex(digits)
        except ValueError:
            raise BadInput(f"invalid hex for {param.get('name') or kind}: {value!r}") from None
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
