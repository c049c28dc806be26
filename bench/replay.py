"""Replay backtesting speed: updates/s of the compiled path, a Python agent on a timer and a
Python handler on every update, and hftbacktest on the same tape with the same strategy.

    python bench/replay.py [--updates 10_000_000] [--hft-updates 3_000_000] [--every 1_000_000]
                           [--repeat 1] [--disk]

The tape: one symbol, a mid walking by a tick on about 5% of updates, a half spread of 1 or
2 ticks (changing on about 2% of updates),
sizes 1-20 lots, 80% quotes and 20% trades (at the touch, sometimes one tick through), an
update every 100 µs on average (10 M updates: about 17 minutes of tape), generated in memory
in 1 M-update chunks (the loop is what is measured; `--disk` also writes the tape to Parquet
and times reading it back through `open_tape`, streamed).

The strategy everywhere: join the best bid and offer with 1 lot, at most 10 lots of
inventory (`agents.replay.fast.join_policy`; `JoinQuoter` as a Python `Agent`), order and
cancel latency 100 µs. Measured, each after a warm-up (compiling) run on a small tape:

* compiled: the whole loop and the policy in numba (`run_compiled`), both fill rules, each
  next to its peer: the same loop and policy with a size of 0, so it places nothing (the
  plain loop of the rules). The machine is shared: their ratio, measured one after the other,
  says more than either figure alone. ``--repeat N`` keeps the best of N runs of each;
* Python agent on a 100 ms timer (`TimedJoinQuoter`): the loop runs compiled between timers;
* Python handler on every update (`JoinQuoter.on_book`), on the first `--every` updates;
* hftbacktest (if installed: ``pip install hftbacktest``; skipped with a message if not) on
  the first `--hft-updates` updates (each quote becomes depth events: the new best levels and
  the removal of the old ones), its strategy a numba function called on every feed event
  (``wait_next_feed``), risk-averse queue model, no partial fills, the same latency; our
  compiled path is timed on the same prefix next to it (``--hft-updates 0``: none of this).

Figures are updates of the tape per second of CPU time (process time: the machine is shared).
"""

from __future__ import annotations

import argparse
import time

try:  # noqa: SIM105  (first: keeps bench/ off the import path, see _path.py)
    import _path  # noqa: F401
except ModuleNotFoundError:
    pass

import numpy as np

from agents.replay.config import ReplayConfig
from agents.replay.driver import Replay
from agents.replay.fast import JoinQuoter, TimedJoinQuoter, run_compiled
from agents.replay.tape import QUOTE, TRADE, Chunk, concat

T0 = 1_714_568_400_000_000_000
LAT = 100_000


def make_tape(n: int, seed: int = 1, chunk: int = 1_000_000) -> list[Chunk]:
    """The benchmark tape (see the module docstring), in chunks of `chunk` updates."""
    rng = np.random.default_rng(seed)
    out = []
    t, mid, half0 = T0, 10_000, 0
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        ts = t + np.cumsum(rng.exponential(100_000, m).astype(np.int64) + 1)
        t = int(ts[-1])
        kind = np.where(rng.random(m) < 0.2, TRADE, QUOTE).astype(np.int8)
        step = np.where(rng.random(m) < 0.05, rng.choice([-1, 1], m), 0)
        mids = mid + np.cumsum(step)
        mid = int(mids[-1])
        # the half spread (1 or 2 ticks) changes on about 2% of updates
        flips = np.cumsum(rng.random(m) < 0.02)
        half = 1 + (flips + half0) % 2
        half0 = int(half[-1]) - 1
        side = rng.choice([-1, 1], m)
        through = (rng.random(m) < 0.1).astype(np.int64)
        trade_px = np.where(side > 0, mids + half + through, mids - half - through)
        a = np.where(kind == QUOTE, mids - half, trade_px).astype(np.int64)
        b = rng.integers(1, 21, m).astype(np.int64)
        c = np.where(kind == QUOTE, mids + half, side).astype(np.int64)
        d = np.where(kind == QUOTE, rng.integers(1, 21, m), 0).astype(np.int64)
        out.append(Chunk(ts.astype(np.int64), kind, np.zeros(m, np.int32), a, b, c, d))
    return out


def prefix(chunks: list[Chunk], n: int) -> list[Chunk]:
    out, left = [], n
    for c in chunks:
        if left <= 0:
            break
        out.append(c.take(slice(0, min(left, len(c)))))
        left -= len(out[-1])
    return out


def timed(fn):
    t0 = time.process_time()
    result = fn()
    return result, time.process_time() - t0


