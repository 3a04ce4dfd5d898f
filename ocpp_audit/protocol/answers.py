"""Answers to a CALL compared across backends, and the transactionIds a backend assigns carried over.

Shared by ``replay`` (the recorded answer against a target's) and the recorder's mirrors (the
primary's answer against a mirror's, in ``ocpp-audit compare``). Pure data, no I/O.

Ignore paths use a small JSONPath-like syntax over the answer's payload:

    $.status                 the top-level field ``status``
    $.idTagInfo.expiryDate   a nested field
    $.configurationKey[*].value   ``*`` matches any list index or any field name
    $..currentTime           ``..`` matches the field at any depth

By default ``$..currentTime`` and ``$..transactionId`` are ignored: the target's clock and the
transaction ids it assigns always differ from the recording's.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_IGNORE",
    "Answer",
    "Difference",
    "IgnorePath",
    "TransactionIds",
    "compare_answers",
    "json_object",
    "parse_ignore",
]

DEFAULT_IGNORE = ("$..currentTime", "$..transactionId")


def json_object(text: str | None) -> dict[str, Any]:
    """A recorded payload as a JSON object; {} when it is missing, not JSON or not an object."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@dataclass
class Answer:
    """A CALLRESULT or CALLERROR as recorded or as a target gave it."""

    message_type: int  # 3 CALLRESULT, 4 CALLERROR
    payload: dict[str, Any] = field(default_factory=dict)  # CALLRESULT payload, or errorDetails
    error_code: str | None = None
    error_description: str | None = None

    def to_dict(self) -> dict[str, object]:
        if self.message_type == 4:
            return {
                "type": "CALLERROR",
                "error_code": self.error_code,
                "error_description": self.error_description,
                "error_details": self.payload,
            }
        return {"type": "CALLRESULT", "payload": self.payload}


_SEGMENT = re.compile(r"\.\.?([A-Za-z0-9_\-]+|\*)|\[(\d+|\*)\]")


@dataclass(frozen=True)
class IgnorePath:
    text: str
    # (any_depth, name or index or "*")
    segments: tuple[tuple[bool, str], ...]

    def matches(self, path: Sequence[str]) -> bool:
        return _match(self.segments, tuple(path))


def _match(segments: tuple[tuple[bool, str], ...], path: tuple[str, ...]) -> bool:
    if not segments:
        return not path
    (any_depth, name), rest = segments[0], segments[1:]
    starts = range(len(path)) if any_depth else range(min(1, len(path)))
    return any((name in ("*", path[i])) and _match(rest, path[i + 1 :]) for i in starts)


def parse_ignore(text: str) -> IgnorePath:
    """Parse ``$.a.b``, ``$.a[*].b``, ``$..b``; raises ValueError with the reason."""
    if not text.startswith("$") or len(text) < 2:
        raise ValueError(f"ignore path {text!r}: must start with '$.' or '$..', as in $.status")
    segments: list[tuple[bool, str]] = []
    position = 1
    while position < len(text):
        match = _SEGMENT.match(text, position)
        if match is None:
            raise ValueError(f"ignore path {text!r}: cannot read it at {text[position:]!r}")
        any_depth = match.group(0).startswith("..")
        segments.append((any_depth, match.group(1) or match.group(2)))
        position = match.end()
    return IgnorePath(text, tuple(segments))


@dataclass
class Difference:
    """One way a target's answer differs from the recorded one."""

    kind: str  # field | callerror | missing-answer | extra-answer
    path: str | None  # payload path ($.idTagInfo.status) for kind field
    recorded: object
    replayed: object

    def describe(self, reference: str = "recorded", other: str = "target") -> str:
        """One line; ``reference`` and ``other`` name the two sides (the primary, a mirror)."""
        if self.kind == "field":
            return (
                f"{self.path}: {reference} {_show(self.recorded)}, {other} {_show(self.replayed)}"
            )
        if self.kind == "missing-answer":
            return f"no answer from the {other} ({reference} {self.recorded})"
        if self.kind == "extra-answer":
            return f"the {other} answered {self.replayed}; the {reference} did not answer"
        return f"{reference} {self.recorded}, {other} {self.replayed}"

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "path": self.path,
            "recorded": None if self.recorded is _ABSENT else self.recorded,
            "replayed": None if self.replayed is _ABSENT else self.replayed,
        }


