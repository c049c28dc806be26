"""Matching-engine throughput and latency on a deterministic mixed order stream.

    python bench/engine.py [--messages 1000000] [--seed 7]

Stream (one symbol, fixed seed): ~60% limit orders priced around a drifting mid (a few percent
marketable), ~25% cancels of open orders picked uniformly (some already filled: realistic
rejects), ~10%
market orders, ~5% replaces (price and quantity changes), 200 accounts (so self-trade prevention
fires now and then), circuit breakers enabled with bands wide enough not to halt.

Three figures, each in its own pass over a fresh engine:
* throughput: the whole stream through the public per-message API (submit/cancel/replace), all
  events built, no timing inside the loop;
* latency: the same stream with a perf_counter_ns pair around every call (p50/p99/p99.9);
* baseline: a bare heap loop over the same stream (lazy cancels, no validation, ids, levels
  or events), for scale on this machine in the same run.
Peak memory is the process's maximum RSS, and the engine's own Python allocations at the end
of the stream (tracemalloc in a separate, shorter pass would distort timing, so it is reported
from the retained objects via sys.getsizeof-free accounting: RSS delta).
"""

from __future__ import annotations

import argparse
import gc
import heapq
import resource
import time
from collections import Counter

try:  # noqa: SIM105  (first: keeps bench/ off the import path, see _path.py)
    import _path  # noqa: F401
except ModuleNotFoundError:  # a multiprocessing child: the parent's path is clean already
    pass
import numpy as np

from exchange.engine import Engine
from exchange.symbols import SymbolSpec

SYMBOL = "AGR"


