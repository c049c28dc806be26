"""The compiled fast path's loop: the Python host's loop (`loop.run_span`) with a compiled
policy and its order keeping inside.

The host's loop must stop at every report. A policy that moves its quotes on every change of
the touch spends most of its time where it moves them: two cancels and two new orders, and a
latency later their arrival (`orders.apply_due`). So here the order keeping is written into
the loop, the policy's two orders (slot and order id of its bid and its offer) and the sample
grid live in local variables for the whole span (written back to the state cells when the loop
returns), the due orders and the fill rules are inlined, the host asks for fill reports only
(`orders.C_FILLS_ONLY`), a trade at an order's own price goes to the rules only where it can
matter (the queue model), and the loop runs without numba's reference counting
(`agents.replay.jit`; `advance_counted` is the same loop with it, for a policy that allocates).

The order slots, rules and latencies are the same code as the Python path's (the inlined
functions are those very functions, compiled inline), so both paths fill the same orders the
same way (`tests/test_replay_paths.py`).
"""

from __future__ import annotations

from agents.replay import orders as o
from agents.replay import rules
from agents.replay.jit import jit, jit_counted, jit_inline
from agents.replay.tape import QUOTE

__all__ = ["S_FIELDS", "S_NEXT_SAMPLE", "S_NSAMP", "advance_compiled", "advance_counted"]

# policy state cells: the policy's bid and offer (slot, order id) and its sample grid
S_BID_SLOT, S_BID_OID, S_ASK_SLOT, S_ASK_OID, S_NEXT_SAMPLE, S_NSAMP = 0, 1, 2, 3, 4, 5
S_FIELDS = 6


def _inline(fn):
    """The numba function `fn` recompiled to be inlined where it is called (itself without
    numba)."""
    py = getattr(fn, "py_func", None)
    return fn if py is None else jit_inline(py)


_apply_due = _inline(o.apply_due)  # once per order event, but a call costs more than its work
_on_quote = _inline(rules.on_quote)
_on_trade = _inline(rules.on_trade)


