"""The `flow` background's compiled core: Poisson order flow fed straight into a price-level book.

Why a book of its own: a market-making policy needs millions of steps, and a background that
sends every event through messages, agent objects and the full engine cannot give the tens of
thousands of steps per second training wants (about a dozen background events per step);
here an event is a few array updates in numba-compiled code, well under a microsecond, so the
Python around a step, not the market, is its cost (`bench/rl_env.py`).

The book. Background liquidity is aggregated per price level (``bq``/``aq``: lots at price
``base + i``, a window of `WINDOW` ticks re-centred on the reference price when it drifts
towards an edge). The learning agents' orders (at most one bid and one ask each) are tracked
one by one with their place in the queue: ``bga`` is the background quantity ahead of the
order, and other agents' orders at the same price that arrived earlier (smaller ``seq``) are
ahead too. A market order consumes a level from the front of its queue (fills for the agents
whose place it reaches); a background cancel removes volume ahead of an agent's order in
proportion to the share of the level's background volume that is ahead of it; a new
background order joins the back. An agent's order that only loses size at the same price
keeps its place; any other change joins the back.

The flow (rates per second, multiplied by the regime's factors): limit orders at
``limit_rate``, placed ``half_spread + k`` ticks from the reference price ``c`` on their side,
``k`` geometric with mean ``depth_mean`` (so clustered near the best quotes) and never crossing
the book; market orders at ``market_rate``, buying with probability
``1/(1 + exp(-pull·(c - mid)))`` (the book follows the reference price); cancellations at
``cancel_rate`` per resting lot (a deep book loses more), each taking a uniformly chosen lot's
level. Sizes are ``1 + Poisson(mean - 1)``. The reference price ``c = ref + transient`` diffuses
with the regime's sigma between events; the impact of the agents' own liquidity taking moves
``ref`` (permanent) and ``transient`` (decaying at the impact model's rate).

Every draw comes from the book's own random stream (`new_state`'s seed, which the
environment draws from its own seeded Generator), so a seed fixes the whole episode, bit for
bit, whatever else runs in the process.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["LOG_CAP", "WINDOW", "new_state", "queue_position", "run", "step_all", "top", "warm_up"]

WINDOW = 4096
LOG_CAP = 4096  # fills logged per step (more are counted in S_LOST, never dropped silently)

# int64 state `si`
S_BASE, S_BB, S_BA, S_SEQ, S_TOTB, S_TOTA, S_LOGN, S_LOST, S_EVENTS = range(9)  # S_EVENTS: all time
# float64 state `sf`
F_T, F_REF, F_TRANS = range(3)
# float64 parameters `p`
(P_LIMIT, P_MARKET, P_CANCEL, P_SIZE, P_MSIZE, P_HS, P_DEPTH, P_PULL, P_SIGMA,
 P_DECAY) = range(10)  # fmt: skip
N_PARAMS = 10
# per-agent step outputs `out`
O_FILLS, O_BUY, O_BUY_CASH, O_SELL, O_SELL_CASH, O_TAKEN, O_TAKEN_CASH = range(7)
N_OUT = 7
# per-agent results `res`: the outputs, then the agent's view (bid, bid qty, ask, ask qty),
# its queue places (bid, ask) and the mid now
R_SNAP, R_QBID, R_QASK, R_MID = 7, 11, 12, 13
N_RES = 14
_NONE_BID = -(2**62)
_NONE_ASK = 2**62


def new_state(reference_price: int, agents: int, seed: int) -> dict[str, np.ndarray]:
    """Empty arrays for a book around `reference_price` and `agents` learning agents, with
    the random stream seeded by `seed`.

    The arrays live in a few bundles (``book``, ``ag``, ``ai``, ``at``, ``res``: one call into
    compiled code per step passes few arguments); the other entries are views into them.
    """
    si = np.zeros(9, np.int64)
    si[S_BASE] = reference_price - WINDOW // 2
    si[S_BB] = -1
    si[S_BA] = WINDOW
    sf = np.zeros(3, np.float64)
    sf[F_REF] = float(reference_price)
    book = np.zeros((2, WINDOW), np.int64)
    ag = np.zeros((6, agents, 2), np.int64)
    ai = np.zeros((2, agents), np.int64)
    at = np.zeros((2, agents), np.float64)
    at[1] = -1.0
    res = np.zeros((agents, N_RES), np.float64)
    rs = np.zeros(1, np.uint64)
    rs[0] = np.uint64(seed & (2**64 - 1))
    return {
        "rs": rs, "book": book, "ag": ag, "ai": ai, "at": at, "res": res, "si": si, "sf": sf,
        "flog": np.zeros((LOG_CAP, 5), np.int64),
        "bq": book[0], "aq": book[1],
        "apx": ag[0], "aqty": ag[1], "abga": ag[2], "aseq": ag[3], "npx": ag[4], "nqty": ag[5],
        "pending": ai[0], "ioc": ai[1], "apply_at": at[0], "obs_at": at[1],
        "out": res[:, :N_OUT], "snap": res[:, R_SNAP:R_SNAP + 4],
    }  # fmt: skip


# ------------------------------------------------------------------ the random stream
# splitmix64 (G. Steele, D. Lea, C. Flood, "Fast splittable pseudorandom number generators",
# OOPSLA 2014): one uint64 of state, owned by the book, so no draw depends on anything but
# the seed (numba's own generator is one per thread, shared by every environment).
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TWO_M53 = 1.0 / 9007199254740992.0


@njit(cache=True)
def _next(rs):
    z = rs[0] + _GOLDEN
    rs[0] = z
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True)
def _uniform(rs):
    """In [0, 1)."""
    return float(_next(rs) >> _S11) * _TWO_M53


@njit(cache=True)
def _below(rs, n):
    return min(int(_uniform(rs) * n), n - 1)


@njit(cache=True)
def _exponential(rs, mean):
    return -mean * math.log(1.0 - _uniform(rs))


@njit(cache=True)
def _normal(rs):
    """Box-Muller (one of the pair)."""
    u1 = 1.0 - _uniform(rs)
    u2 = _uniform(rs)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@njit(cache=True)
def _poisson(rs, lam):
    """Knuth's multiplication method (the means here are a few lots)."""
    if lam <= 0.0:
        return 0
    limit = math.exp(-lam)
    k = 0
    prod = _uniform(rs)
    while prod > limit:
        k += 1
        prod *= _uniform(rs)
    return k


