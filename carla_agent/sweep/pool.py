"""Who may run the next cell: :class:`SlotPool`, the sweep's scheduling without Ray.

A slot is where one cell runs at a time. On the embedded backend the slots are
anonymous (``--workers N``: N cells at once; Ray places each task on a free
CPU). On the CARLA backend each slot is one CARLA server (``--carla-servers
host:port,...``), held by one Ray actor, and a server drives one cell at a time:
two drives on one server would share its world. The pool hands out idle slots
in a fixed order and takes them back when a cell ends, however it ends.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Deque, Generic, List, Optional, Sequence, Tuple, TypeVar

from carla_agent.sweep.grid import SweepError

T = TypeVar("T")


@dataclass(frozen=True)
class CarlaServer:
    """One CARLA server (or ``python -m carla_agent serve``): RPC ``port``; the Traffic Manager's is ``tm_port``."""

    host: str
    port: int
    tm_port: int = 8000

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


def parse_servers(text: str, tm_port: int = 8000) -> Tuple[CarlaServer, ...]:
    """``host:port,host:port`` -> servers (a server named twice is refused: it would drive two cells at once).

    Raises:
        SweepError: naming ``--carla-servers`` and the bad entry.
    """
    out: List[CarlaServer] = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not (0 < int(port) < 65536):
            raise SweepError(f"--carla-servers: {item!r} is not host:port; expected e.g. 127.0.0.1:2000,10.0.0.2:2000")
        server = CarlaServer(host, int(port), tm_port)
        if server in out:
            raise SweepError(f"--carla-servers: {item} is listed twice; each server drives one cell at a time")
        out.append(server)
    if not out:
        raise SweepError("--carla-servers: no server given; expected e.g. 127.0.0.1:2000,127.0.0.1:3000")
    return tuple(out)


class SlotPool(Generic[T]):
    """Idle slots, handed out first in, first out.

    Args:
        slots: the slots (server descriptions, or worker numbers).
    """

    def __init__(self, slots: Sequence[T]) -> None:
        if not slots:
            raise SweepError("a sweep needs at least one worker or CARLA server")
        self.slots = tuple(slots)
        self._idle: Deque[T] = deque(self.slots)
        self._busy: List[T] = []

    def acquire(self) -> Optional[T]:
        """An idle slot, now busy; None when every slot is busy."""
        if not self._idle:
            return None
        slot = self._idle.popleft()
        self._busy.append(slot)
        return slot

    def release(self, slot: T) -> None:
        """Give a busy slot back (at the end of the queue)."""
        if slot not in self._busy:
            raise ValueError(f"slot {slot!r} is not busy")
        self._busy.remove(slot)
        self._idle.append(slot)

    @property
    def busy(self) -> int:
        return len(self._busy)

    def __len__(self) -> int:
        return len(self.slots)


__all__ = ["CarlaServer", "SlotPool", "parse_servers"]
