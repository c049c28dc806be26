"""How long an exchange takes to come back after a long run, and how much memory it needs.

    python bench/restart.py [--messages 10000000] [--tail 500000] [--data DIR] [--keep]

1. Writes a journal of `--messages` commands offline: the commands go through an in-process
   exchange's own command path (journal, engine, reports, feed; no sockets), so the file is
   exactly what a live exchange would have written, trades and all. The flow is bench/engine.py's
   mix (60% limit, 10% market, 25% cancels, 5% replaces, 200 accounts, unique client order
   ids). A snapshot is taken (forked, as live) `--tail` messages before the end: the worst case
   of a snapshot every `--tail` records.
2. Restarts a fresh `python` process on that directory twice: from the snapshot (plus the tail),
   and with the snapshot moved away (the whole journal). Each prints its wall time to a ready
   exchange and its peak RSS (ru_maxrss).

Prints the journal's size, the snapshot's size, the fork pause and the child's write time, and
the two restarts side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:  # noqa: SIM105  (first: keeps bench/ off the import path, see _path.py)
    import _path  # noqa: F401
except ModuleNotFoundError:
    pass
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exchange.server import ExchangeServer
from exchange.settings import ExchangeSettings
from exchange.symbols import SymbolSpec

SYMBOL = "AGR"
SPEC = SymbolSpec(symbol=SYMBOL, reference_price=10_000, band_bps=5_000, halt_move_bps=2_000)


def _settings(data: Path) -> ExchangeSettings:
    return ExchangeSettings(data_dir=data, symbols=[SPEC], snapshot_every_records=0,
                            snapshot_every_s=0, log_json=True, log_level="warning")  # fmt: skip


def records(n: int, seed: int = 7) -> Iterator[list[Any]]:
    """Journal command records, bench/engine.py's mix, in chunks of numpy draws."""
    rng = np.random.default_rng(seed)
    pool: list[tuple[str, str, str]] = []  # (account, client order id, side) of open limits
    mid = 10_000
    ts = 1_700_000_000_000_000_000
    chunk = 100_000
    i = 0
    while i < n:
        m = min(chunk, n - i)
        kinds = rng.choice(4, size=m, p=[0.60, 0.10, 0.25, 0.05])
        sides = rng.integers(0, 2, size=m)
        accounts = rng.integers(0, 200, size=m)
        qtys = rng.integers(1, 101, size=m)
        offsets = 1 + np.floor(rng.exponential(4.0, size=m)).astype(np.int64)
        offsets[rng.random(m) < 0.05] = -2
        drift = np.cumsum(rng.choice([-1, 0, 1], size=m, p=[0.004, 0.992, 0.004]))
        picks = rng.random(m)
        for k in range(m):
            ts += 20_000  # 50,000 messages a second: the exchange's batched peak
            kind = kinds[k]
            account = f"acct{accounts[k]}"
            side = "buy" if sides[k] else "sell"
            p = mid + int(drift[k])
            clid = f"c{i}"
            if kind == 0:
                off = int(offsets[k])
                price = p - off if side == "buy" else p + off
                pool.append((account, clid, side))
                if len(pool) > 200_000:  # old orders have mostly filled or been cancelled
                    pool[0] = pool.pop()
                yield ["N", ts, account, clid, SYMBOL, side, "limit", int(qtys[k]), price,
                       "GTC", False, "cancel_newest"]  # fmt: skip
            elif kind == 1:
                yield ["N", ts, account, clid, SYMBOL, side, "market", int(qtys[k]) // 4 + 1,
                       None, "IOC", False, "cancel_newest"]  # fmt: skip
            elif pool:
                j = int(picks[k] * len(pool))
                if kind == 2:
                    pool[j], pool[-1] = pool[-1], pool[j]
                    acct, target, _ = pool.pop()
                    yield ["X", ts, acct, f"x{i}", SYMBOL, None, target]
                else:
                    acct, target, oside = pool[j]
                    off = int(offsets[k])
                    price = p - off if oside == "buy" else p + off
                    yield ["R", ts, acct, f"r{i}", SYMBOL, None, target, int(qtys[k]), price]
            else:
                yield ["A", ts]
            i += 1
        mid += int(drift[-1])