@njit(cache=True)
def _geometric(rs, p):
    """Trials up to the first success (>= 1)."""
    if p >= 1.0:
        return 1
    return 1 + int(math.log(1.0 - _uniform(rs)) / math.log(1.0 - p))


@njit(cache=True)
def _best_bid(bq, si, apx, aqty):
    """Highest bid price (background or agent), or _NONE_BID."""
    best = _NONE_BID
    if si[S_BB] >= 0:
        best = si[S_BASE] + si[S_BB]
    for i in range(apx.shape[0]):
        if aqty[i, 0] > 0 and apx[i, 0] > best:
            best = apx[i, 0]
    return best


@njit(cache=True)
def _best_ask(aq, si, apx, aqty):
    best = _NONE_ASK
    if si[S_BA] < WINDOW:
        best = si[S_BASE] + si[S_BA]
    for i in range(apx.shape[0]):
        if aqty[i, 1] > 0 and apx[i, 1] < best:
            best = apx[i, 1]
    return best


@njit(cache=True)
def _level_qty(q, si, px):
    i = px - si[S_BASE]
    if 0 <= i < WINDOW:
        return q[i]
    return 0


@njit(cache=True)
def _fix_best(bq, aq, si):
    """Re-scan the background bests after a level emptied."""
    i = si[S_BB]
    while i >= 0 and bq[i] == 0:
        i -= 1
    si[S_BB] = i
    j = si[S_BA]
    while j < WINDOW and aq[j] == 0:
        j += 1
    si[S_BA] = j


@njit(cache=True)
def _ahead(side, i, apx, aqty, abga, aseq):
    """Quantity ahead of agent i's order on `side`: background ahead plus earlier agents'."""
    px = apx[i, side]
    a = abga[i, side]
    for j in range(apx.shape[0]):
        if j != i and aqty[j, side] > 0 and apx[j, side] == px and aseq[j, side] < aseq[i, side]:
            a += aqty[j, side]
    return a


