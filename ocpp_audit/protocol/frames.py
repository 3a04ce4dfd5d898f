"""The OCPP-J codec: one wire message in, one typed value out, with no I/O.

OCPP-J 1.6 section 4 ("RPC framework") defines three message types, each a JSON array:

    CALL        [2, "<UniqueId>", "<Action>", {<payload>}]
    CALLRESULT  [3, "<UniqueId>", {<payload>}]
    CALLERROR   [4, "<UniqueId>", "<errorCode>", "<errorDescription>", {<errorDetails>}]

OCPP 2.1 part 4 adds two, read only on an OCPP 2.1 connection (``parse(data, OcppVersion.V21)``):

    CALLRESULTERROR  [5, "<UniqueId>", "<errorCode>", "<errorDescription>", {<errorDetails>}]
    SEND             [6, "<UniqueId>", "<Action>", {<payload>}]

The contract of :func:`parse`: every input, text or bytes, well formed or not, is returned as a
:class:`Call`, :class:`CallResult`, :class:`CallError`, :class:`CallResultError`, :class:`Send`
or :class:`Malformed`; it never raises.
A parsed value keeps the payload text exactly as it crossed the wire (``payload_json``): no key case
conversion, no number reformatting. ``serialize`` of a parsed value gives back the original text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from ocpp_audit.protocol.constants import ERROR_CODES, OcppVersion

__all__ = [
    "OCPP_ERROR_CODES",
    "Call",
    "CallError",
    "CallResult",
    "CallResultError",
    "Frame",
    "Malformed",
    "MessageType",
    "Send",
    "parse",
]


class MessageType(IntEnum):
    """OCPP-J 1.6 section 4.1.3: "The message type number ... to identify the type of message"."""

    CALL = 2
    CALLRESULT = 3
    CALLERROR = 4
    # OCPP 2.1 part 4 section 4.2: only on an OCPP 2.1 connection.
    CALLRESULTERROR = 5
    SEND = 6


# OCPP-J 1.6 section 4.2.3, table "Valid Error Codes" (other versions: constants.ERROR_CODES).
OCPP_ERROR_CODES = ERROR_CODES[OcppVersion.V16]


def _reject_constant(name: str) -> Any:
    # RFC 8259 section 6: "Numeric values that cannot be represented in the grammar below (such as
    # Infinity and NaN) are not permitted." Python's json accepts them; DuckDB and most OCPP stacks
    # would read the frame differently from us, so it is malformed here.
    raise ValueError(f"{name} is not a JSON number (RFC 8259 section 6)")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)
_WHITESPACE = " \t\n\r"

# The fast path for a well-formed frame (nearly every frame): one json.loads of the whole text, and
# this pattern to find where the payload's source text starts (after the leading number and
# strings). Anything it does not cover goes through _split_array, which gives the exact reason.
_WS = "[ \t\n\r]*"
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_CALL_HEAD = re.compile(f"{_WS}\\[{_WS}2{_WS},{_WS}{_STRING}{_WS},{_WS}{_STRING}{_WS},{_WS}")
_RESULT_HEAD = re.compile(f"{_WS}\\[{_WS}3{_WS},{_WS}{_STRING}{_WS},{_WS}")
_ERROR_HEAD = re.compile(
    f"{_WS}\\[{_WS}4{_WS},{_WS}{_STRING}{_WS},{_WS}{_STRING}{_WS},{_WS}{_STRING}{_WS},{_WS}"
)
_RESULT_ERROR_HEAD = re.compile(
    f"{_WS}\\[{_WS}5{_WS},{_WS}{_STRING}{_WS},{_WS}{_STRING}{_WS},{_WS}{_STRING}{_WS},{_WS}"
)
_SEND_HEAD = re.compile(f"{_WS}\\[{_WS}6{_WS},{_WS}{_STRING}{_WS},{_WS}{_STRING}{_WS},{_WS}")
_HEADS = {2: (_CALL_HEAD, 4), 3: (_RESULT_HEAD, 3), 4: (_ERROR_HEAD, 5)}
_HEADS_21 = {**_HEADS, 5: (_RESULT_ERROR_HEAD, 5), 6: (_SEND_HEAD, 4)}
_TYPES_21 = frozenset({2, 3, 4, 5, 6})
_TYPES = frozenset({2, 3, 4})


@dataclass(frozen=True, slots=True)
class Call:
    """A request: ``[2, unique_id, action, payload]``."""

    unique_id: str
    action: str
    payload: dict[str, Any]
    payload_json: str = field(default="", compare=False)
    raw: str | None = field(default=None, compare=False, repr=False)

    message_type = MessageType.CALL

    @classmethod
    def create(cls, unique_id: str, action: str, payload: dict[str, Any]) -> Call:
        """A new CALL to send; ``payload_json`` is its compact JSON form."""
        return cls(unique_id, action, payload, _dumps(payload))

    def serialize(self) -> str:
        if self.raw is not None:
            return self.raw
        body = self.payload_json or _dumps(self.payload)
        return f"[2,{_dumps(self.unique_id)},{_dumps(self.action)},{body}]"


@dataclass(frozen=True, slots=True)
class CallResult:
    """A successful answer: ``[3, unique_id, payload]``."""

    unique_id: str
    payload: dict[str, Any]
    payload_json: str = field(default="", compare=False)
    raw: str | None = field(default=None, compare=False, repr=False)

    message_type = MessageType.CALLRESULT

    @classmethod
    def create(cls, unique_id: str, payload: dict[str, Any]) -> CallResult:
        return cls(unique_id, payload, _dumps(payload))

    def serialize(self) -> str:
        if self.raw is not None:
            return self.raw
        return f"[3,{_dumps(self.unique_id)},{self.payload_json or _dumps(self.payload)}]"


@dataclass(frozen=True, slots=True)
class CallError:
    """An error answer: ``[4, unique_id, error_code, error_description, error_details]``."""

    unique_id: str
    error_code: str
    error_description: str
    error_details: dict[str, Any]
    payload_json: str = field(default="", compare=False)
    raw: str | None = field(default=None, compare=False, repr=False)

    message_type = MessageType.CALLERROR

    @classmethod
    def create(
        cls,
        unique_id: str,
        error_code: str,
        error_description: str = "",
        error_details: dict[str, Any] | None = None,
    ) -> CallError:
        details = error_details or {}
        return cls(unique_id, error_code, error_description, details, _dumps(details))

    def serialize(self) -> str:
        if self.raw is not None:
            return self.raw
        details = self.payload_json or _dumps(self.error_details)
        return (
            f"[4,{_dumps(self.unique_id)},{_dumps(self.error_code)},"
            f"{_dumps(self.error_description)},{details}]"
        )


@dataclass(frozen=True, slots=True)
class CallResultError:
    """OCPP 2.1 part 4 section 4.2.3: the CALL's sender could not accept the CALLRESULT it got
    (it failed validation): ``[5, unique_id, error_code, error_description, error_details]``, with
    the unique id of that CALL and CALLRESULT. It expects no answer."""

    unique_id: str
    error_code: str
    error_description: str
    error_details: dict[str, Any]
    payload_json: str = field(default="", compare=False)
    raw: str | None = field(default=None, compare=False, repr=False)

    message_type = MessageType.CALLRESULTERROR

    @classmethod
    def create(
        cls,
        unique_id: str,
        error_code: str,
        error_description: str = "",
        error_details: dict[str, Any] | None = None,
    ) -> CallResultError:
        details = error_details or {}
        return cls(unique_id, error_code, error_description, details, _dumps(details))

    def serialize(self) -> str:
        if self.raw is not None:
            return self.raw
        details = self.payload_json or _dumps(self.error_details)
        return (
            f"[5,{_dumps(self.unique_id)},{_dumps(self.error_code)},"
            f"{_dumps(self.error_description)},{details}]"
        )


@dataclass(frozen=True, slots=True)
class Send:
    """OCPP 2.1 part 4 section 4.2.4: ``[6, unique_id, action, payload]``, a message that "does
    not expect a response" (periodic event streams)."""

    unique_id: str
    action: str
    payload: dict[str, Any]
    payload_json: str = field(default="", compare=False)
    raw: str | None = field(default=None, compare=False, repr=False)

    message_type = MessageType.SEND

    @classmethod
    def create(cls, unique_id: str, action: str, payload: dict[str, Any]) -> Send:
        return cls(unique_id, action, payload, _dumps(payload))

    def serialize(self) -> str:
        if self.raw is not None:
            return self.raw
        body = self.payload_json or _dumps(self.payload)
        return f"[6,{_dumps(self.unique_id)},{_dumps(self.action)},{body}]"


