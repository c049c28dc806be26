"""What the web dashboard costs while the feed runs at 10,000 messages a second.

    python bench/dashboard.py [--rate 10000] [--seconds 10] [--per-frame 10]

A publisher process stands in for the exchange's feed: trades and tops of book of one symbol,
in the exchange's wire format and topics, `--per-frame` messages a frame (the exchange
batches a drain's messages per topic), paced at `--rate` messages a second. The dashboard
(`python -m dashboard`, no clearing house) subscribes to it, and one browser-like WebSocket
client takes its updates. For each phase the script prints the dashboard process's CPU time
over wall time (from /proc: what it costs of one core), the feed messages it took (from its
own metrics) against those sent, and the updates and bytes a second the browser got:

* idle: no feed (the baseline: the update timer, the pollers);
* the feed at `--rate`, frames of `--per-frame` messages;
* the same rate one message a frame (the worst case: every message its own frame);
* a bare SUB loop receiving and unpacking the same stream (the peer: the least any
  subscriber in Python pays), measured in this process.

Target: about 10% of one core at 10,000 messages a second, and a bounded update rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import time
import urllib.request
from pathlib import Path

try:  # noqa: SIM105  (first: keeps bench/ off the import path, see _path.py)
    import _path  # noqa: F401
except ModuleNotFoundError:  # a multiprocessing child: the parent's path is clean already
    pass
import msgpack
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.launch import Proc, free_endpoint

SYM = "AGR"
TICK_S = os.sysconf("SC_CLK_TCK")


def _frames(per_frame: int, n: int) -> list[tuple[bytes, list[dict]]]:
    """`n` frames of feed messages (alternately trades and tops of book); the publisher
    stamps their time as it sends them."""
    out = []
    seq = {"trades": 0, "tob": 0}
    for i in range(n):
        channel = "trades" if i % 2 == 0 else "tob"
        msgs = []
        for _ in range(per_frame):
            seq[channel] += 1
            price = 10_000 + (seq[channel] % 40) - 20
            if channel == "trades":
                msgs.append({"type": "trade", "v": 1, "ts": 0, "symbol": SYM,
                             "seq": seq[channel], "trade_id": seq[channel], "price": price,
                             "qty": 1 + seq[channel] % 7, "aggressor_side": "buy"})  # fmt: skip
            else:
                msgs.append({
                    "type": "top_of_book", "v": 1, "ts": 0, "symbol": SYM, "seq": seq[channel],
                    "bid_price": price - 1, "bid_qty": 5, "ask_price": price + 1,
                    "ask_qty": 7, "last_price": price,
                })  # fmt: skip
        out.append((f"{SYM}|{channel}".encode(), msgs))
    return out


def publish(endpoint: str, rate: int, per_frame: int, seconds: float, go: mp.Event,
            sent: mp.Value) -> None:  # fmt: skip
    """Publish at `rate` messages a second for `seconds` (after `go`), in paced bursts of
    10 ms, each message stamped with the time it is sent (the dashboard buckets trades by
    second and measures its feed lag from them)."""
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 1_000_000)
    pub.bind(endpoint)
    frames = _frames(per_frame, 2_000)
    packb = msgpack.Packer().pack
    go.wait()
    start = time.perf_counter()
    n = i = 0
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(elapsed * rate)
        while n < due:
            topic, msgs = frames[i % len(frames)]
            now = time.time_ns()
            for m in msgs:
                m["ts"] = now
            pub.send_multipart([topic, packb(msgs)])
            n += per_frame
            i += 1
        time.sleep(0.01)  # pacing the publisher (a rate, not a synchronisation)
    sent.value = n
    pub.close(linger=1000)
    ctx.term()


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK_S  # utime + stime


def _taken(metrics: str) -> float:
    text = urllib.request.urlopen(metrics, timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith("agora_dashboard_feed_messages_total "):
            return float(line.split()[1])
    return 0.0


class Browser:
    """A WebSocket client counting the dashboard's updates (what a browser would get)."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("http://", "ws://") + "ws"
        self.updates = 0
        self.bytes = 0

    async def run(self, stop: asyncio.Event) -> None:
        import websockets

        async with websockets.connect(self.url, max_size=None) as ws:
            while not stop.is_set():
                try:
                    msg = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                if json.loads(msg).get("t") == "tick":
                    self.updates += 1
                    self.bytes += len(msg)