@njit(cache=True)
def _log(si, flog, agent, sign, px, qty, t):
    n = si[S_LOGN]
    if n < flog.shape[0]:
        flog[n, 0] = agent
        flog[n, 1] = sign
        flog[n, 2] = px
        flog[n, 3] = qty
        flog[n, 4] = np.int64(t * 1e9)
        si[S_LOGN] = n + 1
    else:
        si[S_LOST] += 1


@njit(cache=True)
def _book_fill(si, out, flog, j, buy, px, f, t):
    out[j, O_FILLS] += 1.0
    if buy:
        out[j, O_BUY] += f
        out[j, O_BUY_CASH] += f * px
        _log(si, flog, j, 1, px, f, t)
    else:
        out[j, O_SELL] += f
        out[j, O_SELL_CASH] += f * px
        _log(si, flog, j, -1, px, f, t)


@njit(cache=True)
def _take(bq, aq, si, apx, aqty, abga, aseq, out, flog, t, buy, size, limit, taker):
    """Consume resting liquidity for a buy (the asks) or a sell (the bids) of `size` lots at
    prices up to `limit`; resting agents' fills are booked, and the taker's when it is an
    agent (`taker` >= 0; -1 is the background). Returns the quantity filled."""
    side = 1 if buy else 0  # the side being consumed
    q = aq if buy else bq
    n = apx.shape[0]
    ids = np.empty(n, np.int64)
    filled = 0
    while size > 0:
        px = _best_ask(aq, si, apx, aqty) if buy else _best_bid(bq, si, apx, aqty)
        if px == _NONE_ASK or px == _NONE_BID:
            break
        if (buy and px > limit) or ((not buy) and px < limit):
            break
        idx = px - si[S_BASE]
        inside = 0 <= idx < WINDOW
        b = q[idx] if inside else 0
        # the agent orders at this level, front of the queue first (n is small)
        k = 0
        for j in range(n):
            if j != taker and aqty[j, side] > 0 and apx[j, side] == px:
                r = k
                while r > 0 and aseq[ids[r - 1], side] > aseq[j, side]:
                    ids[r] = ids[r - 1]
                    r -= 1
                ids[r] = j
                k += 1
        total = b
        for r in range(k):
            total += aqty[ids[r], side]
        if total == 0:  # only the taker's own order here: never trade with oneself
            break
        m = min(size, total)
        in_front = 0  # agent quantity ahead of the current order
        agents_filled = 0  # fills of the agent orders ahead of the current order
        for r in range(k):
            j = ids[r]
            qty = aqty[j, side]
            ahead = abga[j, side] + in_front
            f = min(max(m - ahead, 0), qty)
            if m >= ahead:
                abga[j, side] = 0
            else:
                abga[j, side] -= m - agents_filled
            in_front += qty
            agents_filled += f
            if f > 0:
                aqty[j, side] = qty - f
                _book_fill(si, out, flog, j, not buy, px, f, t)
        bgc = m - agents_filled
        if bgc > 0:
            q[idx] -= bgc
            if buy:
                si[S_TOTA] -= bgc
            else:
                si[S_TOTB] -= bgc
            if q[idx] == 0:
                _fix_best(bq, aq, si)
        if taker >= 0:
            _book_fill(si, out, flog, taker, buy, px, m, t)
            out[taker, O_TAKEN] += m if buy else -m
            out[taker, O_TAKEN_CASH] += m * px
        filled += m
        size -= m
    return filled


@njit(cache=True)
def _add_bg(bq, aq, si, buy, px, size):
    idx = px - si[S_BASE]
    if idx < 0 or idx >= WINDOW:
        return
    if buy:
        bq[idx] += size
        si[S_TOTB] += size
        if idx > si[S_BB]:
            si[S_BB] = idx
    else:
        aq[idx] += size
        si[S_TOTA] += size
        if idx < si[S_BA]:
            si[S_BA] = idx