def make_stream(n: int, seed: int) -> list[tuple]:
    """A deterministic list of ("L"|"M"|"C"|"R", args...) messages."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(4, size=n, p=[0.60, 0.10, 0.25, 0.05])
    sides = rng.integers(0, 2, size=n)
    accounts = rng.integers(0, 200, size=n)
    qtys = rng.integers(1, 101, size=n)
    # Passive limits sit 1+ ticks from the mid, geometrically fewer further out; about 5% are
    # priced through the mid (marketable).
    offsets = 1 + np.floor(rng.exponential(4.0, size=n)).astype(np.int64)
    offsets[rng.random(n) < 0.05] = -2
    drift = np.cumsum(rng.choice([-1, 0, 1], size=n, p=[0.004, 0.992, 0.004]))
    picks = rng.random(n)
    stream: list[tuple] = []
    # Limit orders the stream has entered and not cancelled: cancels and replaces pick one
    # uniformly (some have filled meanwhile, and their cancels are rightly rejected).
    pool: list[tuple[str, int, str]] = []
    mid = 10_000
    for i in range(n):
        kind = kinds[i]
        account = f"acct{accounts[i]}"
        side = "buy" if sides[i] else "sell"
        m = mid + int(drift[i])
        if kind == 0:
            off = int(offsets[i])
            price = m - off if side == "buy" else m + off
            stream.append(("L", side, int(qtys[i]), price, account, i))
            pool.append((account, i, side))
        elif kind == 1:
            stream.append(("M", side, int(qtys[i]) // 4 + 1, None, account, i))
        elif pool:
            j = int(picks[i] * len(pool))
            if kind == 2:
                pool[j], pool[-1] = pool[-1], pool[j]
                acct, clid, _ = pool.pop()
                stream.append(("C", acct, clid))
            else:
                # Requote: a new price on the order's own side (5% marketable) and a new size.
                acct, clid, side = pool[j]
                off = int(offsets[i])
                price = m - off if side == "buy" else m + off
                stream.append(("R", acct, clid, int(qtys[i]), price))
    return stream


def make_engine() -> Engine:
    spec = SymbolSpec(
        symbol=SYMBOL, reference_price=10_000, band_bps=5_000, halt_move_bps=2_000,
        halt_window_ns=60_000_000_000,
    )  # fmt: skip
    return Engine([spec])


def run_throughput(stream: list[tuple]) -> tuple[float, Counter]:
    engine = make_engine()
    submit, cancel, replace = engine.submit, engine.cancel, engine.replace
    kinds: Counter = Counter()
    n_events = 0
    ts = 0
    gc.disable()
    t0 = time.perf_counter()
    for msg in stream:
        ts += 1_000
        k = msg[0]
        if k == "L":
            events = submit(SYMBOL, msg[1], "limit", msg[2], msg[3], msg[4], msg[5], "GTC", ts)
        elif k == "M":
            events = submit(SYMBOL, msg[1], "market", msg[2], None, msg[4], msg[5], "IOC", ts)
        elif k == "C":
            events = cancel(msg[1], None, msg[2], ts)
        else:
            events = replace(msg[1], msg[3], msg[4], None, msg[2], ts)
        n_events += len(events)
    elapsed = time.perf_counter() - t0
    gc.enable()
    kinds["events"] = n_events
    kinds["open_orders"] = len(engine._orders)
    kinds["trades"] = engine._trade_id
    return elapsed, kinds


def run_latency(stream: list[tuple]) -> np.ndarray:
    engine = make_engine()
    submit, cancel, replace = engine.submit, engine.cancel, engine.replace
    clock = time.perf_counter_ns
    lat = np.empty(len(stream), dtype=np.int64)
    ts = 0
    gc.disable()
    for i, msg in enumerate(stream):
        ts += 1_000
        k = msg[0]
        t0 = clock()
        if k == "L":
            submit(SYMBOL, msg[1], "limit", msg[2], msg[3], msg[4], msg[5], "GTC", ts)
        elif k == "M":
            submit(SYMBOL, msg[1], "market", msg[2], None, msg[4], msg[5], "IOC", ts)
        elif k == "C":
            cancel(msg[1], None, msg[2], ts)
        else:
            replace(msg[1], msg[3], msg[4], None, msg[2], ts)
        lat[i] = clock() - t0
    gc.enable()
    overhead = min(-(clock() - clock()) for _ in range(1000))  # one perf_counter_ns pair
    return lat - overhead


def run_baseline(stream: list[tuple]) -> float:
    """A bare heap loop over the same stream, for scale: the least a matcher must do.

    One heap of [key, arrival, qty] entries per side (key = price, negated for bids), fills at
    the resting price, cancels and replaces by lazy deletion through a dict of entries. No
    validation, no ids, no events, no levels, no self-trade checks: not an engine, a floor.
    """
    bids: list[list[int]] = []
    asks: list[list[int]] = []
    live: dict[int, list[int]] = {}  # clid -> heap entry
    heappush, heappop = heapq.heappush, heapq.heappop
    gc.disable()
    t0 = time.perf_counter()
    for msg in stream:
        k = msg[0]
        if k == "C":
            entry = live.pop(msg[2], None)
            if entry is not None:
                entry[2] = 0
            continue
        if k == "R":
            entry = live.pop(msg[2], None)
            if entry is None:
                continue
            entry[2] = 0
            side, qty, price, clid = ("buy" if entry[0] < 0 else "sell"), msg[3], msg[4], msg[2]
        else:
            side, qty, price, clid = msg[1], msg[2], msg[3], msg[5]
        if side == "buy":
            book, key = asks, 1
        else:
            book, key = bids, -1
        while qty and book:
            top = book[0]
            if not top[2]:
                heappop(book)
                continue
            if price is not None and top[0] * key > price * key:
                break
            fill = qty if qty < top[2] else top[2]
            qty -= fill
            top[2] -= fill
            if not top[2]:
                heappop(book)
        if qty and price is not None:
            entry = [-price * key, clid, qty]
            heappush(bids if side == "buy" else asks, entry)
            live[clid] = entry
    elapsed = time.perf_counter() - t0
    gc.enable()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    print(f"generating {args.messages:,} messages (seed {args.seed}) ...", flush=True)
    stream = make_stream(args.messages, args.seed)
    mix = Counter(m[0] for m in stream)
    n = len(stream)
    print(
        "mix: "
        + ", ".join(f"{k}={v / n:.1%}" for k, v in sorted(mix.items()))
        + "  (L=limit M=market C=cancel R=replace)"
    )
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    elapsed, info = run_throughput(stream)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"engine throughput : {n / elapsed:>12,.0f} msgs/s  ({elapsed:.2f} s, "
        f"{info['events']:,} events, {info['trades']:,} trades, "
        f"{info['open_orders']:,} orders left open)"
    )

    lat = run_latency(stream)
    p50, p99, p999 = np.percentile(lat, [50, 99, 99.9])
    print(
        f"engine latency    : p50 {p50 / 1e3:.2f} us   p99 {p99 / 1e3:.2f} us   "
        f"p99.9 {p999 / 1e3:.2f} us  (per message)"
    )

    base = run_baseline(stream)
    print(
        f"bare heap baseline: {n / base:>12,.0f} msgs/s  (same stream; no validation, ids or "
        f"events: {elapsed / base:.1f}x the engine's time)"
    )
    print(
        f"peak RSS          : {rss1 / 1024:.0f} MiB  (stream alone: {rss0 / 1024:.0f} MiB; "
        f"engine pass added {(rss1 - rss0) / 1024:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
