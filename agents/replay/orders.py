"""The strategy's orders inside the replay: fixed slots in an int64 array, and latency.

An order (or a cancel, or a replace) sent at time t takes effect at ``t + latency``: it can be
filled only by updates stamped at or after that instant, and a cancelled order can still be
filled by every update stamped before its cancel takes effect. So a strategy never reacts to
the update that fills it. Orders and cancels have their own latencies (`P_LAT_ORDER`,
`P_LAT_CANCEL`); a replace travels like an order.

Everything here runs inside the loop (compiled with numba when installed; see `jit`), and
the Python host calls the same functions for `ctx.submit/cancel/replace`, so the compiled
fast path and the Python path manage orders with one piece of code.

Reports go to a flat int64 array (`R_*` fields) the host reads after the loop returns.
"""

from __future__ import annotations

import numpy as np

from agents.replay.jit import jit, jit_inline
from agents.replay.tape import NO_ASK, NO_BID

# order fields
O_STATE, O_SYM, O_SIDE, O_PRICE, O_LEAVES, O_QTY, O_CUM, O_AHEAD = 0, 1, 2, 3, 4, 5, 6, 7
O_LIVE_AT, O_CANCEL_AT, O_REPL_AT, O_REPL_PRICE, O_REPL_QTY, O_OID, O_MARKET = (
    8, 9, 10, 11, 12, 13, 14)  # fmt: skip
O_FIELDS = 15
FREE, PENDING, LIVE = 0, 1, 2
LIMIT, MARKET, IOC = 0, 1, 2  # O_MARKET: how an order rests
NEVER = 2**62

# control cells
C_NREP, C_HIGH, C_NEXT_DUE, C_NEXT_OID, C_EVENTS = 0, 1, 2, 3, 4
C_FIELDS = 8

# run parameters
P_RULE, P_QUEUE, P_SIZE, P_LAT_ORDER, P_LAT_CANCEL = 0, 1, 2, 3, 4
P_FIELDS = 5
QUOTE_THROUGH, TRADE_THROUGH = 0, 1
QUEUE_NONE, QUEUE_DISPLAYED = 0, 1
SIZE_WHOLE, SIZE_CAPPED = 0, 1
RULE_TAKER = 2  # a marketable order filled on arrival against the displayed quote

# report fields
R_KIND, R_OID, R_TS, R_SYM, R_SIDE, R_PRICE, R_QTY, R_LEAVES, R_CUM, R_RULE, R_LIQ = range(11)
R_FIELDS = 11
REP_NEW, REP_FILL, REP_CANCELED, REP_REPLACED = 1, 2, 3, 4
LIQ_MAKER, LIQ_TAKER = 0, 1

# market state per symbol
M_BID, M_BIDQ, M_ASK, M_ASKQ, M_LAST, M_TS, M_HIBUY, M_LOSELL = 0, 1, 2, 3, 4, 5, 6, 7
M_FIELDS = 8
NONE_BUY = NO_BID - 1  # M_HIBUY without a live bid: below every price, empty side included
NONE_SELL = NO_ASK + 1

# account per symbol
A_POS, A_CASH = 0, 1


def new_state(n_symbols: int, max_orders: int = 256, max_reports: int = 4096) -> tuple:
    """Fresh (mkt, ords, rep, ctl, acct) arrays for a replay of `n_symbols` symbols."""
    mkt = np.zeros((max(1, n_symbols), M_FIELDS), np.int64)
    mkt[:, M_BID] = NO_BID
    mkt[:, M_ASK] = NO_ASK
    mkt[:, M_LAST] = -1
    mkt[:, M_TS] = -1
    mkt[:, M_HIBUY] = NONE_BUY
    mkt[:, M_LOSELL] = NONE_SELL
    ords = np.zeros((max_orders, O_FIELDS), np.int64)
    rep = np.zeros((max_reports, R_FIELDS), np.int64)
    ctl = np.zeros(C_FIELDS, np.int64)
    ctl[C_NEXT_DUE] = NEVER
    ctl[C_NEXT_OID] = 1
    acct = np.zeros((max(1, n_symbols), 2), np.int64)
    return mkt, ords, rep, ctl, acct


@jit_inline
def emit(rep, ctl, kind, ords, slot, ts, price, qty, rule, liq):
    """Append one report about `slot`'s order (its state after the change)."""
    n = ctl[C_NREP]
    if n >= rep.shape[0]:
        return  # the host sizes the buffer so this never happens; never write past it
    rep[n, R_KIND] = kind
    rep[n, R_OID] = ords[slot, O_OID]
    rep[n, R_TS] = ts
    rep[n, R_SYM] = ords[slot, O_SYM]
    rep[n, R_SIDE] = ords[slot, O_SIDE]
    rep[n, R_PRICE] = price
    rep[n, R_QTY] = qty
    rep[n, R_LEAVES] = ords[slot, O_LEAVES]
    rep[n, R_CUM] = ords[slot, O_CUM]
    rep[n, R_RULE] = rule
    rep[n, R_LIQ] = liq
    ctl[C_NREP] = n + 1


