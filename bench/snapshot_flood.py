"""A well-behaved client's order latency while another peer floods the snapshot service.

    python bench/snapshot_flood.py [--samples 100] [--rounds 2] [--connections 4] [--book 100]

Two exchange processes on loopback ports, each with a few hundred resting orders (so a book
snapshot costs something): one with the default snapshot-service limits (a per-address
budget, a bounded share of each loop turn), one with them lifted (the service drains up to
1,000 requests a turn and answers each: how it was before the limits). A flooder process
sends book-snapshot and tape requests as fast as it can over `--connections` connections and
discards the answers. A well-behaved client sends one order at a time to the gateway and
measures each acknowledgement. Rounds alternate (alone, flood) on both exchanges, so all see
the same busy machine; prints p50 and the median p99 of each, and how many snapshot-service
answers the flooder got per second.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

try:  # noqa: SIM105  (first: keeps bench/ off the import path, see _path.py)
    import _path  # noqa: F401
except ModuleNotFoundError:  # a multiprocessing child: the parent's path is clean already
    pass
import msgpack
import numpy as np
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.launch import start_exchange

# The gateway client of bench/flood.py (loaded by path: bench/ stays off the import path).
_spec = importlib.util.spec_from_file_location("_bench_flood", Path(__file__).with_name("flood.py"))
assert _spec is not None and _spec.loader is not None
_flood = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_flood)
SYM, _logon, measure = _flood.SYM, _flood._logon, _flood.measure

UNLIMITED = {
    "AGORA_EXCHANGE_SNAPSHOT_RATE_LIMIT": "1e12", "AGORA_EXCHANGE_SNAPSHOT_BURST": "1000000000",
    "AGORA_EXCHANGE_SNAPSHOT_TURN_FRAMES": "1000", "AGORA_EXCHANGE_SNAPSHOT_TURN_S": "1000",
}  # fmt: skip


def fill_book(gateway: str, orders: int) -> None:
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(gateway)
    _logon(s, "maker")
    batch = [{
        "type": "new_order", "v": 1, "client_order_id": f"m{i}", "symbol": SYM,
        "side": "buy" if i % 2 else "sell", "order_type": "limit", "qty": 1,
        "price": 9_900 - i // 2 if i % 2 else 10_100 + i // 2,
    } for i in range(orders)]  # fmt: skip
    s.send(msgpack.packb(batch))
    acked = 0
    while acked < orders:
        acked += sum(1 for m in msgpack.unpackb(s.recv()) if m.get("exec_type") == "new")
    ctx.destroy(linger=0)


def flooder(snapshot: str, connections: int, ready: mp.Event, stop: mp.Event, out: mp.Value
            ) -> None:  # fmt: skip
    ctx = zmq.Context()
    socks = []
    for _ in range(connections):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 1000)
        s.connect(snapshot)
        socks.append(s)
    reqs = [msgpack.packb({"type": "snapshot_request", "v": 1, "symbol": SYM, "depth": 500}),
            msgpack.packb({"type": "tape_request", "v": 1, "symbol": SYM, "from_seq": 1})]
    answered = 0
    ready.set()
    t0 = time.perf_counter()
    n = 0
    while not stop.is_set():
        for s in socks:
            n += 1
            with contextlib.suppress(zmq.Again):
                s.send(reqs[n % 2], zmq.NOBLOCK)
            while s.poll(0):
                if b"rate_limited" not in s.recv():
                    answered += 1
    out.value = answered / (time.perf_counter() - t0)
    ctx.destroy(linger=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100, help="acks per round")
    parser.add_argument("--rounds", type=int, default=2, help="alone/flood round pairs")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--book", type=int, default=100, help="resting orders")
    args = parser.parse_args()
    runs: dict[tuple[str, str], list[np.ndarray]] = {}
    served: dict[str, list[float]] = {"limited": [], "unlimited": []}
    with tempfile.TemporaryDirectory() as tmp:
        exchanges = {
            "limited": start_exchange(Path(tmp) / "a"),
            "unlimited": start_exchange(Path(tmp) / "b", **UNLIMITED),
        }
        try:
            for ex in exchanges.values():
                fill_book(ex.ready["gateway"], args.book)
            for r in range(args.rounds):
                for name, ex in exchanges.items():
                    gw = ex.ready["gateway"]
                    runs.setdefault((name, "alone"), []).append(
                        measure(gw, args.samples, f"q{r}-")
                    )
                    ready, stop, rate = mp.Event(), mp.Event(), mp.Value("d", 0.0)
                    proc = mp.Process(target=flooder, args=(
                        ex.ready["snapshot"], args.connections, ready, stop, rate))  # fmt: skip
                    proc.start()
                    ready.wait(60)
                    time.sleep(0.5)  # let the flood build up before measuring under it
                    runs.setdefault((name, "flood"), []).append(
                        measure(gw, args.samples, f"l{r}-")
                    )
                    stop.set()
                    proc.join(30)
                    served[name].append(rate.value)
        finally:
            for ex in exchanges.values():
                ex.stop()
    for (name, kind), lats in runs.items():
        lat = np.concatenate(lats)
        p99 = float(np.median([np.percentile(x, 99) for x in lats]))
        extra = (f"   flooder answered {np.median(served[name]):8.0f}/s" if kind == "flood"
                 else "")  # fmt: skip
        print(f"order ack, snapshot service {name:<9} {kind:<5}  p50 "
              f"{np.percentile(lat, 50):6.2f} ms  median p99 {p99:6.2f} ms{extra}")


if __name__ == "__main__":
    main()