@dataclass(frozen=True, slots=True)
class Malformed:
    """A frame that is not valid OCPP-J, with the reason. Data for the analyser, not an error.

    ``message_type`` and ``unique_id`` are filled in when they could still be read, so that an
    answer with, say, a bad payload can still be paired with its CALL.
    """

    raw: str | bytes
    reason: str
    message_type: int | None = None
    unique_id: str | None = None
    action: str | None = None

    def serialize(self) -> str | bytes:
        return self.raw


Frame = Call | CallResult | CallError | CallResultError | Send | Malformed


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _skip_ws(text: str, index: int) -> int:
    while index < len(text) and text[index] in _WHITESPACE:
        index += 1
    return index


def _split_array(text: str) -> list[tuple[Any, str]] | str:
    """Split a top-level JSON array into (value, exact source text) pairs, or return a reason.

    Uses the standard library's decoder element by element, so each element's source text is
    kept byte for byte (``raw_decode`` reports where each value ends).
    """
    index = _skip_ws(text, 0)
    if index >= len(text):
        return "empty frame"
    if text[index] != "[":
        try:
            json.loads(text)
        except ValueError as exc:
            return f"invalid JSON: {exc}"
        return "not a JSON array"
    index = _skip_ws(text, index + 1)
    elements: list[tuple[Any, str]] = []
    if index < len(text) and text[index] == "]":
        index = _skip_ws(text, index + 1)
        return elements if index == len(text) else "invalid JSON: extra data after the array"
    while True:
        try:
            value, end = _decoder.raw_decode(text, index)
        except ValueError as exc:
            return f"invalid JSON: {exc}"
        except RecursionError:
            return "invalid JSON: nested too deeply"
        elements.append((value, text[index:end]))
        index = _skip_ws(text, end)
        if index >= len(text):
            return "invalid JSON: unterminated array"
        if text[index] == ",":
            index = _skip_ws(text, index + 1)
            continue
        if text[index] == "]":
            index = _skip_ws(text, index + 1)
            if index != len(text):
                return "invalid JSON: extra data after the array"
            return elements
        return f"invalid JSON: expected ',' or ']' at char {index}"


