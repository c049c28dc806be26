"""The compiled fast path: updates, fills and a compiled quoting policy in one numba loop.

A policy is a numba-compiled function ``policy(ts, bid, bid_qty, ask, ask_qty, position,
p0, p1, p2) -> (bid_price, ask_price, size)`` (three integer parameters; prices in ticks, 0:
no quote on that side), called
after every quote of the traded symbol. The loop keeps one bid and one offer: an order whose
price is no longer wanted is cancelled (with the cancel latency) and a new one sent (with the
order latency), through the same order slots, rules and latencies as the Python path
(`agents.replay.orders`, `agents.replay.rules`), so both fill the same orders the same way.

`join_policy` is the simple policy of the benchmark and of the equivalence test: join the
best bid and offer (``p0`` ticks behind them), ``p1`` lots, no side beyond ``p2`` lots of
inventory. `JoinQuoter` is the same policy as a Python `Agent`.

The loop runs without numba's reference counting (`agents.replay.jit`); a policy that
allocates arrays needs it, and runs in the same loop compiled with it (slower).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from agents.agent import Agent
from agents.events import Quote
from agents.replay import orders as o
from agents.replay.compiled_loop import S_NEXT_SAMPLE, S_NSAMP, advance_compiled, advance_counted
from agents.replay.config import ReplayConfig
from agents.replay.jit import HAVE_NUMBA, INSTALL_HINT, NO_REFCOUNT, jit
from agents.replay.record import RULE_NAMES, Record
from agents.replay.tape import NO_ASK, NO_BID, Chunk
from exchange.errors import UserError

__all__ = ["JoinQuoter", "TimedJoinQuoter", "join_policy", "run_compiled"]

@jit
def join_policy(ts, bid, bid_qty, ask, ask_qty, position, behind, size, max_inv):
    """Join the touch `behind` ticks behind it, `size` lots, inventory within `max_inv`."""
    want_bid = 0
    want_ask = 0
    if bid != NO_BID and position < max_inv:
        want_bid = bid - behind
    if ask != NO_ASK and position > -max_inv:
        want_ask = ask + behind
    return want_bid, want_ask, size


def run_compiled(
    chunks: Iterable[Chunk],
    symbols: list[str],
    config: ReplayConfig | None = None,
    policy: Callable[..., Any] | None = None,
    params: tuple[int, int, int] = (0, 1, 10),
    symbol: str | None = None,
) -> Record:
    """Replay `chunks` with a compiled `policy` (default `join_policy`) quoting `symbol`
    (default: the first); returns the same `Record` as the Python path (no orders table:
    the orders stay inside the loop; `Record.events` and the fills say what happened)."""
    if not HAVE_NUMBA:
        raise UserError(f"the compiled fast path needs numba: {INSTALL_HINT}")
    cfg = config or ReplayConfig()
    policy = policy or join_policy
    sym = symbols.index(symbol) if symbol is not None else 0
    mkt, ords, rep, ctl, acct = o.new_state(len(symbols), max_reports=1 << 16)
    prm = cfg.params()
    ctl[o.C_FILLS_ONLY] = 1  # only the fills are read (`_drain`): no other reports
    p0, p1, p2 = (int(x) for x in params)
    ps = np.array([-1, 0, -1, 0, -1, 0], np.int64)
    samp = np.zeros((4096, 5), np.int64)
    flush_at = rep.shape[0] - 4 * ords.shape[0] - 8
    rec = Record()
    name = symbols[sym]
    loop = _loop_for(policy)
    for chunk in chunks:
        if not len(chunk):
            continue
        cols = chunk.contiguous().columns()
        if rec.first_ts is None:
            rec.first_ts = int(cols[0][0])
            ps[S_NEXT_SAMPLE] = rec.first_ts
        i, n = 0, len(chunk)
        while i < n:
            i = loop(i, n, *cols, mkt, ords, acct, rep, ctl, prm, policy, p0, p1, p2, ps, sym,
                     samp, cfg.sample_ns, flush_at)  # fmt: skip
            _drain(rec, rep, ctl, symbols, cfg.account)
            _samples(rec, samp, ps, name, cfg.account)
        rec.last_ts = int(cols[0][-1])
    rec.events = int(ctl[o.C_EVENTS])
    if rec.last_ts is not None:
        m = mkt[sym]
        bid, ask = int(m[o.M_BID]), int(m[o.M_ASK])
        mid = (bid + ask) / 2 if bid != NO_BID and ask != NO_ASK else None
        pos, cash = int(acct[sym, o.A_POS]), int(acct[sym, o.A_CASH])
        rec.sample(rec.last_ts, cfg.account, name, pos, cash, mid,
                   None if mid is None else cash + pos * mid)  # fmt: skip
    return rec


def _loop_for(policy: Callable[..., Any]) -> Callable[..., Any]:
    """The loop without reference counting, unless `policy` allocates and needs the counted
    loop (`agents.replay.jit`): compiled on its own without counting, it does not type."""
    py = getattr(policy, "py_func", None)
    if py is None:
        return advance_compiled
    if py not in _COUNTED:
        import numba
        from numba.core.errors import TypingError

        try:
            numba.njit(**NO_REFCOUNT)(py).compile((numba.int64,) * 9)
            _COUNTED[py] = False
        except TypingError:
            _COUNTED[py] = True
    return advance_counted if _COUNTED[py] else advance_compiled


_COUNTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _drain(rec: Record, rep: np.ndarray, ctl: np.ndarray, symbols: list[str],
           account: str) -> None:  # fmt: skip
    """Move the fills out of the report buffer (column at a time: there may be many)."""
    n = int(ctl[o.C_NREP])
    rows = rep[:n]
    f = rows[rows[:, o.R_KIND] == o.REP_FILL]
    ctl[o.C_NREP] = 0
    if not len(f):
        return
    # column at a time through numpy takes and C-level maps: a run may fill millions of times
    cols = rec.fills
    k = len(f)
    cols["ts"].extend(f[:, o.R_TS].tolist())
    cols["clid"].extend([f"{account}.{oid}" for oid in f[:, o.R_OID].tolist()])
    cols["symbol"].extend(np.asarray(symbols, dtype=object)[f[:, o.R_SYM]].tolist())
    cols["side"].extend(_SIDES[(f[:, o.R_SIDE] > 0).view(np.int8)].tolist())
    cols["price"].extend(f[:, o.R_PRICE].tolist())
    cols["qty"].extend(f[:, o.R_QTY].tolist())
    cols["rule"].extend(_RULES[f[:, o.R_RULE]].tolist())
    cols["liquidity"].extend(_LIQUIDITY[(f[:, o.R_LIQ] != o.LIQ_MAKER).view(np.int8)].tolist())
    cols["fee"].extend([0] * k)
    cols["mid"].extend([None] * k)


_SIDES = np.array(["sell", "buy"], dtype=object)
_LIQUIDITY = np.array(["maker", "taker"], dtype=object)
_RULES = np.array(RULE_NAMES, dtype=object)


def _samples(rec: Record, samp: np.ndarray, ps: np.ndarray, symbol: str, account: str) -> None:
    k = int(ps[S_NSAMP])
    for ts, pos, cash, bid, ask in samp[:k].tolist():
        mid = (bid + ask) / 2 if bid != NO_BID and ask != NO_ASK else None
        rec.sample(ts, account, symbol, pos, cash, mid, None if mid is None else cash + pos * mid)
    ps[S_NSAMP] = 0


class JoinQuoter(Agent):
    """`join_policy` as a Python `Agent`: the same decisions on every quote, through `ctx`.

    `TimedJoinQuoter` decides on a timer of ``timer_ns`` instead (the benchmark's Python
    agent on a 100 ms timer).
    """

    from pydantic import BaseModel as _Base

    class Params(_Base):
        behind: int = 0
        size: int = 1
        max_inventory: int = 10
        timer_ns: int = 0
        symbol: str | None = None

    def on_start(self) -> None:
        self.symbol = self.params.symbol or self.ctx.symbols[0]
        self.ids: dict[str, str | None] = {"buy": None, "sell": None}
        self.pp = np.array([self.params.behind, self.params.size, self.params.max_inventory],
                           np.int64)  # fmt: skip
        if self.params.timer_ns:
            self.ctx.set_timer("quote", self.params.timer_ns)

    def on_book(self, quote: Quote) -> None:
        if quote.symbol == self.symbol:
            self.decide(quote)

    def on_timer(self, name: str) -> None:
        q = self.ctx.quote(self.symbol)
        if q is not None:
            self.decide(q)

    def decide(self, q: Quote) -> None:
        p = self.params
        bid = NO_BID if q.bid is None else q.bid
        ask = NO_ASK if q.ask is None else q.ask
        pos = self.ctx.position(self.symbol)
        # the policy's arithmetic, in Python (the compiled function would cost a call each)
        want_bid = bid - p.behind if bid != NO_BID and pos < p.max_inventory else 0
        want_ask = ask + p.behind if ask != NO_ASK and pos > -p.max_inventory else 0
        self.keep("buy", want_bid)
        self.keep("sell", want_ask)

    def keep(self, side: str, want: int) -> None:
        ctx = self.ctx
        clid = self.ids[side]
        order = ctx.portfolio.orders.get(clid) if clid is not None else None
        live = order is not None and not order.cancel_pending
        if live and order is not None and order.price == want:
            return
        if live and order is not None:
            ctx.cancel(order.client_order_id)
        self.ids[side] = None
        if want > 0:
            self.ids[side] = ctx.submit(self.symbol, side, self.params.size, want)


class TimedJoinQuoter(JoinQuoter):
    """`JoinQuoter` deciding every ``timer_ns`` of tape time (default 100 ms), not on quotes:
    without an `on_book` of its own, the replay runs compiled between two timers."""

    class Params(JoinQuoter.Params):
        timer_ns: int = 100_000_000

    on_book = Agent.on_book
