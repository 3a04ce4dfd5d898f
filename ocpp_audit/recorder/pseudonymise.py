"""Pseudonymised idTags: a keyed hash replaces every idTag in the capture, never on the wire.

An idTag is the number of a person's charging card (OCPP 1.6 section 7.28: "IdToken: an identifier
for a charge card, e.g. the RFID number"). With ``--pseudonymise-idtags KEY`` the capture keeps
``ps-`` followed by 16 hex digits of HMAC-SHA256(KEY, idTag) instead: the same tag always gives the
same value, so analyses still join sessions and authorisations, and 19 characters still fit
``IdToken`` (CiString20Type), so the schema checks stay meaningful.

Which values: every value whose key is ``idTag`` or ``parentIdTag`` (OCPP 1.6) or ``idToken``
(OCPP 2.0.1 ``IdTokenType.idToken``, also inside ``groupIdToken``), wherever it sits, however the key
is written (``"i\u0064Tag"`` is ``idTag``). That covers Authorize, StartTransaction,
StopTransaction, RemoteStartTransaction and ReserveNow requests, ``idTagInfo.parentIdTag`` in the
answers, the SendLocalList entries and 2.0.1's TransactionEvent and RequestStartTransaction, and it
also holds for a malformed frame (bad JSON, wrong array length) that still carries a tag. A tag sent
as a JSON number (off-schema, but chargers do) becomes a number of the same length, so the schema
check still sees a number. Free text can quote a tag too: in DataTransfer payloads and CALLERROR
rows, every tag this run has already seen is replaced wherever it appears. The raw frame is rewritten
token by token: only the tag's own JSON token is replaced, every other byte (spacing, key order,
number formatting) stays as it crossed the wire.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

from ocpp_audit.capture.connection import RowSink

PREFIX = "ps-"
DIGEST_HEX_CHARS = 16  # 64 bits: collisions stay out of reach for any fleet's card count
IDTAG_KEYS = frozenset({"idTag", "parentIdTag", "idToken"})
# Tags remembered for replacing in free text (DataTransfer, CALLERROR): the most recent ones.
MAX_REMEMBERED_TAGS = 10_000

# A JSON string token (RFC 8259 section 7). Outside strings JSON has no quote characters, so scanning
# left to right finds exactly the string tokens of well-formed text.
_STRING_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NAME_SEPARATOR = re.compile(r"\s*:\s*")
# A number value right after a tag's key (RFC 8259 section 6).
_NUMBER_VALUE = re.compile(r"\s*:\s*(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)")


def _decode(token: str) -> str:
    """The value of a JSON string token; its inner text when it does not decode."""
    try:
        value = json.loads(token)
    except ValueError:
        return token[1:-1]
    return value if isinstance(value, str) else token[1:-1]


class IdTagPseudonymiser:
    """Maps idTags to keyed hashes and rewrites frames and payloads accordingly."""

    def __init__(self, key: bytes | str) -> None:
        key_bytes = key.encode() if isinstance(key, str) else bytes(key)
        if not key_bytes:
            raise ValueError("the pseudonymisation key must not be empty")
        self._key = key_bytes
        self._seen: dict[str, None] = {}  # insertion-ordered: the oldest is dropped first

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}(key=<hidden>)"

    def pseudonym(self, id_tag: str) -> str:
        """``ps-`` and the first 16 hex digits of HMAC-SHA256(key, idTag in UTF-8)."""
        return PREFIX + self._digest(id_tag)[:DIGEST_HEX_CHARS]

    def _digest(self, id_tag: str) -> str:
        data = id_tag.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def numeric_pseudonym(self, number: str) -> str:
        """A tag sent as a JSON number: digits of the HMAC, as many as the number had (at least
        one, no leading zero), so the capture keeps a number where the charger sent one."""
        width = max(1, sum(char.isdigit() for char in number))
        digits = str(int(self._digest(number), 16))[:width]
        return digits.lstrip("0") or "1"

    def _remember(self, id_tag: str) -> None:
        if len(id_tag) >= 4:  # a short tag would match inside ordinary words
            self._seen.pop(id_tag, None)
            self._seen[id_tag] = None
            if len(self._seen) > MAX_REMEMBERED_TAGS:
                del self._seen[next(iter(self._seen))]

    def rewrite(self, text: str) -> str:
        """``text`` with the value of every ``idTag``/``parentIdTag``/``idToken`` key replaced."""
        if "Tag" not in text and "Token" not in text and "\\u" not in text:  # the cheap test
            return text
        pieces: list[str] = []
        last = 0
        previous_key: re.Match[str] | None = None
        for token in _STRING_TOKEN.finditer(text):
            if previous_key is not None and _NAME_SEPARATOR.fullmatch(
                text, previous_key.end(), token.start()
            ):
                tag = _decode(token.group())
                self._remember(tag)
                pieces.append(text[last : token.start()])
                pieces.append(json.dumps(self.pseudonym(tag)))
                last = token.end()
                previous_key = None
                continue
            previous_key = None
            if _decode(token.group()) in IDTAG_KEYS:
                number = _NUMBER_VALUE.match(text, token.end())
                if number is None:
                    previous_key = token
                elif number.start(1) >= last:
                    pieces.append(text[last : number.start(1)])
                    pieces.append(self.numeric_pseudonym(number.group(1)))
                    last = number.end(1)
        if not pieces:
            return text
        pieces.append(text[last:])
        return "".join(pieces)

    def rewrite_free_text(self, text: str) -> str:
        """``text`` with every tag seen so far replaced by its pseudonym wherever it appears (a
        DataTransfer's data, a CALLERROR's description)."""
        for tag in self._seen:
            if tag in text:
                text = text.replace(tag, self.pseudonym(tag))
        return text

    def rewrite_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """A capture row with its idTags replaced in ``raw``, ``raw_binary`` and ``payload``."""
        if row.get("event") != "message":
            return row
        raw, payload, raw_binary = row.get("raw"), row.get("payload"), row.get("raw_binary")
        free_text = row.get("action") == "DataTransfer" or row.get("message_type") == 4
        if isinstance(raw, str):
            row["raw"] = self.rewrite(raw)
            if free_text:
                row["raw"] = self.rewrite_free_text(row["raw"])
        if isinstance(payload, str):
            row["payload"] = self.rewrite(payload)
            if free_text:
                row["payload"] = self.rewrite_free_text(row["payload"])
        description = row.get("error_description")
        if free_text and isinstance(description, str):
            row["error_description"] = self.rewrite_free_text(description)
        if isinstance(raw_binary, bytes | bytearray):
            try:
                text = bytes(raw_binary).decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                rewritten = self.rewrite(text)
                if rewritten != text:
                    row["raw_binary"] = rewritten.encode("utf-8")
        return row


class PseudonymisingSink:
    """A row sink that pseudonymises idTags, then hands each row to the real sink (the writer).

    Every other attribute (``close``, ``rotate``, ``unrecorded`` ...) is the wrapped writer's, so an
    engine can be given this in place of the writer.
    """

    def __init__(self, sink: RowSink, pseudonymiser: IdTagPseudonymiser) -> None:
        self.sink = sink
        self.pseudonymiser = pseudonymiser

    def append(self, row: dict[str, object]) -> None:
        self.sink.append(self.pseudonymiser.rewrite_row(row))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)