@jit_inline
def new_order(ords, ctl, sym, side, price, qty, market, at):
    """Put an order in a free slot, live from `at`; returns the slot (-1: no slot free)."""
    slot = -1
    for s in range(ctl[C_HIGH]):
        if ords[s, O_STATE] == FREE:
            slot = s
            break
    if slot < 0:
        if ctl[C_HIGH] >= ords.shape[0]:
            return -1
        slot = ctl[C_HIGH]
        ctl[C_HIGH] = slot + 1
    ords[slot, O_STATE] = PENDING
    ords[slot, O_SYM] = sym
    ords[slot, O_SIDE] = side
    ords[slot, O_PRICE] = price
    ords[slot, O_LEAVES] = qty
    ords[slot, O_QTY] = qty
    ords[slot, O_CUM] = 0
    ords[slot, O_AHEAD] = -1
    ords[slot, O_LIVE_AT] = at
    ords[slot, O_CANCEL_AT] = NEVER
    ords[slot, O_REPL_AT] = NEVER
    ords[slot, O_REPL_PRICE] = 0
    ords[slot, O_REPL_QTY] = 0
    ords[slot, O_OID] = ctl[C_NEXT_OID]
    ords[slot, O_MARKET] = market
    ctl[C_NEXT_OID] += 1
    if at < ctl[C_NEXT_DUE]:
        ctl[C_NEXT_DUE] = at
    return slot


@jit_inline
def cancel_order(ords, ctl, slot, at):
    """Cancel `slot`'s order from `at` on (an earlier cancel already on its way stands)."""
    if ords[slot, O_STATE] == FREE:
        return False
    if at < ords[slot, O_CANCEL_AT]:
        ords[slot, O_CANCEL_AT] = at
    if at < ctl[C_NEXT_DUE]:
        ctl[C_NEXT_DUE] = at
    return True


@jit_inline
def replace_order(ords, ctl, slot, price, qty, at):
    """Amend `slot`'s order from `at` on: `qty` is the new total quantity (as on the wire)."""
    if ords[slot, O_STATE] == FREE:
        return False
    ords[slot, O_REPL_AT] = at
    ords[slot, O_REPL_PRICE] = price
    ords[slot, O_REPL_QTY] = qty
    if at < ctl[C_NEXT_DUE]:
        ctl[C_NEXT_DUE] = at
    return True


@jit_inline
def book_fill(ords, acct, rep, ctl, slot, ts, price, qty, rule, liq):
    """Fill `qty` of `slot`'s order at `price`: position, cash, the order, a report."""
    side = ords[slot, O_SIDE]
    sym = ords[slot, O_SYM]
    acct[sym, A_POS] += side * qty
    acct[sym, A_CASH] -= side * qty * price
    ords[slot, O_LEAVES] -= qty
    ords[slot, O_CUM] += qty
    emit(rep, ctl, REP_FILL, ords, slot, ts, price, qty, rule, liq)
    if ords[slot, O_LEAVES] <= 0:
        ords[slot, O_STATE] = FREE


@jit_inline
def queue_at_arrival(ords, mkt, slot):
    """The displayed size ahead of an order joining the book: the best's size at its price,
    nothing when it improves the best, unknown (-1) when it is behind the best."""
    sym = ords[slot, O_SYM]
    price = ords[slot, O_PRICE]
    if ords[slot, O_SIDE] > 0:
        best, size = mkt[sym, M_BID], mkt[sym, M_BIDQ]
        if price > best:
            return 0
    else:
        best, size = mkt[sym, M_ASK], mkt[sym, M_ASKQ]
        if price < best:
            return 0
    if price == best:
        return size
    return -1


