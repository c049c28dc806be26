"""Follow an exchange's drop copy from a test: wait until enough trades, or trades by the right
agents, went by; never for a stretch of wall time (how much a live market does in a few seconds
depends on how busy the machine is)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import zmq

from exchange.protocol import decode_batch

WAIT_S = 180.0  # a safety net against a hang, never a synchronisation


class DropCopy:
    """A subscriber to the drop copy; counts trades and the populations that traded in them
    (agent names are ``POPULATION-i``)."""

    def __init__(self, endpoint: str) -> None:
        self._ctx = zmq.Context()
        self.sock = self._ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"trades")
        self.sock.connect(endpoint)
        self.trades = 0
        self.populations: Counter[str] = Counter()

    def wait(self, pred: Callable[[DropCopy], bool], timeout: float = WAIT_S) -> bool:
        """Read trades until `pred(self)` holds; False if `timeout` (the safety net) ran out."""
        deadline = time.monotonic() + timeout
        while not pred(self):
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000)):
                return False
            _topic, payload = self.sock.recv_multipart()
            for m in decode_batch(payload):
                if m.type == "trade_capture":
                    self.trades += 1
                    for account in (m.buy_account, m.sell_account):
                        self.populations[account.rsplit("-", 1)[0]] += 1
        return True

    def close(self) -> None:
        self.sock.close()
        self._ctx.term()
