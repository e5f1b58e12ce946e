"""Which slots of a data-parallel replay reservoir this rank holds, and in which of its local rows.

The reservoir is one global buffer of ``capacity`` slots whose slot decisions every rank takes alike
(the same seeded generator over the same global stream), so that the buffer a run holds, samples
and probes does not depend on the world size. An episode's payload (ids, labels, teacher) stays on
the rank that saw it: that rank *owns* the slot and keeps the payload in one of its local rows. A
rank's storage holds about ``capacity / W`` rows and grows (rarely, by a quarter) when the reservoir's
draws hand it more. At W = 1 the map is the identity (row = slot) and nothing here is consulted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def initial_rows(capacity: int, world_size: int) -> int:
    """Local rows to allocate up front: the expected share plus a margin for the draws' spread."""
    if world_size == 1:
        return capacity
    share = capacity / world_size
    return min(capacity, math.ceil(share + 4 * math.sqrt(share) + 8))


@dataclass
class ShardMap:
    """slot -> local row (-1: held by another rank, or empty) and the local rows free for reuse."""

    capacity: int
    rows: int  # local rows allocated
    row_of: list[int] = field(default_factory=list)
    slot_of: list[int] = field(default_factory=list)  # local row -> slot (-1: free)
    free: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.row_of:
            self.row_of = [-1] * self.capacity
            self.slot_of = [-1] * self.rows
            self.free = list(range(self.rows - 1, -1, -1))  # pop() hands out row 0 first

    def assign(self, slot: int, mine: bool) -> int | None:
        """Slot ``slot`` is overwritten; ``mine``: by an episode of this rank. Returns its local row (or None)."""
        row = self.row_of[slot]
        if not mine:
            if row >= 0:  # another rank's episode replaces ours: the row is free again
                self.row_of[slot], self.slot_of[row] = -1, -1
                self.free.append(row)
            return None
        if row < 0:
            if not self.free:
                return -1  # the caller grows the storage and asks again
            row = self.free.pop()
            self.row_of[slot], self.slot_of[row] = row, slot
        return row

    def grow(self, rows: int) -> None:
        self.slot_of += [-1] * (rows - self.rows)
        self.free = list(range(rows - 1, self.rows - 1, -1)) + self.free
        self.rows = rows

    def held(self) -> int:
        return self.rows - len(self.free)

    def state_dict(self) -> dict:
        return {"rows": self.rows, "row_of": list(self.row_of), "slot_of": list(self.slot_of), "free": list(self.free)}

    @classmethod
    def from_state(cls, capacity: int, state: dict) -> ShardMap:
        return cls(capacity, int(state["rows"]), list(state["row_of"]), list(state["slot_of"]), list(state["free"]))