@jit_inline
def arrive(ords, mkt, acct, rep, ctl, prm, slot, ts, announce):
    """The order reaches the market: a marketable part trades at once against the displayed
    opposite quote (as a taker, at that quote's price); the rest rests (a market order's
    rest is cancelled). `announce`: report it as new (not a replace that joins anew)."""
    sym = ords[slot, O_SYM]
    side = ords[slot, O_SIDE]
    price = ords[slot, O_PRICE]
    market = ords[slot, O_MARKET]
    if side > 0:
        opp, opp_qty = mkt[sym, M_ASK], mkt[sym, M_ASKQ]
        crosses = opp != NO_ASK and (market == MARKET or price >= opp)
    else:
        opp, opp_qty = mkt[sym, M_BID], mkt[sym, M_BIDQ]
        crosses = opp != NO_BID and (market == MARKET or price <= opp)
    ords[slot, O_STATE] = LIVE
    if announce:
        emit(rep, ctl, REP_NEW, ords, slot, ts, price, ords[slot, O_QTY], 0, 0)
    if crosses:
        qty = ords[slot, O_LEAVES]
        if prm[P_SIZE] == SIZE_CAPPED and opp_qty < qty:
            qty = opp_qty
        if qty > 0:
            book_fill(ords, acct, rep, ctl, slot, ts, opp, qty, RULE_TAKER, LIQ_TAKER)
    if ords[slot, O_STATE] == FREE:
        return
    if market != 0:  # a market or IOC order: what did not trade at once is cancelled
        ords[slot, O_STATE] = FREE
        emit(rep, ctl, REP_CANCELED, ords, slot, ts, 0, 0, 0, 0)
        return
    ords[slot, O_AHEAD] = queue_at_arrival(ords, mkt, slot)


@jit
def apply_due(ts, mkt, ords, acct, rep, ctl, prm):
    """Everything that takes effect at or before `ts`: arrivals, replaces, cancels."""
    nxt = NEVER
    for s in range(ctl[C_HIGH]):
        state = ords[s, O_STATE]
        if state == FREE:
            continue
        cancel_at = ords[s, O_CANCEL_AT]
        if state == PENDING:
            live_at = ords[s, O_LIVE_AT]
            if cancel_at <= live_at and cancel_at <= ts:
                ords[s, O_STATE] = FREE  # cancelled before it ever reached the market
                emit(rep, ctl, REP_CANCELED, ords, s, cancel_at, 0, 0, 0, 0)
                continue
            if live_at <= ts:
                arrive(ords, mkt, acct, rep, ctl, prm, s, live_at, True)
                if ords[s, O_STATE] == FREE:
                    continue
            else:
                nxt = min(nxt, live_at)
                continue
        repl_at = ords[s, O_REPL_AT]
        if repl_at <= ts and repl_at < cancel_at:
            new_price = ords[s, O_REPL_PRICE]
            new_qty = ords[s, O_REPL_QTY]
            ords[s, O_REPL_AT] = NEVER
            leaves = new_qty - ords[s, O_CUM]
            if leaves <= 0:
                ords[s, O_LEAVES] = 0
                ords[s, O_STATE] = FREE
                emit(rep, ctl, REP_CANCELED, ords, s, repl_at, 0, 0, 0, 0)
                continue
            # price priority is lost on a new price or a larger size, kept on a smaller one
            lose = new_price != ords[s, O_PRICE] or leaves > ords[s, O_LEAVES]
            ords[s, O_PRICE] = new_price
            ords[s, O_QTY] = new_qty
            ords[s, O_LEAVES] = leaves
            emit(rep, ctl, REP_REPLACED, ords, s, repl_at, new_price, new_qty, 0, 0)
            if lose:
                ords[s, O_STATE] = PENDING
                ords[s, O_MARKET] = 0
                arrive(ords, mkt, acct, rep, ctl, prm, s, repl_at, False)
                if ords[s, O_STATE] == FREE:
                    continue
        elif repl_at < NEVER and repl_at < cancel_at:
            nxt = min(nxt, repl_at)
        if cancel_at <= ts:
            ords[s, O_STATE] = FREE
            emit(rep, ctl, REP_CANCELED, ords, s, cancel_at, 0, 0, 0, 0)
            continue
        if cancel_at < NEVER:
            nxt = min(nxt, cancel_at)
    ctl[C_NEXT_DUE] = nxt
    retrigger(mkt, ords, ctl)  # orders that arrived, moved or left change the bounds


@jit_inline
def retrigger(mkt, ords, ctl):
    """Each symbol's highest live bid and lowest live offer: the loop's fast path applies an
    update without looking at the orders when it cannot reach either."""
    for k in range(mkt.shape[0]):
        mkt[k, M_HIBUY] = NONE_BUY
        mkt[k, M_LOSELL] = NONE_SELL
    for s in range(ctl[C_HIGH]):
        if ords[s, O_STATE] != LIVE:
            continue
        sym = ords[s, O_SYM]
        p = ords[s, O_PRICE]
        if ords[s, O_SIDE] > 0:
            if p > mkt[sym, M_HIBUY]:
                mkt[sym, M_HIBUY] = p
        elif p < mkt[sym, M_LOSELL]:
            mkt[sym, M_LOSELL] = p
