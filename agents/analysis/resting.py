"""Which orders rested in the book, at what price and for how long, rebuilt from a run's tables.

A run directory records every order action as the agent sent it (the ``orders`` table: new,
replace, cancel, with side, price, quantity and the client order id) and every fill (the
``trades`` table: both accounts and the aggressor), but not the engine's acknowledgements. An
order is taken to rest:

* from the time its ``new`` was sent, at its price (a replace starts a new stretch at the new
  price, with the new total quantity);
* until the first of: its next replace or its cancel was sent, a mass cancel of its account
  was sent, or its passive fills add up to its total quantity (it rests until the fill that
  completes it).

A passive fill (the account on the other side of the aggressor) is the account's order on that
side at that price resting at the time; with several such orders, the latest stretch. Market
orders (no price) never rest. What the tables do not say is left as it looks: the time in
flight (a new counts from when it was sent, a cancel from when it was sent, so the stretch is
early by one latency at both ends), an order the gate refused (it looks like one that rested),
and an IOC remainder (it looks like a resting order at a price through the book, which the
best price on its side seldom equals).

Everything is vectorised over all the accounts' orders at once: sorting and searching, no loop
per order or per account.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Resting", "resting_orders"]

NEW, REPLACE, CANCEL = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Resting:
    """One row per stretch an order rested at one price: account code, side (+1 bid, -1
    ask), price (ticks), start and end (ns; the end of the watch when it never stopped)."""

    account: np.ndarray
    side: np.ndarray
    price: np.ndarray
    start: np.ndarray
    end: np.ndarray


def resting_orders(
    ts: np.ndarray, account: np.ndarray, action: np.ndarray, side: np.ndarray,
    price: np.ndarray, qty: np.ndarray, order: np.ndarray, end_ns: int,
    fill_ts: np.ndarray, fill_account: np.ndarray, fill_side: np.ndarray,
    fill_price: np.ndarray, fill_qty: np.ndarray,
) -> Resting:
    """The resting stretches of the orders (rows in the order they were sent): `account` and
    `order` are integer codes (`order` -1: a mass cancel of the account), `action` `NEW`,
    `REPLACE` or `CANCEL`, `side` +1/-1, `price` NaN for a market order. The fills are the
    passive legs only (time order), with the same account codes."""
    n = len(ts)
    ts = np.asarray(ts, dtype=np.int64)
    account = np.asarray(account, dtype=np.int64)
    order = np.asarray(order, dtype=np.int64)
    # the rows of each order together, in the order they were sent: a stretch ends at the next
    key = account * (int(order.max(initial=0)) + 2) + (order + 1)
    by_order = np.argsort(key, kind="stable")
    k_sorted = key[by_order]
    nxt = np.full(n, -1, dtype=np.int64)
    same = (k_sorted[1:] == k_sorted[:-1]).nonzero()[0]  # by index: no masks branching
    nxt[by_order[same]] = by_order[same + 1]
    seg = np.flatnonzero(((action == NEW) | (action == REPLACE)) & (order >= 0)
                         & np.isfinite(price))  # fmt: skip
    end = np.where(nxt[seg] >= 0, ts[np.maximum(nxt[seg], 0)], int(end_ns))
    # a mass cancel of the account sent after the stretch began ends it
    mass = np.flatnonzero((action == CANCEL) & (order < 0))
    if len(mass):
        m_key = np.sort(account[mass] * (n + 1) + mass)  # by account, then as sent
        j = np.minimum(np.searchsorted(m_key, account[seg] * (n + 1) + seg, side="right"),
                       len(mass) - 1)  # fmt: skip
        m_row = m_key[j] % (n + 1)
        hit = (m_key[j] // (n + 1) == account[seg]) & (m_row > seg)
        end = np.where(hit, np.minimum(end, ts[m_row]), end)
    end = _filled(seg, end, ts, account, side, price, qty, key, n,
                  fill_ts, fill_account, fill_side, fill_price, fill_qty)  # fmt: skip
    return Resting(account[seg], np.asarray(side)[seg], np.asarray(price, dtype=float)[seg],
                   ts[seg], np.maximum(end, ts[seg]))  # fmt: skip


def _filled(
    seg: np.ndarray, end: np.ndarray, ts: np.ndarray, account: np.ndarray, side: np.ndarray,
    price: np.ndarray, qty: np.ndarray, key: np.ndarray, n: int,
    fill_ts: np.ndarray, fill_account: np.ndarray, fill_side: np.ndarray,
    fill_price: np.ndarray, fill_qty: np.ndarray,
) -> np.ndarray:
    """`end` with each stretch cut at the passive fill that completed its order."""
    if len(seg) == 0 or len(fill_ts) == 0:
        return end
    px = np.asarray(price, dtype=float)
    lo = float(min(np.nanmin(px[seg]), np.min(fill_price)))
    span = int(max(np.nanmax(px[seg]), np.max(fill_price)) - lo) + 1
    if not (span * 2 * (int(account.max(initial=0)) + 2) * (n + 1) < 2**62):
        return end  # prices too far apart to key in 64 bits: completions left out
    # (account, side, price) of each stretch, then the row it began: searched by each fill
    def level(acct: np.ndarray, sd: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, ...]:
        book, tick = acct * 2 + (np.asarray(sd) > 0), (np.asarray(p) - lo).astype(np.int64)
        return book * span + tick, book, tick

    s_level, s_book, s_tick = level(account[seg], side[seg], px[seg])
    s_key = s_level * (n + 1) + seg
    by_key = _by_level(s_level, s_book, s_tick)  # the rows ascending within a level
    s_sorted = s_key[by_key]
    f_level, f_book, f_tick = level(np.asarray(fill_account, dtype=np.int64), fill_side,
                                    fill_price)  # fmt: skip
    f_row = np.searchsorted(ts, fill_ts, side="right") - 1  # the last row sent by then
    # the fills searched by level, in time order within one (so their keys ascend): a search
    # that walks the stretches forward hits the cache; the results are the same in any order
    by_f = _by_level(f_level, f_book, f_tick)
    k = np.empty(len(f_level), dtype=np.int64)
    k[by_f] = np.searchsorted(s_sorted, (f_level * (n + 1) + f_row)[by_f], side="right")
    k -= 1
    ok = k >= 0
    kk = by_key[np.maximum(k, 0)]
    ok &= (s_sorted[np.maximum(k, 0)] // (n + 1)) == f_level
    ok &= (fill_ts >= ts[seg[kk]]) & (fill_ts < end[kk])
    if not ok.any():
        return end
    # the order's fills in time order: the one reaching its (latest) total quantity ends it
    hit = ok.nonzero()[0]  # by index: no mask branching on every fill
    f_seg, f_t, f_q = kk[hit], np.asarray(fill_ts)[hit], np.asarray(fill_qty, dtype=float)[hit]
    f_order = key[seg[f_seg]]
    by = np.argsort(f_order, kind="stable")
    fo, fq = f_order[by], f_q[by]
    run = np.cumsum(fq)
    starts = np.flatnonzero(np.concatenate(([True], fo[1:] != fo[:-1])))
    before = np.repeat(run[starts] - fq[starts], np.diff(np.append(starts, len(fo))))
    done = (run - before) >= np.asarray(qty, dtype=float)[seg[f_seg[by]]]
    out = end.copy()
    np.minimum.at(out, f_seg[by][done], f_t[by][done])
    return out


def _by_level(level: np.ndarray, book: np.ndarray, tick: np.ndarray) -> np.ndarray:
    """A stable order by `level` (``book x span + tick``, 0 <= tick < span): when the book and
    the tick each fit in 16 bits, two radix sorts (by tick, then by book: the order of
    (book, tick, position)), else one comparison sort."""
    fits = len(level) and tick.min() >= 0 and book.min() >= 0
    if fits and tick.max() < 2**16 and book.max() < 2**16:
        by_tick = np.argsort(tick.astype(np.uint16), kind="stable")
        return by_tick[np.argsort(book[by_tick].astype(np.uint16), kind="stable")]
    return np.argsort(level, kind="stable")
