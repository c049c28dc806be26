"""The discrete-event kernel: a virtual clock and a heap of timestamped callbacks.

Nothing here knows about markets or agents; `agents.sim.market` builds the exchange on top.

Time is an integer number of nanoseconds that only moves when the kernel pops the next event,
so a simulated half hour runs as fast as the callbacks allow and two runs with the same seed
are identical to the bit.

Ordering rule (documented, tested): events run in increasing time. Events scheduled for the
*same* nanosecond run in the order of a tiebreak key that the kernel draws, for every scheduled
event, from its own generator seeded with the kernel's seed, then (for the rare equal keys) in
scheduling order. So simultaneous arrivals (two agents' orders reaching the exchange in the same
nanosecond, say) are served in a random but reproducible order: nobody wins every tie because
of their agent id, their name or the order in which they were added, and the same seed always
gives the same winner.

A callback that needs several things to happen in a fixed order at one instant must do them
itself (one event, a list of work), not schedule several events: the market does exactly that
for the messages one agent sends in one go (a connection is first-in, first-out).

Speed: an event is one tuple ``(ts, key, seq, callback, args)`` in a `heapq`; no per-event
objects, no cancellation bookkeeping (a callback that may have become stale checks a token).
The market schedules its hottest events itself, with exactly what `schedule` does (the same
tiebreak draw from ``_bits`` and the next number from ``_next_seq``, pushed on ``_heap``),
to save a method call and an argument tuple per event; anything that does so must keep that
recipe, or the tie order, hence the run, would change.
The tiebreak key comes from `random.Random.getrandbits` (tens of nanoseconds, portable and
fully determined by the integer seed), not from numpy, whose per-call overhead is ten times
higher.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from typing import Any

__all__ = ["Kernel"]

_heappush = heapq.heappush
_heappop = heapq.heappop


class Kernel:
    """A virtual clock (``now``, integer ns) and a time-ordered queue of callbacks."""

    __slots__ = ("_bits", "_heap", "_next_seq", "_stopped", "events_processed", "now", "seed")

    def __init__(self, seed: int = 0, start_ns: int = 0) -> None:
        self.seed = seed
        self.now = start_ns
        self.events_processed = 0
        self._heap: list[tuple] = []
        self._next_seq = itertools.count(1).__next__  # scheduling order, for equal keys
        # The kernel's own stream, used for tiebreak keys only. Derived from the seed with a
        # fixed salt so it is not the same stream as anything else seeded with `seed`.
        self._bits = random.Random(f"agora-kernel:{seed}").getrandbits
        self._stopped = False

    def __len__(self) -> int:
        """Events waiting."""
        return len(self._heap)

    def schedule(self, at_ns: int, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` when the clock reaches `at_ns` (not before `now`)."""
        if at_ns < self.now:
            raise ValueError(f"cannot schedule in the past: {at_ns} < now {self.now}")
        _heappush(self._heap, (at_ns, self._bits(32), self._next_seq(), callback, args))

    def schedule_in(self, delay_ns: int, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` `delay_ns` after now."""
        self.schedule(self.now + delay_ns, callback, *args)

    def peek(self) -> int | None:
        """The time of the next event (None: nothing is scheduled)."""
        return self._heap[0][0] if self._heap else None

    def stop(self) -> None:
        """Make `run` return after the current event."""
        self._stopped = True

    def run(self, until_ns: int | None = None, max_events: int | None = None) -> int:
        """Process events in order until the queue is empty, the next event is later than
        `until_ns` (the clock is then set to `until_ns`), `max_events` have run, or `stop`.

        Returns the number of events processed by this call.
        """
        heap = self._heap
        pop = _heappop
        limit = until_ns if until_ns is not None else 2**63
        budget = max_events if max_events is not None else 2**63
        self._stopped = False
        n = 0
        try:
            # Pop first and put back the one event past the limit (once per call), rather
            # than peek, compare, then pop for every event: the loop is the kernel's whole cost.
            while heap and n < budget:
                ev = pop(heap)
                ts = ev[0]
                if ts > limit:
                    _heappush(heap, ev)
                    break
                self.now = ts
                n += 1
                ev[3](*ev[4])
                if self._stopped:
                    break
        finally:
            self.events_processed += n
        if until_ns is not None and self.now < until_ns and not self._stopped and n < budget:
            self.now = until_ns
        return n
