"""Hand-written tapes and scripted agents for the replay tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.agent import Agent
from agents.events import Fill, Quote
from agents.replay.config import ReplayConfig
from agents.replay.driver import Replay
from agents.replay.record import Record
from agents.replay.tape import NO_ASK, NO_BID, QUOTE, TRADE, Chunk

MS = 1_000_000
T0 = 1_714_568_400_000_000_000  # 2024-05-01T13:00:00Z
AGGR = {"buy": 1, "sell": -1, None: 0}


def tape(*rows: tuple) -> Chunk:
    """Rows ("q", ms, bid, bid_qty, ask, ask_qty) and ("t", ms, price, qty, aggressor);
    times in ms after T0, prices in ticks, None for an empty side."""
    cols: list[list[int]] = [[] for _ in range(7)]
    for row in rows:
        if row[0] == "q":
            _, ms, bid, bq, ask, aq = row
            vals = (T0 + round(ms * MS), QUOTE, 0, NO_BID if bid is None else bid, bq,
                    NO_ASK if ask is None else ask, aq)  # fmt: skip
        else:
            _, ms, price, qty, aggr = row
            vals = (T0 + round(ms * MS), TRADE, 0, price, qty, AGGR[aggr], 0)
        for c, v in zip(cols, vals, strict=True):
            c.append(v)
    return Chunk(np.array(cols[0], np.int64), np.array(cols[1], np.int8),
                 np.array(cols[2], np.int32), *(np.array(c, np.int64) for c in cols[3:]))


class Script(Agent):
    """Sends the orders of `params["orders"]` on start, and cancels / replaces / sends more
    at the given tape times (ms after T0, on the first update at or after it)."""

    from pydantic import BaseModel as _B

    class Params(_B):
        orders: list[tuple[str, int, int | None]] = []  # (side, qty, price) sent on start
        later: list[tuple[float, str, list[Any]]] = []  # (ms, action, args)

    def on_start(self) -> None:
        self.ids: list[str] = []
        self.fills: list[Fill] = []
        self.quotes: list[Quote] = []
        for side, qty, price in self.params.orders:
            self.ids.append(self.ctx.submit("X", side, qty, price))
        self.todo = sorted(self.params.later)

    def on_book(self, quote: Quote) -> None:
        self.quotes.append(quote)
        while self.todo and self.ctx.now() >= T0 + round(self.todo[0][0] * MS):
            _, action, args = self.todo.pop(0)
            if action == "cancel":
                self.ctx.cancel(self.ids[args[0]])
            elif action == "replace":
                self.ctx.replace(self.ids[args[0]], qty=args[1], price=args[2])
            elif action == "submit":
                self.ids.append(self.ctx.submit("X", args[0], args[1], args[2]))

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)


def replay(chunk: Chunk, orders: list, later: list | None = None, **cfg: Any
           ) -> tuple[Record, Script]:  # fmt: skip
    """Run `Script` over `chunk` with a replay configured by `cfg`."""
    agent = Script({"orders": orders, "later": later or []})
    rec = Replay(agent, ["X"], ReplayConfig(**cfg)).run([chunk])
    return rec, agent


def fills(rec: Record) -> list[tuple]:
    """(ms after T0, side, price, qty, rule) of every fill."""
    f = rec.fills
    return [((ts - T0) / MS, side, px, q, rule) for ts, side, px, q, rule in
            zip(f["ts"], f["side"], f["price"], f["qty"], f["rule"], strict=True)]  # fmt: skip