@njit(cache=True)
def _cancel_bg(rs, bq, aq, si, apx, aqty, abga, buy, size):
    """Cancel up to `size` lots at the level of a uniformly chosen resting lot of one side."""
    side = 0 if buy else 1
    q = bq if buy else aq
    tot = si[S_TOTB] if buy else si[S_TOTA]
    if tot <= 0:
        return
    u = _below(rs, tot)
    acc = 0
    idx = si[S_BB] if buy else si[S_BA]
    step = -1 if buy else 1
    while 0 <= idx < WINDOW:
        acc += q[idx]
        if acc > u:
            break
        idx += step
    if idx < 0 or idx >= WINDOW:
        return
    b = q[idx]
    c = min(size, b)
    px = si[S_BASE] + idx
    for j in range(apx.shape[0]):
        if aqty[j, side] > 0 and apx[j, side] == px and abga[j, side] > 0:
            # the cancelled lots fall ahead of the order in proportion to its share
            abga[j, side] -= (c * abga[j, side]) // b
            if abga[j, side] > b - c:
                abga[j, side] = b - c
    q[idx] = b - c
    if buy:
        si[S_TOTB] -= c
    else:
        si[S_TOTA] -= c
    if q[idx] == 0:
        _fix_best(bq, aq, si)


@njit(cache=True)
def _apply(bq, aq, si, sf, apx, aqty, abga, aseq, npx, nqty, ioc, out, flog, i):
    """Agent i's new quotes reach the book: size-down at the same price keeps the place,
    anything else cancels and re-enters; a quote that crosses takes liquidity first."""
    t = sf[F_T]
    for side in range(2):
        if aqty[i, side] > 0 and not (npx[i, side] == apx[i, side]
                                      and nqty[i, side] <= aqty[i, side]):
            aqty[i, side] = 0
    for side in range(2):
        want = nqty[i, side]
        px = npx[i, side]
        if aqty[i, side] > 0:  # same price, smaller or equal size: keeps its place
            aqty[i, side] = want
            continue
        if want <= 0:
            continue
        buy = side == 0
        cross = px >= _best_ask(aq, si, apx, aqty) if buy else px <= _best_bid(bq, si, apx, aqty)
        if cross:
            want -= _take(bq, aq, si, apx, aqty, abga, aseq, out, flog, t, buy, want, px, i)
        if want > 0 and ioc[i] == 0:
            apx[i, side] = px
            aqty[i, side] = want
            abga[i, side] = _level_qty(bq if buy else aq, si, px)
            si[S_SEQ] += 1
            aseq[i, side] = si[S_SEQ]


@njit(cache=True)
def _recenter(bq, aq, si, sf):
    """Move the window so the reference price sits in its middle (levels falling off the
    edge leave the book: they are thousands of ticks away)."""
    base = si[S_BASE]
    c = int(sf[F_REF]) - base
    if WINDOW // 4 <= c < 3 * WINDOW // 4:
        return
    shift = c - WINDOW // 2  # new base = base + shift
    for q, tot in ((bq, S_TOTB), (aq, S_TOTA)):
        moved = np.zeros(WINDOW, np.int64)
        for i in range(WINDOW):
            k = i + shift
            if 0 <= k < WINDOW:
                moved[i] = q[k]
            # levels not carried over leave the book
        q[:] = moved
        si[tot] = q.sum()
    si[S_BASE] = base + shift
    si[S_BB] = WINDOW - 1
    si[S_BA] = 0
    _fix_best(bq, aq, si)


