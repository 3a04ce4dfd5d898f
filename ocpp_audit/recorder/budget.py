"""A memory budget per remote address for what chargers send the relay.

``websockets`` holds a few received frames per connection (``relay.MAX_QUEUE``), each bounded by the
frame limit while it inflates. That bounds one connection, not one attacker: with permessage-deflate a
16 KB frame on the wire is 16 MiB in memory, and an address may open as many connections as it likes.
The budget counts, per remote address (host, without the port), the bytes of message data received
from its connections and not yet forwarded. While an address is at its budget its connections stop
reading: TCP flow control pushes back on that address alone, and reading resumes as soon as the relay
has forwarded enough. Nothing is dropped or cut, and other addresses are not slowed.

Data is fed to the WebSocket parser in slices of ``SLICE_BYTES`` with the budget checked between
them, so an address overshoots its budget by at most what one slice inflates to (zlib's ratio is at
most about 1,000:1, and each frame is bounded by the frame limit anyway).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from websockets.frames import Frame, Opcode

# Wire bytes parsed between two budget checks (asyncio reads up to 256 KiB at a time).
SLICE_BYTES = 16 * 1024

_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class AddressBudget:
    """Bytes held per remote address, and the connections waiting for their address to drop below
    the limit."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self._held: dict[str, int] = {}
        self._waiting: dict[str, list[Callable[[], None]]] = {}
        self.peak = 0  # the most any one address held (for tests and metrics)
        self.pauses = 0  # how often a connection stopped reading for its address's budget

    def held(self, address: str) -> int:
        return self._held.get(address, 0)

    def over(self, address: str) -> bool:
        return self._held.get(address, 0) >= self.limit

    def take(self, address: str, size: int) -> None:
        held = self._held.get(address, 0) + size
        self._held[address] = held
        self.peak = max(self.peak, held)

    def give(self, address: str, size: int) -> None:
        held = self._held.get(address, 0) - size
        if held > 0:
            self._held[address] = held
        else:
            self._held.pop(address, None)
        if held < self.limit and address in self._waiting:
            for wake in self._waiting.pop(address):
                wake()

    def wait(self, address: str, wake: Callable[[], None]) -> None:
        """Call ``wake`` once the address is below its limit again."""
        self.pauses += 1
        self._waiting.setdefault(address, []).append(wake)


class BudgetedReading:
    """A ``websockets`` connection (mixin) that charges the data frames it receives to its remote
    address's budget and stops reading while the address is at the limit.

    ``budget`` is set on a subclass by the engine. The relay calls ``message_forwarded`` after each
    message it has passed on (or kept), and ``release_budget`` when the connection ends.
    """

    budget: AddressBudget | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        peer = transport.get_extra_info("peername")
        self._budget_address = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
        self._stash: deque[bytes] = deque()
        self._queue_paused = False
        self._budget_paused = False
        self._transport_paused = False
        self._message_bytes = 0  # of the message being received (frames so far)
        self._held_messages: deque[int] = deque()  # received, not forwarded yet
        if self.budget is not None:
            # websockets pauses reading when its queue of frames is full; so do we when the
            # address is at its budget: the transport reads only when neither wants it paused.
            recv_messages: Any = self.recv_messages  # type: ignore[attr-defined]
            recv_messages.pause = self._pause_for_queue
            recv_messages.resume = self._resume_for_queue

    # -- reading on and off ---------------------------------------------------------------------

    def _pause_for_queue(self) -> None:
        self._queue_paused = True
        self._apply_reading()

    def _resume_for_queue(self) -> None:
        # Called from inside ``recv`` (the frame queue's get): parse what is stashed on the next
        # turn of the loop, not from within the queue.
        self._queue_paused = False
        if self._stash:
            asyncio.get_running_loop().call_soon(self._resume)
        else:
            self._apply_reading()

    def _apply_reading(self) -> None:
        transport: Any = self.transport  # type: ignore[attr-defined]
        paused = self._queue_paused or self._budget_paused
        if paused != self._transport_paused and not transport.is_closing():
            self._transport_paused = paused
            if paused:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.budget is None:
            super().data_received(data)  # type: ignore[misc]
            return
        self._stash.append(data)
        self._feed()

    def _feed(self) -> None:
        """Parse stashed data a slice at a time while the address is below its budget."""
        assert self.budget is not None
        while self._stash:
            if self._queue_paused:
                return  # the frame queue is full: reading resumes when the relay takes a frame
            if self.budget.over(self._budget_address):
                if not self._budget_paused:
                    self._budget_paused = True
                    self._apply_reading()
                    self.budget.wait(self._budget_address, self._wake)
                return
            data = self._stash.popleft()
            if len(data) > SLICE_BYTES:
                self._stash.appendleft(data[SLICE_BYTES:])
                data = data[:SLICE_BYTES]
            super().data_received(data)  # type: ignore[misc]

    def _wake(self) -> None:
        # Called from the relay releasing bytes (inside another connection's pump): parse on the
        # next turn of the loop.
        asyncio.get_running_loop().call_soon(self._unblock)

    def _unblock(self) -> None:
        self._budget_paused = False
        self._resume()

    def _resume(self) -> None:
        transport: Any = self.transport  # type: ignore[attr-defined]
        if transport.is_closing():
            self._stash.clear()
            return
        self._feed()
        self._apply_reading()

    # -- charging and releasing -----------------------------------------------------------------

    def process_event(self, event: Any) -> None:
        if self.budget is not None and isinstance(event, Frame) and event.opcode in _DATA:
            size = len(event.data)
            self.budget.take(self._budget_address, size)
            self._message_bytes += size
            if event.fin:
                self._held_messages.append(self._message_bytes)
                self._message_bytes = 0
        super().process_event(event)  # type: ignore[misc]

    def message_forwarded(self) -> None:
        """The relay is done with the oldest message received: its bytes leave the budget."""
        if self.budget is not None and self._held_messages:
            self.budget.give(self._budget_address, self._held_messages.popleft())

    def release_budget(self) -> None:
        """The connection ended: whatever it still held leaves the budget."""
        if self.budget is None:
            return
        held = sum(self._held_messages) + self._message_bytes
        self._held_messages.clear()
        self._message_bytes = 0
        self._stash.clear()
        if held:
            self.budget.give(self._budget_address, held)
