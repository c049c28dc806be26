"""The two fill rules and the queue model: does an update fill a resting order, and how much?

**quote-through** (the market moves through the order): an offer at P fills when a later best
bid is at or above P; a bid at P when a later best ask is at or below P. The fill size is the
whole order, or (``size=capped``) at most the crossing quote's displayed size.

**trade-through** (a trade prints through the order): an offer at P fills when a later trade
prints above P (its aggressor would have met us first); a bid at P when one prints below P. A
trade *at* P does not fill it unless the queue model says the queue ahead is gone. The size is
the whole order or at most the trade's size.

**Queue model** (``queue=displayed``), for updates at exactly the order's price: the order
joins behind the size displayed at its price when it arrives (nothing ahead if it improves the
best, unknown until the best comes to its price if it is behind). Trades at its price (by an
aggressor on the other side, or of unknown side) eat the queue ahead first; a displayed size
at its price smaller than the estimate lowers the estimate (cancels are assumed to be behind
us until the display proves otherwise). An update at exactly P then fills only what is left
after the queue ahead: for a quote at P, its displayed size counts once each time that side
of the quote changes. Updates *through* P fill regardless of the queue.

Fills are at the order's own price (we are the resting side), booked as maker fills.
"""

from __future__ import annotations

from agents.replay.jit import jit, jit_inline
from agents.replay.orders import (
    C_HIGH,
    LIQ_MAKER,
    LIVE,
    M_ASK,
    M_ASKQ,
    M_BID,
    M_BIDQ,
    M_LAST,
    M_TS,
    O_AHEAD,
    O_LEAVES,
    O_PRICE,
    O_SIDE,
    O_STATE,
    O_SYM,
    P_QUEUE,
    P_RULE,
    P_SIZE,
    QUEUE_NONE,
    QUOTE_THROUGH,
    SIZE_CAPPED,
    TRADE_THROUGH,
    book_fill,
)  # fmt: skip
from agents.replay.tape import BUY, SELL

__all__ = ["on_quote", "on_trade"]


@jit_inline
def _fill(ords, acct, rep, ctl, prm, s, ts, cap, rule):
    qty = ords[s, O_LEAVES]
    if prm[P_SIZE] == SIZE_CAPPED and cap < qty:
        qty = cap
    if qty > 0:
        book_fill(ords, acct, rep, ctl, s, ts, ords[s, O_PRICE], qty, rule, LIQ_MAKER)


@jit_inline
def _eat(ords, s, size):
    """`size` traded at the order's price: the queue ahead shrinks; returns what is left."""
    ahead = ords[s, O_AHEAD]
    if ahead < 0:
        ahead = 0
    ords[s, O_AHEAD] = max(0, ahead - size)
    return size - ahead


@jit
def on_quote(sym, ts, bid, bidq, ask, askq, mkt, ords, acct, rep, ctl, prm):
    """A new best bid and ask for `sym`: fills, queue estimates, then the market state."""
    rule = prm[P_RULE]
    queue = prm[P_QUEUE] != QUEUE_NONE
    bid_moved = bid != mkt[sym, M_BID] or bidq != mkt[sym, M_BIDQ]
    ask_moved = ask != mkt[sym, M_ASK] or askq != mkt[sym, M_ASKQ]
    for s in range(ctl[C_HIGH]):
        if ords[s, O_STATE] != LIVE or ords[s, O_SYM] != sym:
            continue
        p = ords[s, O_PRICE]
        if ords[s, O_SIDE] < 0:  # an offer
            if queue:
                if ask == p:
                    if ords[s, O_AHEAD] < 0 or askq < ords[s, O_AHEAD]:
                        ords[s, O_AHEAD] = askq
                elif ask > p:
                    ords[s, O_AHEAD] = 0
            if rule == QUOTE_THROUGH:
                if bid > p:
                    _fill(ords, acct, rep, ctl, prm, s, ts, bidq, QUOTE_THROUGH)
                elif bid == p:
                    if not queue:
                        _fill(ords, acct, rep, ctl, prm, s, ts, bidq, QUOTE_THROUGH)
                    elif bid_moved:
                        left = _eat(ords, s, bidq)
                        if left > 0:
                            _fill(ords, acct, rep, ctl, prm, s, ts, left, QUOTE_THROUGH)
        else:  # a bid
            if queue:
                if bid == p:
                    if ords[s, O_AHEAD] < 0 or bidq < ords[s, O_AHEAD]:
                        ords[s, O_AHEAD] = bidq
                elif bid < p:
                    ords[s, O_AHEAD] = 0
            if rule == QUOTE_THROUGH:
                if ask < p:
                    _fill(ords, acct, rep, ctl, prm, s, ts, askq, QUOTE_THROUGH)
                elif ask == p:
                    if not queue:
                        _fill(ords, acct, rep, ctl, prm, s, ts, askq, QUOTE_THROUGH)
                    elif ask_moved:
                        left = _eat(ords, s, askq)
                        if left > 0:
                            _fill(ords, acct, rep, ctl, prm, s, ts, left, QUOTE_THROUGH)
    mkt[sym, M_BID] = bid
    mkt[sym, M_BIDQ] = bidq
    mkt[sym, M_ASK] = ask
    mkt[sym, M_ASKQ] = askq
    mkt[sym, M_TS] = ts


@jit
def on_trade(sym, ts, price, qty, aggressor, mkt, ords, acct, rep, ctl, prm):
    """A trade on `sym`: fills (trade-through), the queue ahead at its price, the last price."""
    rule = prm[P_RULE]
    queue = prm[P_QUEUE] != QUEUE_NONE
    for s in range(ctl[C_HIGH]):
        if ords[s, O_STATE] != LIVE or ords[s, O_SYM] != sym:
            continue
        p = ords[s, O_PRICE]
        if ords[s, O_SIDE] < 0:  # an offer: buyers lift it
            if price > p:
                if rule == TRADE_THROUGH:
                    _fill(ords, acct, rep, ctl, prm, s, ts, qty, TRADE_THROUGH)
            elif price == p and queue and aggressor != SELL:
                left = _eat(ords, s, qty)
                if left > 0 and rule == TRADE_THROUGH:
                    _fill(ords, acct, rep, ctl, prm, s, ts, left, TRADE_THROUGH)
        else:  # a bid: sellers hit it
            if price < p:
                if rule == TRADE_THROUGH:
                    _fill(ords, acct, rep, ctl, prm, s, ts, qty, TRADE_THROUGH)
            elif price == p and queue and aggressor != BUY:
                left = _eat(ords, s, qty)
                if left > 0 and rule == TRADE_THROUGH:
                    _fill(ords, acct, rep, ctl, prm, s, ts, left, TRADE_THROUGH)
    mkt[sym, M_LAST] = price