@jit
def advance_compiled(i, n, ts_, kind_, sym_, a_, b_, c_, d_, mkt, ords, acct, rep, ctl, prm,
                     policy, p0, p1, p2, ps, psym, samp, sample_ns, flush_at):  # fmt: skip
    """Apply updates from `i` with `policy` quoting symbol `psym`; returns the next index.

    Stops when `flush_at` reports are waiting or the sample buffer is full (the host empties
    them and calls again)."""
    rule_qt = prm[o.P_RULE] == o.QUOTE_THROUGH
    queue = prm[o.P_QUEUE] != o.QUEUE_NONE
    lat_order = prm[o.P_LAT_ORDER]
    lat_cancel = prm[o.P_LAT_CANCEL]
    bid_slot = ps[S_BID_SLOT]
    bid_oid = ps[S_BID_OID]
    ask_slot = ps[S_ASK_SLOT]
    ask_oid = ps[S_ASK_OID]
    next_sample = ps[S_NEXT_SAMPLE]
    nsamp = ps[S_NSAMP]
    n0 = i
    while i < n:
        ts = ts_[i]
        if ts >= next_sample:  # one row of the inventory grid, then the same update again
            if nsamp >= samp.shape[0]:
                break
            samp[nsamp, 0] = next_sample
            samp[nsamp, 1] = acct[psym, o.A_POS]
            samp[nsamp, 2] = acct[psym, o.A_CASH]
            samp[nsamp, 3] = mkt[psym, o.M_BID]
            samp[nsamp, 4] = mkt[psym, o.M_ASK]
            nsamp += 1
            next_sample += sample_ns
            continue
        if ctl[o.C_NEXT_DUE] <= ts:
            _apply_due(ts, mkt, ords, acct, rep, ctl, prm)  # re-bounds the orders itself
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
                _on_quote(s, ts, bid, b_[i], ask, d_[i], mkt, ords, acct, rep, ctl, prm)
            else:
                mkt[s, o.M_BID] = bid
                mkt[s, o.M_BIDQ] = b_[i]
                mkt[s, o.M_ASK] = ask
                mkt[s, o.M_ASKQ] = d_[i]
                mkt[s, o.M_TS] = ts
            if s == psym:
                want_bid, want_ask, size = policy(ts, bid, b_[i], ask, d_[i],
                                                  acct[s, o.A_POS], p0, p1, p2)  # fmt: skip
                # the bid, then the offer: a resting order (live, not being
                # cancelled) at another price is cancelled, a new one sent
                live = (bid_slot >= 0 and ords[bid_slot, o.O_STATE] != o.FREE
                        and ords[bid_slot, o.O_OID] == bid_oid
                        and ords[bid_slot, o.O_CANCEL_AT] == o.NEVER)  # fmt: skip
                if not (live and ords[bid_slot, o.O_PRICE] == want_bid):
                    if live:
                        o.cancel_order(ords, ctl, bid_slot, ts + lat_cancel)
                    bid_slot = -1
                    if want_bid > 0 and size > 0:
                        slot = o.new_order(ords, ctl, s, 1, want_bid, size, o.LIMIT,
                                           ts + lat_order)  # fmt: skip
                        if slot >= 0:
                            bid_slot = slot
                            bid_oid = ords[slot, o.O_OID]
                live = (ask_slot >= 0 and ords[ask_slot, o.O_STATE] != o.FREE
                        and ords[ask_slot, o.O_OID] == ask_oid
                        and ords[ask_slot, o.O_CANCEL_AT] == o.NEVER)  # fmt: skip
                if not (live and ords[ask_slot, o.O_PRICE] == want_ask):
                    if live:
                        o.cancel_order(ords, ctl, ask_slot, ts + lat_cancel)
                    ask_slot = -1
                    if want_ask > 0 and size > 0:
                        slot = o.new_order(ords, ctl, s, -1, want_ask, size, o.LIMIT,
                                           ts + lat_order)  # fmt: skip
                        if slot >= 0:
                            ask_slot = slot
                            ask_oid = ords[slot, o.O_OID]
        else:
            price = a_[i]
            los = mkt[s, o.M_LOSELL]
            hib = mkt[s, o.M_HIBUY]
            # a trade at an order's own price only counts for the queue model; through it,
            # for trade-through (`rules.on_trade`)
            if (queue and (price >= los or price <= hib)) or (
                    not rule_qt and (price > los or price < hib)):  # fmt: skip
                _on_trade(s, ts, price, b_[i], c_[i], mkt, ords, acct, rep, ctl, prm)
            else:
                mkt[s, o.M_LAST] = price
        i += 1
        if ctl[o.C_NREP] != nrep:  # a fill (or a marketable arrival) moved the bounds
            o.retrigger(mkt, ords, ctl)
        if ctl[o.C_NREP] >= flush_at:
            break
    ps[S_BID_SLOT] = bid_slot
    ps[S_BID_OID] = bid_oid
    ps[S_ASK_SLOT] = ask_slot
    ps[S_ASK_OID] = ask_oid
    ps[S_NEXT_SAMPLE] = next_sample
    ps[S_NSAMP] = nsamp
    ctl[o.C_EVENTS] += i - n0
    return i


_advance_inline = _inline(advance_compiled)


@jit_counted
def advance_counted(i, n, ts_, kind_, sym_, a_, b_, c_, d_, mkt, ords, acct, rep, ctl, prm,
                    policy, p0, p1, p2, ps, psym, samp, sample_ns, flush_at):  # fmt: skip
    """`advance_compiled` with numba's reference counting, for a policy that allocates (see
    `agents.replay.jit`)."""
    return _advance_inline(i, n, ts_, kind_, sym_, a_, b_, c_, d_, mkt, ords, acct, rep,
                           ctl, prm, policy, p0, p1, p2, ps, psym, samp, sample_ns,
                           flush_at)  # fmt: skip