def _show(value: object) -> str:
    return "(absent)" if value is _ABSENT else repr(value)


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT: Any = _Absent()


def _leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaves(item, (*path, str(key)))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, str(index)))
    else:
        yield path, value


def _path_text(path: tuple[str, ...]) -> str:
    return "$" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path)


def _summary(answer: Answer) -> str:
    if answer.message_type == 4:
        return f"CALLERROR {answer.error_code}"
    return "CALLRESULT"


def compare_answers(
    recorded: Answer | None, replayed: Answer | None, ignore: Sequence[IgnorePath]
) -> list[Difference]:
    """The differences between two answers to the same CALL, ignored paths left out."""
    if recorded is None and replayed is None:
        return []
    if replayed is None:
        assert recorded is not None
        return [Difference("missing-answer", None, _summary(recorded), None)]
    if recorded is None:
        return [Difference("extra-answer", None, None, _summary(replayed))]
    if recorded.message_type != replayed.message_type or (
        recorded.message_type == 4 and recorded.error_code != replayed.error_code
    ):
        return [Difference("callerror", None, _summary(recorded), _summary(replayed))]
    if recorded.message_type == 4:
        return []  # same errorCode: descriptions and details are free text
    # OCPP-J 1.6 section 4.2.2: the CALLRESULT payload is the action's confirmation; compare it
    # field by field (the status fields above all), lists element by element.
    recorded_leaves = dict(_leaves(recorded.payload))
    replayed_leaves = dict(_leaves(replayed.payload))
    differences = []
    for path in sorted(set(recorded_leaves) | set(replayed_leaves)):
        if any(ignore_path.matches(path) for ignore_path in ignore):
            continue
        before = recorded_leaves.get(path, _ABSENT)
        after = replayed_leaves.get(path, _ABSENT)
        if before != after or type(before) is not type(after):
            differences.append(Difference("field", _path_text(path), before, after))
    return differences


@dataclass
class TransactionIds:
    """The transactionIds one backend assigned, mapped to the ones another assigned for the same
    StartTransaction (OCPP 1.6 section 4.10: the Central System assigns the id in its answer),
    so the later StopTransaction and MeterValues sent to the other backend carry its own id.

    ``replay`` maps the recorded ids to the target's; a mirror maps the primary's to the mirror's.
    At most ``max_kept`` pairs are kept, the oldest forgotten first.
    """

    max_kept: int = 64
    _ids: OrderedDict[object, object] = field(default_factory=OrderedDict, repr=False)

    def assigned(self, reference: object, other: object) -> None:
        """Both backends answered the same StartTransaction: ``reference`` is ``other`` there."""
        if reference is None or other is None:
            return
        self._ids[reference] = other
        self._ids.move_to_end(reference)
        while len(self._ids) > self.max_kept:
            self._ids.popitem(last=False)

    def substitute(self, action: str, payload: dict[str, Any]) -> tuple[object, object] | None:
        """Replace a known ``transactionId`` in ``payload`` (in place) for any action but
        StartTransaction; returns (reference id, id sent) when it did."""
        if action == "StartTransaction" or not isinstance(payload, dict):
            return None
        reference = payload.get("transactionId")
        try:
            other = self._ids[reference]
        except (KeyError, TypeError):  # unknown, or not hashable (a list in a malformed payload)
            return None
        payload["transactionId"] = other
        return reference, other

    def __len__(self) -> int:
        return len(self._ids)
