"""The replay loop: apply updates one after another, stopping where the host has work.

`advance` is the whole inner loop, for both hosts:

* the Python host (`agents.replay.driver`) runs it until an update produces a report (an
  order reached the market, was filled, cancelled or replaced), until an update the strategy
  listens to (``stop_mask``), or until the first update stamped at or after `stop_ts` (the
  strategy's next timer). So a strategy on a timer costs one call per timer, not one per
  update, and the updates in between run compiled;
* the compiled fast path (`agents.replay.fast`) passes a compiled policy, called after every
  quote of its symbol, and runs until its report buffer needs emptying.

Speed: most updates cannot touch an order (they do not reach the highest live bid or the
lowest live offer, `orders.retrigger`). Those only update the market state, inline; the rest
call the rules (`rules.on_quote`, `rules.on_trade`). Keeping the rare paths behind real calls
matters: numba reference-counts every array an inlined call takes, once per update.
"""

from __future__ import annotations

from agents.replay import orders as o
from agents.replay.jit import jit
from agents.replay.rules import on_quote, on_trade
from agents.replay.tape import QUOTE

__all__ = ["STOP_QUOTE", "STOP_TRADE", "advance", "run_span"]

STOP_QUOTE = 1
STOP_TRADE = 2

# policy state cells (the compiled path's own bid and offer, and its sample grid)
S_BID_SLOT, S_BID_OID, S_ASK_SLOT, S_ASK_OID, S_NEXT_SAMPLE, S_NSAMP = 0, 1, 2, 3, 4, 5
S_FIELDS = 6


@jit
def keep(ords, ctl, ps, k_slot, k_oid, sym, side, want, size, ts, lat_order, lat_cancel):
    """Make the policy's order on one side rest at `want` (0: none): cancel a resting one at
    another price (cancel latency), send a new one (order latency)."""
    slot = ps[k_slot]
    live = (slot >= 0 and ords[slot, o.O_STATE] != o.FREE and ords[slot, o.O_OID] == ps[k_oid]
            and ords[slot, o.O_CANCEL_AT] == o.NEVER)  # fmt: skip
    if live and ords[slot, o.O_PRICE] == want:
        return
    if live:
        o.cancel_order(ords, ctl, slot, ts + lat_cancel)
    ps[k_slot] = -1
    if want > 0 and size > 0:
        slot = o.new_order(ords, ctl, sym, side, want, size, o.LIMIT, ts + lat_order)
        if slot >= 0:
            ps[k_slot] = slot
            ps[k_oid] = ords[slot, o.O_OID]


@jit
def sample(ps, samp, mkt, acct, sym, sample_ns):
    """One row of the compiled path's inventory grid; False when the buffer is full."""
    k = ps[S_NSAMP]
    if k >= samp.shape[0]:
        return False
    samp[k, 0] = ps[S_NEXT_SAMPLE]
    samp[k, 1] = acct[sym, o.A_POS]
    samp[k, 2] = acct[sym, o.A_CASH]
    samp[k, 3] = mkt[sym, o.M_BID]
    samp[k, 4] = mkt[sym, o.M_ASK]
    ps[S_NSAMP] = k + 1
    ps[S_NEXT_SAMPLE] += sample_ns
    return True


@jit
def advance(i, n, stop_ts, stop_mask, host, ts_, kind_, sym_, a_, b_, c_, d_, mkt, ords, acct,
            rep, ctl, prm, policy, p0, p1, p2, ps, psym, samp, sample_ns, flush_at):  # fmt: skip
    """Apply updates from `i` (see the module docstring); returns the next index to apply.

    `host` 1: the Python host (stop on reports and on `stop_mask` updates); 0: the compiled
    path (stop when ``flush_at`` reports are waiting or the sample buffer is full).
    """
    rule_qt = prm[o.P_RULE] == o.QUOTE_THROUGH
    queue = prm[o.P_QUEUE] != o.QUEUE_NONE
    lat_order = prm[o.P_LAT_ORDER]
    lat_cancel = prm[o.P_LAT_CANCEL]
    n0 = i
    while i < n:
        ts = ts_[i]
        if ts >= stop_ts:
            break
        if psym >= 0 and ts >= ps[S_NEXT_SAMPLE]:
            if not sample(ps, samp, mkt, acct, psym, sample_ns):
                break
            continue
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
        if policy is not None:  # noqa: SIM102  (alone: numba prunes it when policy is None)
            if is_quote and s == psym:
                want_bid, want_ask, size = policy(ts, a_[i], b_[i], c_[i], d_[i], acct[s, o.A_POS],
                                                  p0, p1, p2)  # fmt: skip
                slot = ps[S_BID_SLOT]
                if slot < 0:
                    change = want_bid > 0
                else:  # an order (live, not being cancelled) at another price than wanted
                    change = not (ords[slot, o.O_PRICE] == want_bid
                                  and ords[slot, o.O_STATE] != o.FREE
                                  and ords[slot, o.O_OID] == ps[S_BID_OID]
                                  and ords[slot, o.O_CANCEL_AT] == o.NEVER)  # fmt: skip
                if change:
                    keep(ords, ctl, ps, S_BID_SLOT, S_BID_OID, s, 1, want_bid, size, ts,
                         lat_order, lat_cancel)  # fmt: skip
                slot = ps[S_ASK_SLOT]
                if slot < 0:
                    change = want_ask > 0
                else:
                    change = not (ords[slot, o.O_PRICE] == want_ask
                                  and ords[slot, o.O_STATE] != o.FREE
                                  and ords[slot, o.O_OID] == ps[S_ASK_OID]
                                  and ords[slot, o.O_CANCEL_AT] == o.NEVER)  # fmt: skip
                if change:
                    keep(ords, ctl, ps, S_ASK_SLOT, S_ASK_OID, s, -1, want_ask, size, ts,
                         lat_order, lat_cancel)  # fmt: skip
        i += 1
        if ctl[o.C_NREP] != nrep:  # a fill (or a marketable arrival) moved the bounds
            o.retrigger(mkt, ords, ctl)
        if host and ctl[o.C_NREP] > 0:
            break
        if host:
            if stop_mask != 0:
                if is_quote:
                    if stop_mask & STOP_QUOTE:
                        break
                elif stop_mask & STOP_TRADE:
                    break
        elif ctl[o.C_NREP] >= flush_at:
            break
    ctl[o.C_EVENTS] += i - n0
    return i


@jit
def run_span(i, n, stop_ts, stop_mask, ts_, kind_, sym_, a_, b_, c_, d_, mkt, ords, acct, rep,
             ctl, prm, samp):  # fmt: skip
    """`advance` for the Python host: no policy (None: its branch is compiled out)."""
    return advance(i, n, stop_ts, stop_mask, 1, ts_, kind_, sym_, a_, b_, c_, d_, mkt, ords,
                   acct, rep, ctl, prm, None, 0, 0, 0, ctl, -1, samp, 1, 0)  # fmt: skip
