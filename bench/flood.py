"""A well-behaved client's latency while another account floods the exchange.

    python bench/flood.py [--samples 1000] [--rounds 3] [--connections 4]

One exchange process (default settings: the per-account rate limit is on) on loopback ports.
A well-behaved client sends one order at a time and measures each acknowledgement (then
cancels the order, so the book stays small). First alone, then while a flooder process sends
frames of 100 orders as fast as it can over `--connections` connections of one other account.
Rounds alternate (alone, flood, alone, ...) so both see the same busy machine; prints the
well-behaved client's ack p50 and per-round p99 for each, and the ratio of the median p99s
(target: within 3x).
"""

from __future__ import annotations

import argparse
import contextlib
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

SYM = "AGR"


def _logon(sock: zmq.Socket, account: str) -> None:
    sock.send(msgpack.packb({"type": "logon", "v": 1, "account": account, "token": ""}))
    while True:
        for m in msgpack.unpackb(sock.recv()):
            if m["type"] == "logon_reply":
                assert m["accepted"], m
                return


def flooder(gateway: str, connections: int, ready: mp.Event, stop: mp.Event) -> None:
    ctx = zmq.Context()
    socks = []
    for _ in range(connections):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 1000)
        s.connect(gateway)
        _logon(s, "flood")
        socks.append(s)
    n = 0
    ready.set()
    while not stop.is_set():
        for s in socks:
            batch = []
            for _ in range(100):
                n += 1
                batch.append({
                    "type": "new_order", "v": 1, "client_order_id": f"f{n}", "symbol": SYM,
                    "side": "buy", "order_type": "limit", "qty": 1, "price": 9_000 + n % 50,
                })  # fmt: skip
            with contextlib.suppress(zmq.Again):  # the exchange is behind: drop this frame
                s.send(msgpack.packb(batch), zmq.NOBLOCK)
            while s.poll(0):  # read and discard the answers
                s.recv()
    ctx.destroy(linger=0)


def measure(gateway: str, samples: int, tag: str) -> np.ndarray:
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(gateway)
    _logon(s, f"calm-{tag}")
    lat = []
    for i in range(samples):
        clid = f"{tag}{i}"
        t0 = time.perf_counter()
        s.send(msgpack.packb({
            "type": "new_order", "v": 1, "client_order_id": clid, "symbol": SYM, "side": "sell",
            "order_type": "limit", "qty": 1, "price": 10_500,
        }))  # fmt: skip
        oid = None
        while oid is None:
            for m in msgpack.unpackb(s.recv()):
                if m.get("client_order_id") == clid and m["type"] == "execution_report":
                    assert m["exec_type"] == "new", m
                    oid = m["order_id"]
        lat.append(time.perf_counter() - t0)
        s.send(msgpack.packb({"type": "cancel_order", "v": 1, "client_order_id": f"x{clid}",
                              "symbol": SYM, "order_id": oid}))  # fmt: skip
        done = False
        while not done:
            for m in msgpack.unpackb(s.recv()):
                if m.get("client_order_id") == clid and m.get("exec_type") == "canceled":
                    done = True
    ctx.destroy(linger=0)
    return np.array(lat) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=1000, help="acks per round")
    parser.add_argument("--rounds", type=int, default=3, help="alone/flood round pairs")
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    quiet: list[np.ndarray] = []
    loaded: list[np.ndarray] = []
    with tempfile.TemporaryDirectory() as tmp:
        ex = start_exchange(Path(tmp) / "ex")
        try:
            gw = ex.ready["gateway"]
            # Rounds alternate, so that both see the same (shared, busy) machine.
            for r in range(args.rounds):
                quiet.append(measure(gw, args.samples, f"q{r}-"))
                ready, stop = mp.Event(), mp.Event()
                proc = mp.Process(target=flooder, args=(gw, args.connections, ready, stop))
                proc.start()
                ready.wait(60)
                time.sleep(0.5)  # let the flood build up before measuring under it
                loaded.append(measure(gw, args.samples, f"l{r}-"))
                stop.set()
                proc.join(30)
        finally:
            ex.stop()
    p99 = {name: float(np.median([np.percentile(x, 99) for x in runs]))
           for name, runs in (("alone", quiet), ("flood", loaded))}  # fmt: skip
    for name, runs in (("alone", quiet), (f"{args.connections}-connection flood", loaded)):
        lat = np.concatenate(runs)
        per_round = " ".join(f"{np.percentile(x, 99):.2f}" for x in runs)
        print(f"well-behaved ack, {name:<24} p50 {np.percentile(lat, 50):6.2f} ms   "
              f"p99 by round {per_round} ms")  # fmt: skip
    ratio = p99["flood"] / p99["alone"]
    print(f"median p99: alone {p99['alone']:.2f} ms, flood {p99['flood']:.2f} ms; "
          f"ratio {ratio:.2f}x (target: within 3x)")


if __name__ == "__main__":
    main()
