"""End-to-end throughput and latency of the exchange process, with clients in other processes.

    python bench/exchange_e2e.py [--clients 2] [--seconds 5] [--quick] [--fsync none|always|group]

One exchange process (matching, journal, feed, drop copy all running) on loopback ports, and
client processes that share the machine's 2 cores with it. Scenarios, each on a fresh exchange:

* closed loop: each client has one order outstanding (send, wait for the ack, send ...);
* pipelined: each client keeps a window of unbatched orders outstanding;
* batched: each client sends frames of several orders and keeps a few frames outstanding;
* open loop: clients send at a fixed total offered rate; ack latency percentiles;
* feed fan-out: 10 and 50 subscribers while the order flow drives the feed; delivered rate,
  loss (sequence gaps) and latency from the exchange timestamp to the subscriber.

The order flow is limit orders around a fixed mid, about half of them marketable, plus a cancel
of the client's oldest open order every few orders, so the book stays bounded. Clients keep
their side cheap (pre-encoded msgpack, no pydantic) so the figures are the exchange's.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
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
_EXCHANGE_ENV: dict[str, str] = {}  # the exchange's settings for every scenario (--fsync)


def _order(account: str, n: int, rng: np.random.Generator) -> dict:
    side = "buy" if rng.random() < 0.5 else "sell"
    off = int(rng.integers(-3, 6))  # negative: marketable
    price = 10_000 - off if side == "buy" else 10_000 + off
    return {
        "type": "new_order", "v": 1, "client_order_id": f"{account}-{n}", "symbol": SYM,
        "side": side, "order_type": "limit", "qty": int(rng.integers(1, 10)), "price": price,
    }  # fmt: skip


def _cancel(account: str, n: int, target: str) -> dict:
    return {
        "type": "cancel_order",
        "v": 1,
        "client_order_id": f"{account}-x{n}",
        "symbol": SYM,
        "orig_client_order_id": target,
    }


def client_main(
    gateway: str, account: str, mode: str, seconds: float, window: int, batch: int,
    rate: float, seed: int, out: mp.Queue,
) -> None:  # fmt: skip
    """One client process; puts (orders acked, elapsed, latencies ns) on `out`."""
    rng = np.random.default_rng(seed)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(gateway)
    sock.send(msgpack.packb({"type": "logon", "v": 1, "account": account}))
    sock.recv()
    packb, unpackb = msgpack.packb, msgpack.unpackb
    sent: dict[str, int] = {}
    open_clids: list[str] = []
    lat: list[int] = []
    acked = 0
    n = 0
    clock = time.perf_counter_ns

    def next_frame(k: int) -> bytes:
        nonlocal n
        msgs = []
        now = clock()
        for _ in range(k):
            n += 1
            if n % 4 == 0 and open_clids:
                msgs.append(_cancel(account, n, open_clids.pop(0)))
            else:
                o = _order(account, n, rng)
                sent[o["client_order_id"]] = now
                msgs.append(o)
        return packb(msgs[0]) if k == 1 else packb(msgs)

    def handle(frame: bytes) -> int:
        nonlocal acked
        done = 0
        now = clock()
        for m in unpackb(frame):
            if m.get("type") != "execution_report":
                if m.get("type") in ("cancel_reject", "protocol_reject"):
                    done += 1
                continue
            clid = m["client_order_id"]
            et = m["exec_type"]
            if et in ("new", "rejected"):
                t0 = sent.pop(clid, None)
                if t0 is not None:
                    lat.append(now - t0)
                    acked += 1
                    done += 1
                    if et == "new":
                        open_clids.append(clid)
            elif et == "canceled" and m.get("text") == "user":
                done += 1
        return done

    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    start = time.perf_counter()
    end = start + seconds
    outstanding = 0
    if mode == "open":
        interval = 1.0 / rate
        next_send = start
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            if now >= next_send:
                sock.send(next_frame(1))
                next_send += interval
                continue
            if poller.poll(max(0, int((next_send - now) * 1000))):
                while True:
                    try:
                        handle(sock.recv(zmq.NOBLOCK))
                    except zmq.Again:
                        break
    else:
        per_frame = batch if mode == "batched" else 1
        frames_out = window if mode != "closed" else 1
        while time.perf_counter() < end:
            while outstanding < frames_out * per_frame:
                sock.send(next_frame(per_frame))
                outstanding += per_frame
            if poller.poll(1000):
                outstanding -= handle(sock.recv())
                while True:
                    try:
                        outstanding -= handle(sock.recv(zmq.NOBLOCK))
                    except zmq.Again:
                        break
    elapsed = time.perf_counter() - start
    out.put((acked, elapsed, np.array(lat, dtype=np.int64)))
    sock.close()
    ctx.term()


def subscriber_main(feed: str, sockets: int, seconds: float, out: mp.Queue) -> None:
    """`sockets` SUB sockets in one process; counts messages, gaps and latency per socket."""
    ctx = zmq.Context()
    subs = []
    poller = zmq.Poller()
    for _ in range(sockets):
        s = ctx.socket(zmq.SUB)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVHWM, 100_000)
        s.setsockopt_string(zmq.SUBSCRIBE, f"{SYM}|")
        s.connect(feed)
        poller.register(s, zmq.POLLIN)
        subs.append(s)
    out.put("ready")
    counts = [0] * sockets
    gaps = [0] * sockets
    last: list[dict[bytes, int]] = [{} for _ in range(sockets)]
    lat: list[int] = []
    end = time.perf_counter() + seconds
    index = {s: i for i, s in enumerate(subs)}
    while time.perf_counter() < end:
        for s, _ in poller.poll(200):
            i = index[s]
            while True:
                try:
                    topic, payload = s.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                msgs = msgpack.unpackb(payload)
                now = time.time_ns()
                prev = last[i].get(topic)
                for m in msgs:
                    if m["type"] == "heartbeat":
                        continue  # carries the stream's last seq, not a new message
                    seq = m["seq"]
                    if prev is not None and seq != prev + 1:
                        gaps[i] += seq - prev - 1
                    prev = seq
                    counts[i] += 1
                last[i][topic] = prev
                if i == 0 and msgs[-1].get("ts"):
                    lat.append(now - msgs[-1]["ts"])
    out.put((counts, gaps, np.array(lat, dtype=np.int64)))
    for s in subs:
        s.close()
    ctx.term()


def _pct(lat: np.ndarray) -> str:
    if not len(lat):
        return "n/a"
    p50, p99, p999 = np.percentile(lat, [50, 99, 99.9]) / 1e6
    return f"p50 {p50:.2f} ms  p99 {p99:.2f} ms  p99.9 {p999:.2f} ms"


def run_scenario(
    mode: str, clients: int, seconds: float, window: int = 1, batch: int = 1,
    rate: float = 0.0, subscribers: int = 0,
) -> None:  # fmt: skip
    with tempfile.TemporaryDirectory(dir=os.environ.get("AGORA_BENCH_DIR")) as tmp:
        ex = start_exchange(
            Path(tmp), AGORA_EXCHANGE_RATE_LIMIT="1000000", AGORA_EXCHANGE_RATE_BURST="1000000",
            AGORA_EXCHANGE_LOG_LEVEL="warning", **_EXCHANGE_ENV,
        )  # fmt: skip
        ctx = mp.get_context("spawn")
        q: mp.Queue = ctx.Queue()
        subq: mp.Queue = ctx.Queue()
        sub_procs = []
        per_proc = 10
        for k in range(0, subscribers, per_proc):
            p = ctx.Process(
                target=subscriber_main,
                args=(ex.ready["feed"], min(per_proc, subscribers - k), seconds + 2, subq),
            )
            p.start()
            sub_procs.append(p)
        for _ in sub_procs:
            subq.get()  # each subscriber process has connected its sockets
        per_client = rate / clients if rate else 0.0
        gateway = ex.ready["gateway"]
        procs = [
            ctx.Process(
                target=client_main,
                args=(gateway, f"c{i}", mode, seconds, window, batch, per_client, i, q),
            )
            for i in range(clients)
        ]
        for p in procs:
            p.start()
        results = [q.get() for _ in procs]
        for p in procs:
            p.join()
        acked = sum(r[0] for r in results)
        elapsed = max(r[1] for r in results)
        lat = np.concatenate([r[2] for r in results])
        label = {
            "closed": "closed loop (1 outstanding)",
            "pipelined": f"pipelined (window {window})",
            "batched": f"batched ({batch}/frame, {window} frames out)",
            "open": f"open loop at {rate:,.0f}/s offered",
        }[mode]
        print(f"{label:<36} {acked / elapsed:>10,.0f} orders/s   ack {_pct(lat)}", flush=True)
        if sub_procs:
            subs = [subq.get() for _ in sub_procs]
            counts = [c for s in subs for c in s[0]]
            gaps = [g for s in subs for g in s[1]]
            feed_lat = np.concatenate([s[2] for s in subs])
            total = sum(counts) + sum(gaps)
            loss = sum(gaps) / total if total else 0.0
            print(
                f"  feed to {subscribers} subscribers: {np.mean(counts) / seconds:,.0f} msgs/s "
                f"each (min {min(counts) / seconds:,.0f}), loss {loss:.3%}, "
                f"latency {_pct(feed_lat)}",
                flush=True,
            )
            for p in sub_procs:
                p.join()
        err = ex.stop()
        if ex.returncode != 0:
            print(err[-2000:], file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="1-second scenarios (smoke test)")
    parser.add_argument(
        "--feed-rate", type=float, default=8_000,
        help="messages/s offered while measuring the feed (its rate follows the order flow)",
    )
    parser.add_argument(
        "--only", default="", help="comma-separated subset: closed,pipelined,batched,open,feed"
    )
    parser.add_argument(
        "--fsync", default="none", choices=["none", "always", "group"],
        help="the exchange's journal durability (AGORA_EXCHANGE_DURABILITY)",
    )
    parser.add_argument("--group-ms", type=float, default=2.0, help="with --fsync group")
    args = parser.parse_args()
    secs = 1.0 if args.quick else args.seconds
    print(f"exchange e2e, {args.clients} client processes, {secs:.0f} s per scenario, "
          f"{os.cpu_count()} CPUs shared by everything, durability {args.fsync}"
          + (f" ({args.group_ms:g} ms)" if args.fsync == "group" else ""), flush=True)  # fmt: skip
    _EXCHANGE_ENV.update({"AGORA_EXCHANGE_DURABILITY": args.fsync,
                          "AGORA_EXCHANGE_GROUP_COMMIT_MS": str(args.group_ms)})  # fmt: skip

    only = set(args.only.split(",")) if args.only else None

    def want(name: str) -> bool:
        return only is None or name in only

    if want("closed"):
        run_scenario("closed", args.clients, secs)
    if want("pipelined"):
        run_scenario("pipelined", args.clients, secs, window=200)
    if want("batched"):
        run_scenario("batched", args.clients, secs, window=4, batch=100)
    if want("open"):
        run_scenario("open", args.clients, secs, rate=5_000)
    if want("feed"):
        # About 10,000 feed messages/s: each order makes a book delta and often a trade and
        # a top-of-book update.
        run_scenario("open", args.clients, secs, rate=args.feed_rate, subscribers=10)
        run_scenario("open", args.clients, secs, rate=args.feed_rate, subscribers=50)


if __name__ == "__main__":
    main()