async def _phase(dash: Proc, metrics: str, feed: str | None, rate: int, per_frame: int,
                 seconds: float) -> dict[str, float]:  # fmt: skip
    browser = Browser(dash.ready["dashboard"])
    stop = asyncio.Event()
    task = asyncio.create_task(browser.run(stop))
    go, sent = mp.Event(), mp.Value("q", 0)
    pub = None
    if feed is not None:
        pub = mp.Process(target=publish, args=(feed, rate, per_frame, seconds, go, sent))
        pub.start()
        await asyncio.sleep(1.0)  # the subscription reaches the publisher (slow joiner)
    taken0, cpu0, t0 = _taken(metrics), _cpu_s(dash.popen.pid), time.perf_counter()
    updates0, bytes0 = browser.updates, browser.bytes
    go.set()
    if pub is not None:
        await asyncio.to_thread(pub.join)
    else:
        await asyncio.sleep(seconds)  # the idle phase lasts this long
    await asyncio.sleep(0.5)  # the last frames are read
    wall = time.perf_counter() - t0
    cpu = _cpu_s(dash.popen.pid) - cpu0
    taken = _taken(metrics) - taken0
    stop.set()
    await task
    return {"cpu": cpu / wall, "sent": sent.value, "taken": taken, "wall": wall,
            "updates": (browser.updates - updates0) / wall,
            "bytes": (browser.bytes - bytes0) / wall}  # fmt: skip


def bare_sub(feed: str, rate: int, per_frame: int, seconds: float) -> dict[str, float]:
    """The peer: receive and unpack the same stream, nothing else (this process's CPU)."""
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 1_000_000)
    sub.connect(feed)
    for channel in ("trades", "tob"):
        sub.setsockopt(zmq.SUBSCRIBE, f"{SYM}|{channel}".encode())
    go, sent = mp.Event(), mp.Value("q", 0)
    pub = mp.Process(target=publish, args=(feed, rate, per_frame, seconds, go, sent))
    pub.start()
    time.sleep(1.0)  # the subscription reaches the publisher (slow joiner)
    cpu0, t0 = time.process_time(), time.perf_counter()
    go.set()
    n = 0
    while pub.is_alive() or sub.poll(0):
        if sub.poll(100):
            _topic, payload = sub.recv_multipart()
            n += len(msgpack.unpackb(payload))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    pub.join()
    sub.close(linger=0)
    ctx.term()
    return {"cpu": cpu / wall, "sent": sent.value, "taken": n}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=int, default=10_000, help="feed messages a second")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    ap.add_argument("--per-frame", type=int, default=10, help="messages a frame")
    ap.add_argument("--update-hz", type=float, default=4.0, help="the dashboard's update rate")
    args = ap.parse_args()
    feed = free_endpoint()
    metrics_port = int(free_endpoint().rsplit(":", 1)[1])
    env = dict(os.environ)
    env.update({
        "AGORA_DASHBOARD_PORT": "0", "AGORA_DASHBOARD_FEED": feed,
        "AGORA_DASHBOARD_SNAPSHOT": free_endpoint(), "AGORA_DASHBOARD_CLEARING": "",
        "AGORA_DASHBOARD_METRICS_PORT": str(metrics_port),
        "AGORA_DASHBOARD_UPDATE_HZ": str(args.update_hz), "AGORA_DASHBOARD_LOG_JSON": "1",
        "AGORA_DASHBOARD_SYMBOLS": json.dumps([{"symbol": SYM, "reference_price": 10_000}]),
    })  # fmt: skip
    dash = Proc([sys.executable, "-m", "dashboard"], env)
    metrics = dash.ready["metrics"]
    try:
        rows = [("idle (no feed)", await _phase(dash, metrics, None, 0, 1, args.seconds))]
        for per_frame in (args.per_frame, 1):
            label = f"{args.rate:,} msg/s, {per_frame} a frame"
            rows.append((label, await _phase(dash, metrics, feed, args.rate, per_frame,
                                             args.seconds)))  # fmt: skip
    finally:
        dash.stop()
    peer = bare_sub(free_endpoint(), args.rate, args.per_frame, args.seconds)
    print(f"dashboard at {args.update_hz:g} updates/s; {args.seconds:g} s a phase; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'phase':<30} {'CPU of one core':>16} {'taken / sent':>20} {'updates/s':>10} "
          f"{'bytes/s':>10}")
    for label, r in rows:
        taken = f"{r['taken']:,.0f} / {r['sent']:,}" if r["sent"] else "-"
        print(f"{label:<30} {r['cpu']:>15.1%} {taken:>20} {r['updates']:>10.1f} "
              f"{r['bytes']:>10,.0f}")
    print(f"{'bare SUB + unpack (peer)':<30} {peer['cpu']:>15.1%} "
          f"{peer['taken']:>9,.0f} / {peer['sent']:<9,}")


if __name__ == "__main__":
    asyncio.run(main())