def to_hftbacktest(chunk: Chunk):
    """The tape as hftbacktest events: depth updates for the best levels (and the removal of
    the previous best when it moves), trades with the aggressor's side."""
    from hftbacktest import (
        BUY_EVENT,
        DEPTH_EVENT,
        EXCH_EVENT,
        LOCAL_EVENT,
        SELL_EVENT,
        TRADE_EVENT,
        event_dtype,
    )  # fmt: skip

    flags = EXCH_EVENT | LOCAL_EVENT
    rows: list[np.ndarray] = []
    q = chunk.kind == QUOTE
    iq = np.flatnonzero(q)
    bid, ask = chunk.a[iq], chunk.c[iq]
    prev_bid = np.concatenate(([bid[0]], bid[:-1]))
    prev_ask = np.concatenate(([ask[0]], ask[:-1]))
    # per quote: clear old bid if moved, new bid, clear old ask if moved, new ask
    parts = [
        (iq, 0, prev_bid != bid, prev_bid, 0.0, BUY_EVENT | DEPTH_EVENT),
        (iq, 1, np.ones(len(iq), bool), bid, chunk.b[iq], BUY_EVENT | DEPTH_EVENT),
        (iq, 2, prev_ask != ask, prev_ask, 0.0, SELL_EVENT | DEPTH_EVENT),
        (iq, 3, np.ones(len(iq), bool), ask, chunk.d[iq], SELL_EVENT | DEPTH_EVENT),
    ]
    it = np.flatnonzero(~q)
    order_keys, evs = [], []
    for idx, k, mask, px, qty, ev in parts:
        sel = idx[mask]
        e = np.zeros(len(sel), event_dtype)
        e["ev"] = flags | ev
        e["exch_ts"] = e["local_ts"] = chunk.ts[sel]
        e["px"] = (px[mask] if isinstance(px, np.ndarray) else px)
        e["qty"] = qty[mask] if isinstance(qty, np.ndarray) else qty
        evs.append(e)
        order_keys.append(sel * 4 + k)
    e = np.zeros(len(it), event_dtype)
    e["ev"] = flags | TRADE_EVENT | np.where(chunk.c[it] > 0, BUY_EVENT, SELL_EVENT)
    e["exch_ts"] = e["local_ts"] = chunk.ts[it]
    e["px"] = chunk.a[it]
    e["qty"] = chunk.b[it]
    evs.append(e)
    order_keys.append(it * 4)
    allev = np.concatenate(evs)
    order = np.argsort(np.concatenate(order_keys), kind="stable")
    rows.append(allev[order])
    return rows[0]


