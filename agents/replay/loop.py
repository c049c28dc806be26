"""The Python host's replay loop: apply updates one after another, stopping where the host
has work.

`run_span` runs until an update produces a report (an order reached the market, was filled,
cancelled or replaced), until an update the strategy listens to (``stop_mask``), or until the
first update stamped at or after `stop_ts` (the strategy's next timer). So a strategy on a
timer costs one call per timer, not one per update, and the updates in between run compiled.
The compiled fast path has its own loop, with the policy and its order keeping inside
(`agents.replay.compiled_loop`).

Speed: most updates cannot touch an order (they do not reach the highest live bid or the
lowest live offer, `orders.retrigger`). Those only update the market state, inline; the rest
call the rules (`rules.on_quote`, `rules.on_trade`).
"""

from __future__ import annotations

from agents.replay import orders as o
from agents.replay.jit import jit
from agents.replay.rules import on_quote, on_trade
from agents.replay.tape import QUOTE

__all__ = ["STOP_QUOTE", "STOP_TRADE", "run_span"]

STOP_QUOTE = 1
STOP_TRADE = 2


@jit
def run_span(i, n, stop_ts, stop_mask, ts_, kind_, sym_, a_, b_, c_, d_, mkt, ords, acct, rep,
             ctl, prm):  # fmt: skip
    """Apply updates from `i` (see the module docstring); returns the next index to apply."""
    rule_qt = prm[o.P_RULE] == o.QUOTE_THROUGH
    queue = prm[o.P_QUEUE] != o.QUEUE_NONE
    n0 = i
    while i < n:
        ts = ts_[i]
        if ts >= stop_ts:
            break
        if ctl[o.C_NEXT_DUE] <= ts:
            o.apply_due(ts, mkt, ords, acct, rep, ctl, prm)  # re-bounds the orders itself
        nrep = ctl[o.C_NREP]
        s = sym_[i]
        is_quote = kind_[i] == QUOTE
        if is_quote:
            bid = a_[i]
            ask = c_[i]
            hib = mkt[s, o.M_HIBUY]
            los = mkt[s, o.M_LOSELL]
            slow = rule_qt and (ask <= hib or bid >= los)
            if queue and (bid <= hib or ask >= los):
                slow = True
            if slow:
                on_quote(s, ts, bid, b_[i], ask, d_[i], mkt, ords, acct, rep, ctl, prm)
            else:
                mkt[s, o.M_BID] = bid
                mkt[s, o.M_BIDQ] = b_[i]
                mkt[s, o.M_ASK] = ask
                mkt[s, o.M_ASKQ] = d_[i]
                mkt[s, o.M_TS] = ts
        else:
            price = a_[i]
            if (queue or not rule_qt) and (price >= mkt[s, o.M_LOSELL]
                                           or price <= mkt[s, o.M_HIBUY]):  # fmt: skip
                on_trade(s, ts, price, b_[i], c_[i], mkt, ords, acct, rep, ctl, prm)
            else:
                mkt[s, o.M_LAST] = price
        i += 1
        if ctl[o.C_NREP] != nrep:  # a fill (or a marketable arrival) moved the bounds
            o.retrigger(mkt, ords, ctl)
        if ctl[o.C_NREP] > 0:
            break
        if stop_mask != 0:
            if is_quote:
                if stop_mask & STOP_QUOTE:
                    break
            elif stop_mask & STOP_TRADE:
                break
    ctl[o.C_EVENTS] += i - n0
    return i