def parse(data: str | bytes, version: OcppVersion | str | None = None) -> Frame:
    """Parse one WebSocket message. Never raises; anything not OCPP-J is :class:`Malformed`.

    OCPP-J 1.6 section 4.1.1: "The message is formatted as a JSON array"; binary WebSocket frames
    are not part of OCPP-J, so a ``bytes`` input is malformed (after trying it as UTF-8 text).
    ``version`` is the connection's OCPP version: message types 5 and 6 exist only in OCPP 2.1,
    so on any other connection (or when the version is not known) they are malformed.
    """
    try:
        frame = _parse(data, version == OcppVersion.V21)
        if not isinstance(frame, Malformed) and isinstance(data, str):
            reason = _unreadable_text(data, frame)
            if reason is not None:
                action = frame.action if isinstance(frame, Call | Send) else None
                return Malformed(data, reason, frame.message_type, frame.unique_id, action)
        return frame
    except Exception as exc:  # the contract: a parser bug still yields data, not a crash
        return Malformed(data, f"unparseable: {type(exc).__name__}: {exc}")


def _unreadable_text(
    text: str, frame: Call | CallResult | CallError | CallResultError | Send
) -> str | None:
    """Why a frame Python's json accepts is still not JSON text others can read, or None.

    RFC 8259 section 8.2: strings with unpaired surrogates (``"\\ud800"``) are allowed by the
    grammar but their behaviour is "unpredictable"; DuckDB's reader rejects the whole document, so
    one such payload would stop every analysis of the capture. Only frames that have an escape or
    non-ASCII text pay for the check.
    """
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "invalid text: unpaired surrogate character"
    if "\\u" in text:
        values: tuple[Any, ...]
        if isinstance(frame, CallError | CallResultError):
            values = (
                frame.unique_id,
                frame.error_code,
                frame.error_description,
                frame.error_details,
            )
        elif isinstance(frame, Call | Send):
            values = (frame.unique_id, frame.action, frame.payload)
        else:
            values = (frame.unique_id, frame.payload)
        try:
            _dumps(values).encode("utf-8")
        except UnicodeEncodeError:
            return "invalid JSON: unpaired surrogate escape (RFC 8259 section 8.2)"
    return None


