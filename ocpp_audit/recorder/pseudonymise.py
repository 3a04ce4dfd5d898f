"""Pseudonymised idTags: a keyed hash replaces every idTag in the capture, never on the wire.

An idTag is the number of a person's charging card (OCPP 1.6 section 7.28: "IdToken: an identifier
for a charge card, e.g. the RFID number"). With ``--pseudonymise-idtags KEY`` the capture keeps
``ps-`` followed by 16 hex digits of HMAC-SHA256(KEY, idTag) instead: the same tag always gives the
same value, so analyses still join sessions and authorisations, and 19 characters still fit
``IdToken`` (CiString20Type), so the schema checks stay meaningful.

Which values: every JSON string whose key is ``idTag`` or ``parentIdTag``, wherever it sits. That
covers Authorize, StartTransaction, StopTransaction, RemoteStartTransaction and ReserveNow
requests, ``idTagInfo.parentIdTag`` in the answers, and the SendLocalList entries, and it also
holds for a malformed frame (bad JSON, wrong array length) that still carries a tag. The raw
frame is rewritten token by token: only the tag's own JSON string is replaced, every other byte
(spacing, key order, number formatting) stays as it crossed the wire.
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
IDTAG_KEYS = frozenset({"idTag", "parentIdTag"})

# A JSON string token (RFC 8259 section 7). Outside strings JSON has no quote characters, so scanning
# left to right finds exactly the string tokens of well-formed text.
_STRING_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NAME_SEPARATOR = re.compile(r"\s*:\s*")


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

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}(key=<hidden>)"

    def pseudonym(self, id_tag: str) -> str:
        """``ps-`` and the first 16 hex digits of HMAC-SHA256(key, idTag in UTF-8)."""
        digest = hmac.new(self._key, id_tag.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return PREFIX + digest.hexdigest()[:DIGEST_HEX_CHARS]

    def rewrite(self, text: str) -> str:
        """``text`` with the JSON string value of every ``idTag``/``parentIdTag`` key replaced."""
        if "dTag" not in text:  # idTag, parentIdTag: the cheap test first
            return text
        pieces: list[str] = []
        last = 0
        previous_key: re.Match[str] | None = None
        for token in _STRING_TOKEN.finditer(text):
            if previous_key is not None and _NAME_SEPARATOR.fullmatch(
                text, previous_key.end(), token.start()
            ):
                pieces.append(text[last : token.start()])
                pieces.append(json.dumps(self.pseudonym(_decode(token.group()))))
                last = token.end()
                previous_key = None
                continue
            previous_key = token if _decode(token.group()) in IDTAG_KEYS else None
        if not pieces:
            return text
        pieces.append(text[last:])
        return "".join(pieces)

    def rewrite_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """A capture row with its idTags replaced in ``raw``, ``raw_binary`` and ``payload``."""
        if row.get("event") != "message":
            return row
        raw, payload, raw_binary = row.get("raw"), row.get("payload"), row.get("raw_binary")
        if isinstance(raw, str):
            row["raw"] = self.rewrite(raw)
        if isinstance(payload, str):
            row["payload"] = self.rewrite(payload)
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