@njit(cache=True)
def _event(rs, bq, aq, si, sf, p, apx, aqty, abga, aseq, out, flog, lam_l, lam_m, u):
    c = sf[F_REF] + sf[F_TRANS]
    t = sf[F_T]
    if u < lam_l:  # a limit order
        size = 1 + _poisson(rs, p[P_SIZE] - 1.0)
        k = _geometric(rs, 1.0 / (1.0 + p[P_DEPTH])) - 1
        if _uniform(rs) < 0.5:
            px = math.floor(c - p[P_HS]) - k
            best_ask = _best_ask(aq, si, apx, aqty)
            if px >= best_ask:
                px = best_ask - 1
            _add_bg(bq, aq, si, True, px, size)
        else:
            px = math.ceil(c + p[P_HS]) + k
            best_bid = _best_bid(bq, si, apx, aqty)
            if px <= best_bid:
                px = best_bid + 1
            _add_bg(bq, aq, si, False, px, size)
    elif u < lam_l + lam_m:  # a market order
        size = 1 + _poisson(rs, p[P_MSIZE] - 1.0)
        bb = _best_bid(bq, si, apx, aqty)
        ba = _best_ask(aq, si, apx, aqty)
        mid = c
        if bb != _NONE_BID and ba != _NONE_ASK:
            mid = 0.5 * (bb + ba)
        x = p[P_PULL] * (c - mid)
        x = min(max(x, -30.0), 30.0)
        buy = _uniform(rs) < 1.0 / (1.0 + math.exp(-x))
        limit = _NONE_ASK if buy else _NONE_BID
        _take(bq, aq, si, apx, aqty, abga, aseq, out, flog, t, buy, size, limit, -1)
    else:  # a cancellation
        size = 1 + _poisson(rs, p[P_SIZE] - 1.0)
        totb = si[S_TOTB]
        tota = si[S_TOTA]
        buy = _uniform(rs) * (totb + tota) < totb
        _cancel_bg(rs, bq, aq, si, apx, aqty, abga, buy, size)


@njit(cache=True)
def _diffuse(rs, sf, p, dt):
    if dt > 0.0:
        sf[F_REF] += p[P_SIGMA] * math.sqrt(dt) * _normal(rs)
        sf[F_TRANS] *= math.exp(-p[P_DECAY] * dt)
        sf[F_T] += dt


@njit(cache=True)
def _snap(bq, aq, si, apx, aqty, snap, i):
    bb = _best_bid(bq, si, apx, aqty)
    ba = _best_ask(aq, si, apx, aqty)
    if bb == _NONE_BID:
        snap[i, 0] = np.nan
        snap[i, 1] = 0.0
    else:
        q = _level_qty(bq, si, bb)
        for j in range(apx.shape[0]):
            if aqty[j, 0] > 0 and apx[j, 0] == bb:
                q += aqty[j, 0]
        snap[i, 0] = bb
        snap[i, 1] = q
    if ba == _NONE_ASK:
        snap[i, 2] = np.nan
        snap[i, 3] = 0.0
    else:
        q = _level_qty(aq, si, ba)
        for j in range(apx.shape[0]):
            if aqty[j, 1] > 0 and apx[j, 1] == ba:
                q += aqty[j, 1]
        snap[i, 2] = ba
        snap[i, 3] = q


@njit(cache=True)
def run_until(rs, bq, aq, si, sf, p, apx, aqty, abga, aseq, npx, nqty, pending, ioc,
              apply_at, obs_at, snap, out, flog, t_end):
    """Run the flow from ``sf[F_T]`` to `t_end` (seconds): agent i's pending quotes reach the
    book at ``apply_at[i]``, its view of the top of the book is taken at ``obs_at[i]`` (or at
    the end when that is not before it). The event times form one Poisson process whose rate
    depends on the book; at a checkpoint the next draw starts afresh (it is memoryless)."""
    n = apx.shape[0]
    _recenter(bq, aq, si, sf)
    lam_l = p[P_LIMIT]
    lam_m = p[P_MARKET]
    while True:
        t = sf[F_T]
        cp = t_end
        kind = -1
        for i in range(n):
            if pending[i] != 0 and apply_at[i] < cp:
                cp = apply_at[i]
                kind = i
        for i in range(n):
            if obs_at[i] >= 0.0 and obs_at[i] < cp:
                cp = obs_at[i]
                kind = n + i
        lam_c = p[P_CANCEL] * (si[S_TOTB] + si[S_TOTA]) / p[P_SIZE]
        lam = lam_l + lam_m + lam_c
        dt = _exponential(rs, 1.0 / lam)
        if t + dt >= cp:
            _diffuse(rs, sf, p, cp - t)
            sf[F_T] = cp
            if kind < 0:
                break
            if kind < n:
                pending[kind] = 0
                _apply(bq, aq, si, sf, apx, aqty, abga, aseq, npx, nqty, ioc, out, flog, kind)
            else:
                obs_at[kind - n] = -1.0
                _snap(bq, aq, si, apx, aqty, snap, kind - n)
            continue
        _diffuse(rs, sf, p, dt)
        si[S_EVENTS] += 1
        _event(rs, bq, aq, si, sf, p, apx, aqty, abga, aseq, out, flog, lam_l, lam_m,
               _uniform(rs) * lam)
    for i in range(n):
        if pending[i] != 0:
            pending[i] = 0
            _apply(bq, aq, si, sf, apx, aqty, abga, aseq, npx, nqty, ioc, out, flog, i)
        if obs_at[i] >= 0.0:
            obs_at[i] = -1.0
            _snap(bq, aq, si, apx, aqty, snap, i)