def _parse(data: str | bytes, ocpp21: bool = False) -> Frame:
    if isinstance(data, bytes | bytearray | memoryview):
        raw_bytes = bytes(data)
        try:
            raw_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Malformed(
                raw_bytes, f"binary frame, not UTF-8: {exc.reason} at byte {exc.start}"
            )
        return Malformed(raw_bytes, "binary frame: OCPP-J uses text frames")
    text = data
    fast = _parse_fast(text, _HEADS_21 if ocpp21 else _HEADS)
    if fast is not None:
        return fast
    split = _split_array(text)
    if isinstance(split, str):
        return Malformed(text, split)
    if not split:
        return Malformed(text, "empty array")
    message_type, _ = split[0]
    if type(message_type) is not int or message_type not in (_TYPES_21 if ocpp21 else _TYPES):
        if type(message_type) is int and message_type in _TYPES_21:
            name = MessageType(message_type).name
            return Malformed(
                text, f"unknown message type {message_type} ({name} is an OCPP 2.1 message type)"
            )
        return Malformed(text, f"unknown message type {split[0][1]}")
    unique_id = split[1][0] if len(split) > 1 and isinstance(split[1][0], str) else None

    def malformed(reason: str, action: str | None = None) -> Malformed:
        return Malformed(text, reason, message_type, unique_id, action)

    if len(split) < 2:
        return malformed("missing unique id")
    if unique_id is None:
        return malformed(f"unique id is not a string: {split[1][1]}")

    if message_type in (MessageType.CALL, MessageType.SEND):
        name = MessageType(message_type).name
        action = split[2][0] if len(split) > 2 and isinstance(split[2][0], str) else None
        if len(split) != 4:
            return malformed(f"{name} has {len(split)} elements, expected 4", action)
        if action is None:
            return malformed(f"action is not a string: {split[2][1]}")
        payload, payload_json = split[3]
        if not isinstance(payload, dict):
            return malformed(f"{name} payload is not a JSON object", action)
        kind = Call if message_type == MessageType.CALL else Send
        return kind(unique_id, action, payload, payload_json, text)

    if message_type == MessageType.CALLRESULT:
        if len(split) != 3:
            return malformed(f"CALLRESULT has {len(split)} elements, expected 3")
        payload, payload_json = split[2]
        if not isinstance(payload, dict):
            return malformed("CALLRESULT payload is not a JSON object")
        return CallResult(unique_id, payload, payload_json, text)

    name = MessageType(message_type).name
    if len(split) != 5:
        return malformed(f"{name} has {len(split)} elements, expected 5")
    (error_code, code_json), (description, description_json), (details, details_json) = split[2:]
    if not isinstance(error_code, str):
        return malformed(f"errorCode is not a string: {code_json}")
    if not isinstance(description, str):
        return malformed(f"errorDescription is not a string: {description_json}")
    if not isinstance(details, dict):
        return malformed("errorDetails is not a JSON object")
    kind = CallError if message_type == MessageType.CALLERROR else CallResultError
    return kind(unique_id, error_code, description, details, details_json, text)


def _parse_fast(text: str, heads: dict[int, tuple[re.Pattern[str], int]]) -> Frame | None:
    """A well-formed frame of a type in ``heads``, or None to take the slow, exact path."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    if type(value) is not list or not value or type(value[0]) is not int:
        return None
    head = heads.get(value[0])
    if head is None or len(value) != head[1]:
        return None
    payload = value[-1]
    match = head[0].match(text)
    if match is None or type(payload) is not dict:
        return None
    # json.loads accepted the text and the pattern matched every element before the payload, so
    # the payload's source text runs from the match to the array's closing bracket.
    payload_json = text[match.end() : text.rstrip(_WHITESPACE).rindex("]")].rstrip(_WHITESPACE)
    if value[0] == 2:
        return Call(value[1], value[2], payload, payload_json, text)
    if value[0] == 3:
        return CallResult(value[1], payload, payload_json, text)
    if value[0] == 4:
        return CallError(value[1], value[2], value[3], payload, payload_json, text)
    if value[0] == 5:
        return CallResultError(value[1], value[2], value[3], payload, payload_json, text)
    return Send(value[1], value[2], payload, payload_json, text)