def run_hftbacktest(chunk: Chunk) -> tuple[int, float] | str:
    """(fills, CPU seconds) of the join strategy in hftbacktest, or why it did not run."""
    try:
        from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest
        from hftbacktest.order import GTC, LIMIT
        from numba import njit
    except ImportError as exc:
        return f"hftbacktest not installed ({exc.name}): pip install hftbacktest"

    @njit
    def strategy(hbt):
        bid_id = 0
        ask_id = 0
        next_id = 1
        bid_px = 0.0
        ask_px = 0.0
        while hbt.wait_next_feed(False, 1_000_000_000_000) == 2:
            depth = hbt.depth(0)
            best_bid = depth.best_bid
            best_ask = depth.best_ask
            pos = hbt.position(0)
            orders = hbt.orders(0)
            if bid_id != 0 and bid_id not in orders:
                bid_id = 0
            if ask_id != 0 and ask_id not in orders:
                ask_id = 0
            if bid_id != 0 and (bid_px != best_bid or pos >= 10):
                hbt.cancel(0, bid_id, False)
                bid_id = 0
            if bid_id == 0 and pos < 10 and best_bid == best_bid:
                hbt.submit_buy_order(0, next_id, best_bid, 1.0, GTC, LIMIT, False)
                bid_id = next_id
                bid_px = best_bid
                next_id += 1
            if ask_id != 0 and (ask_px != best_ask or pos <= -10):
                hbt.cancel(0, ask_id, False)
                ask_id = 0
            if ask_id == 0 and pos > -10 and best_ask == best_ask:
                hbt.submit_sell_order(0, next_id, best_ask, 1.0, GTC, LIMIT, False)
                ask_id = next_id
                ask_px = best_ask
                next_id += 1
            hbt.clear_inactive_orders(0)
        return hbt.state_values(0).num_trades

    def build(data):
        asset = (BacktestAsset().data([data]).linear_asset(1.0)
                 .constant_order_latency(LAT, LAT).risk_adverse_queue_model()
                 .no_partial_fill_exchange().trading_value_fee_model(0.0, 0.0)
                 .tick_size(1.0).lot_size(1.0))  # fmt: skip
        return HashMapMarketDepthBacktest([asset])

    warm = to_hftbacktest(chunk.take(slice(0, 20_000)))
    strategy(build(warm))
    data = to_hftbacktest(chunk)
    hbt = build(data)
    fills, cpu = timed(lambda: strategy(hbt))
    hbt.close()
    return int(fills), cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--updates", type=int, default=10_000_000)
    ap.add_argument("--hft-updates", type=int, default=3_000_000)
    ap.add_argument("--every", type=int, default=1_000_000)
    ap.add_argument("--disk", action="store_true")
    ap.add_argument("--repeat", type=int, default=1, help="compiled runs: best of N")
    args = ap.parse_args()

    chunks = make_tape(args.updates)
    n = sum(len(c) for c in chunks)
    span = (chunks[-1].ts[-1] - chunks[0].ts[0]) / 1e9
    print(f"tape: {n:,} updates, {span:,.0f} s of tape time, 1 symbol")
    warm = prefix(chunks, 20_000)
    cfgs = {
        "quote-through": ReplayConfig(fill_rule="quote-through", latency_ns=LAT),
        "trade-through": ReplayConfig(fill_rule="trade-through", latency_ns=LAT),
        "trade-through + queue": ReplayConfig(fill_rule="trade-through", queue="displayed",
                                              latency_ns=LAT),
    }  # fmt: skip
    print(f"{'path':<48}{'updates/s':>14}{'fills':>10}{'CPU s':>8}")

    def row(label: str, updates: int, cpu: float, fills: int | str) -> None:
        rate = f"{updates / cpu:,.0f}" if cpu > 0 else "-"
        fills_s = f"{fills:,}" if isinstance(fills, int) else fills
        print(f"{label:<48}{rate:>14}{fills_s:>10}{cpu:>8.2f}", flush=True)

    for name, cfg in cfgs.items():
        run_compiled(warm, ["X"], cfg, params=(0, 1, 10))
        best = {}
        for _ in range(args.repeat):  # the policy run and its peer one after the other
            for size in (1, 0):
                got = timed(lambda cfg=cfg, size=size: run_compiled(chunks, ["X"], cfg,
                                                                    params=(0, size, 10)))
                if size not in best or got[1] < best[size][1]:
                    best[size] = got
        (rec, cpu), (peer, peer_cpu) = best[1], best[0]
        row(f"compiled, {name}", rec.events, cpu, len(rec.fills["ts"]))
        row("  peer: same loop, policy places nothing", peer.events, peer_cpu,
            len(peer.fills["ts"]))  # fmt: skip
        print(f"  {'policy run / peer':<46}{(rec.events / cpu) / (peer.events / peer_cpu):>14.2f}")
    cfg = cfgs["trade-through"]
    Replay(TimedJoinQuoter(), ["X"], cfg).run(warm)
    rec, cpu = timed(lambda: Replay(TimedJoinQuoter(), ["X"], cfg).run(chunks))
    row("Python Agent, 100 ms timer, trade-through", rec.events, cpu, len(rec.fills["ts"]))
    few = prefix(chunks, args.every)
    rec, cpu = timed(lambda: Replay(JoinQuoter(), ["X"], cfg).run(few))
    row(f"Python on_book every update ({args.every:,}), trade-through", rec.events, cpu,
        len(rec.fills["ts"]))  # fmt: skip

    if args.hft_updates > 0:
        head = concat(prefix(chunks, args.hft_updates))
        print(f"\nside by side on the first {len(head):,} updates, the same join strategy, "
              f"{LAT / 1000:g} µs latency:")
        for name in ("trade-through", "trade-through + queue", "quote-through"):
            rec, cpu = timed(lambda name=name: run_compiled([head], ["X"], cfgs[name],
                                                            params=(0, 1, 10)))
            row(f"compiled, {name}", rec.events, cpu, len(rec.fills["ts"]))
        got = run_hftbacktest(head)
        if isinstance(got, str):
            print(f"hftbacktest: skipped: {got}")
        else:
            fills, cpu = got
            row("hftbacktest (risk-averse queue, no partial)", len(head), cpu, fills)

    if args.disk:
        import tempfile
        from pathlib import Path

        import pyarrow as pa
        import pyarrow.parquet as pq

        from agents.replay.readers import open_tape

        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            for c in chunks[:2]:
                q = c.kind == QUOTE
                pq.write_table(pa.table({"ts": c.ts[q], "bid": c.a[q] / 100, "ask": c.c[q] / 100,
                                         "bid_size": c.b[q], "ask_size": c.d[q]}),
                               d / f"X.q{int(c.ts[0])}.parquet")  # fmt: skip
                t = ~q
                pq.write_table(pa.table({"ts": c.ts[t], "price": c.a[t] / 100, "size": c.b[t],
                                         "side": np.where(c.c[t] > 0, "buy", "sell")}),
                               d / f"X.t{int(c.ts[0])}.parquet")  # fmt: skip
            tape = open_tape(d, symbol="X")
            rec, cpu = timed(lambda: run_compiled(tape.chunks(), ["X"], cfgs["trade-through"],
                                                  params=(0, 1, 10)))
            row("compiled, trade-through, read from Parquet", rec.events, cpu,
                len(rec.fills["ts"]))


if __name__ == "__main__":
    main()