def warm_up(state: dict[str, np.ndarray], p: np.ndarray, depth: int, qty: int,
            seconds: float) -> None:
    """Fill `depth` levels of `qty` lots on each side of the reference price, then let the
    flow run `seconds` with no agent quoting."""
    si, sf = state["si"], state["sf"]
    ref = sf[F_REF]
    hs = p[P_HS]
    for k in range(depth):
        _add_bg(state["bq"], state["aq"], si, True, math.floor(ref - hs) - k, qty)
        _add_bg(state["bq"], state["aq"], si, False, math.ceil(ref + hs) + k, qty)
    state["obs_at"][:] = sf[F_T] + seconds  # every agent's view at the end
    run(state, p, sf[F_T] + seconds)


def run(state: dict[str, np.ndarray], p: np.ndarray, t_end: float) -> None:
    """`step_all` over a state made by `new_state`."""
    s = state
    step_all(s["rs"], s["book"], s["ag"], s["ai"], s["at"], s["res"], s["si"], s["sf"], p,
             s["flog"], t_end)


@njit(cache=True)
def step_all(rs, book, ag, ai, at, res, si, sf, p, flog, t_end):
    """A step: the outputs and the fill log start empty, `run_until` `t_end`, then each
    agent's queue places and the mid go into ``res``."""
    res[:, :N_OUT] = 0.0
    si[S_LOGN] = 0
    si[S_LOST] = 0
    bq = book[0]
    aq = book[1]
    apx = ag[0]
    aqty = ag[1]
    abga = ag[2]
    aseq = ag[3]
    run_until(rs, bq, aq, si, sf, p, apx, aqty, abga, aseq, ag[4], ag[5], ai[0], ai[1],
              at[0], at[1], res[:, R_SNAP:R_SNAP + 4], res[:, :N_OUT], flog, t_end)
    bb = _best_bid(bq, si, apx, aqty)
    ba = _best_ask(aq, si, apx, aqty)
    mid = np.nan
    if bb != _NONE_BID and ba != _NONE_ASK:
        mid = 0.5 * (bb + ba)
    for i in range(apx.shape[0]):
        res[i, R_QBID] = queue_position(bq, aq, si, apx, aqty, abga, aseq, i, 0)
        res[i, R_QASK] = queue_position(bq, aq, si, apx, aqty, abga, aseq, i, 1)
        res[i, R_MID] = mid


@njit(cache=True)
def queue_position(bq, aq, si, apx, aqty, abga, aseq, i, side):
    """Agent i's place in its queue on `side`: the share of the level ahead of its order
    (0 = at the front, towards 1 = at the back), or -1 without a resting order."""
    if aqty[i, side] <= 0:
        return -1.0
    px = apx[i, side]
    ahead = _ahead(side, i, apx, aqty, abga, aseq)
    total = _level_qty(bq if side == 0 else aq, si, px)
    for j in range(apx.shape[0]):
        if aqty[j, side] > 0 and apx[j, side] == px:
            total += aqty[j, side]
    return ahead / total


@njit(cache=True)
def top(bq, aq, si, apx, aqty):
    """(best bid, best ask) now, NaN for an empty side."""
    bb = _best_bid(bq, si, apx, aqty)
    ba = _best_ask(aq, si, apx, aqty)
    return (np.nan if bb == _NONE_BID else float(bb), np.nan if ba == _NONE_ASK else float(ba))
