"""A well-behaved client's latency while another account floods the exchange.

    python bench/flood.py [--samples 2000] [--connections 4]

One exchange process (default settings: the per-account rate limit is on) on loopback ports.
A well-behaved client sends one order at a time and measures each acknowledgement (then
cancels the order, so the book stays small). First alone, then while a flooder process sends
frames of 100 orders as fast as it can over `--connections` connections of one other account.
Prints the well-behaved client's ack p50/p99 in both runs and the p99 ratio (target: within 3x).
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
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ex = start_exchange(Path(tmp) / "ex")
        try:
            gw = ex.ready["gateway"]
            quiet = measure(gw, args.samples, "q")
            ready, stop = mp.Event(), mp.Event()
            proc = mp.Process(target=flooder, args=(gw, args.connections, ready, stop))
            proc.start()
            ready.wait(60)
            time.sleep(1.0)  # let the flood build up before measuring under it
            loaded = measure(gw, args.samples, "l")
            stop.set()
            proc.join(30)
        finally:
            ex.stop()
    for name, lat in (("alone", quiet), (f"{args.connections}-connection flood", loaded)):
        print(f"well-behaved ack, {name:<24} p50 {np.percentile(lat, 50):6.2f} ms   "
              f"p99 {np.percentile(lat, 99):6.2f} ms")  # fmt: skip
    ratio = np.percentile(loaded, 99) / np.percentile(quiet, 99)
    print(f"p99 ratio flood/alone: {ratio:.2f}x (target: within 3x)")


if __name__ == "__main__":
    main()
