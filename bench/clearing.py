"""Settled trades per second: through the ledger core, and through the persisted path.

    python bench/clearing.py [--trades 200000] [--accounts 1000] [--batch 1000]

* ledger: `Ledger.settle` alone (the pure core; issue 4 target >= 100,000 trades/s);
* persisted: `ClearingHouse.settle` in batches, one SQLite transaction per batch (trade rows,
  change rows, the touched accounts' balances, the settled point; target >= 20,000 trades/s);
* baseline: a bare loop building the same trade dicts, so the figures can be read against
  what this machine does in the same run.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

try:  # noqa: SIM105  (first: keeps bench/ off the import path, see _path.py)
    import _path  # noqa: F401
except ModuleNotFoundError:  # a multiprocessing child: the parent's path is clean already
    pass

from clearing.fees import FeeSchedule
from clearing.house import ClearingHouse
from clearing.ledger import Ledger
from clearing.store import Store
from exchange.settings import default_symbols


def make_trades(n: int, accounts: int, seed: int = 1) -> list[dict]:
    rnd = random.Random(seed)
    trades = []
    for i in range(1, n + 1):
        buyer = rnd.randrange(accounts)
        seller = (buyer + 1 + rnd.randrange(accounts - 1)) % accounts
        trades.append({
            "trade_id": i, "ts": i, "symbol": "AGR", "price": 10_000 + rnd.randint(-50, 50),
            "qty": rnd.randint(1, 20), "aggressor_side": "buy" if i % 2 else "sell",
            "buy_account": f"a{buyer}", "sell_account": f"a{seller}", "buy_order_id": 2 * i,
            "sell_order_id": 2 * i + 1,
        })  # fmt: skip
    return trades


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trades", type=int, default=200_000)
    ap.add_argument("--accounts", type=int, default=1_000)
    ap.add_argument("--batch", type=int, default=1_000)
    args = ap.parse_args()
    fees = FeeSchedule(maker_bps=-1, taker_bps=5)

    t0 = time.perf_counter()
    trades = make_trades(args.trades, args.accounts)
    baseline = args.trades / (time.perf_counter() - t0)

    ledger = Ledger(fees, {"AGR": 1})
    for a in range(args.accounts):
        ledger.open_account(f"a{a}", 10**12, {"AGR": 10**6}, cost_prices={"AGR": 10_000})
    t0 = time.perf_counter()
    for t in trades:
        ledger.settle(t)
    core = args.trades / (time.perf_counter() - t0)
    assert ledger.settled_through == args.trades and not ledger.violations

    with tempfile.TemporaryDirectory() as d:
        house = ClearingHouse(Store(Path(d) / "c.sqlite"), default_symbols(), "admin", fees=fees)
        for a in range(args.accounts):
            house.ledger.open_account(f"a{a}", 10**12, {"AGR": 10**6}, cost_prices={"AGR": 1})
        house.store.commit(house.ledger, [], touched=list(house.ledger.accounts))
        t0 = time.perf_counter()
        for i in range(0, args.trades, args.batch):
            house.settle(trades[i : i + args.batch])
        persisted = args.trades / (time.perf_counter() - t0)
        size = (Path(d) / "c.sqlite").stat().st_size + sum(
            p.stat().st_size for p in Path(d).glob("c.sqlite-*")
        )
        assert house.ledger.settled_through == args.trades
        house.store.close()

    print(f"trades: {args.trades:,}  accounts: {args.accounts:,}  batch: {args.batch:,}")
    print(f"baseline (build the trade dicts): {baseline:>12,.0f} /s")
    print(f"ledger core (settle):             {core:>12,.0f} trades/s   target >= 100,000")
    print(f"persisted (SQLite, batched):      {persisted:>12,.0f} trades/s   target >= 20,000")
    print(f"database size: {size / 2**20:.1f} MiB ({size / args.trades:.0f} bytes/trade)")


if __name__ == "__main__":
    main()