def generate(data: Path, n: int, tail: int) -> dict:
    server = ExchangeServer(_settings(data))
    private, public, drop = server._private, server._public, server._drop
    t0 = time.perf_counter()
    snaps: list[tuple[int, float, float]] = []  # (at message, fork pause s, child s)
    # Two snapshots: the first hashes every client order id, the second only the new ones.
    at = {max(1, n - tail - 500_000), n - tail}
    for count, record in enumerate(records(n), 1):
        server._apply(record, None, record[1])
        if count % 256 == 0:
            private.clear()
            public.clear()
            drop.clear()
            server.journal.commit()
        if count in at:
            server.journal.commit()
            t1 = time.perf_counter()
            server.take_snapshot(fork=True)
            pause = time.perf_counter() - t1
            server._snapshot_tick(wait=True)
            snaps.append((count, pause, time.perf_counter() - t1))
        if count % 1_000_000 == 0:
            print(f"  {count:,} messages journalled ({time.perf_counter() - t0:.0f} s)",
                  flush=True)  # fmt: skip
    server.journal.close()
    return {
        "generate_s": time.perf_counter() - t0,
        "journal_bytes": server.settings.journal_path.stat().st_size,
        "records": server.journal.records,
        "trades": len(server.journal.trade_offsets),
        "open_orders": len(server.engine._orders),
        "snapshot_bytes": server.settings.snapshot_path.stat().st_size,
        "snapshots": snaps,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def restart_child(data: Path) -> None:
    """(Run in a fresh process.) Build the exchange from `data`; print the figures as JSON."""
    t0 = time.perf_counter()
    server = ExchangeServer(_settings(data))
    elapsed = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # (VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so a child started by a big
    # parent would report the parent's peak)
    status = Path("/proc/self/status").read_text()
    rss_kb = int(status.split("VmHWM:")[1].split()[0])
    print(json.dumps({
        "seconds": elapsed, "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": rss_kb / 1024, "from_snapshot": server.from_snapshot,
        "replayed": server.replayed, "open_orders": len(server.engine._orders),
        "next_order_id": server.engine._next_order_id, "trades": len(server.journal.trade_offsets),
        "last_trade_id": server.journal.last_trade_id,
        "report_seqs": sum(server.reporter.account_seqs.values()),
    }))  # fmt: skip


def restart(data: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--restart-child", str(data)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--tail", type=int, default=500_000, help="messages after the snapshot")
    parser.add_argument("--data", type=Path, default=None, help="reuse/keep this directory")
    parser.add_argument("--keep", action="store_true", help="keep the generated journal")
    parser.add_argument("--restart-child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.restart_child is not None:
        restart_child(args.restart_child)
        return
    data = args.data or Path(tempfile.mkdtemp(prefix="agora-restart-"))
    journal = data / "exchange.journal"
    try:
        if not journal.exists():
            print(f"writing {args.messages:,} messages to {journal}", flush=True)
            gen = generate(data, args.messages, args.tail)
            print(f"  journal {gen['journal_bytes'] / 1e9:.2f} GB, {gen['records']:,} records "
                  f"({gen['trades']:,} trades), {gen['open_orders']:,} open orders; "
                  f"written in {gen['generate_s']:.0f} s")  # fmt: skip
            print(f"  the writing process peaked at {gen['rss_mb']:.0f} MB RSS")
            for count, pause, child in gen["snapshots"]:
                print(f"  snapshot at message {count:,}: market paused {pause * 1000:.1f} ms "
                      f"(fork); the child wrote it in {child:.1f} s")  # fmt: skip
            print(f"  snapshot file {gen['snapshot_bytes'] / 1e6:.1f} MB")
        snap = restart(data)
        print(f"restart from snapshot + {snap['replayed']:,}-command tail: "
              f"{snap['seconds']:.2f} s ({snap['cpu_s']:.2f} s CPU), "
              f"peak RSS {snap['peak_rss_mb']:.0f} MB "
              f"(from_snapshot={snap['from_snapshot']})", flush=True)  # fmt: skip
        moved = data / "exchange.snapshot.moved"
        os.replace(data / "exchange.snapshot", moved)
        try:
            full = restart(data)
        finally:
            os.replace(moved, data / "exchange.snapshot")
        print(f"restart replaying the whole journal ({full['replayed']:,} commands): "
              f"{full['seconds']:.2f} s ({full['cpu_s']:.2f} s CPU), "
              f"peak RSS {full['peak_rss_mb']:.0f} MB")  # fmt: skip
        keys = ("open_orders", "next_order_id", "trades", "last_trade_id", "report_seqs")
        same = all(snap[k] == full[k] for k in keys)
        print(f"same open orders, next order id, trade count, last trade id and execution "
              f"report numbers both ways: {same}")  # fmt: skip
    finally:
        if args.data is None and not args.keep:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
