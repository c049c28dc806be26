"""What remembering costs the exchange's report path, and what numpy integers cost the models.

    python bench/reports.py [--messages 200000] [--seed 7] [--rounds 5]

Figures, each against its baseline in the same run (alternating rounds, median of each, CPU
time: a busy machine distorts both alike), all with the collector set as the exchange process
sets it (`ExchangeServer.serve`: ``gc.freeze()``, thresholds 50,000/50/1,000). With the
interpreter's default thresholds every kept report and print would be traversed again and again
by young collections the process does not make, and the windows would look several times dearer
than they are:
* the engine's events for bench/engine.py's order stream translated by a plain `Reporter()`
  (the simulator's) and by the exchange's (`account_seq` stamped on every execution report, the
  last 256 per account kept for resends, the last 10,000 prints per symbol for the tape), and
  with each window alone. A reporter with a resend window packs each report (it keeps and
  the process sends those bytes), so its baseline is the plain reporter's reports packed too;
* the exchange process's whole per-request path with its sockets stubbed out
  (`ExchangeServer._apply`: journal, engine, reports, feed, every account logged on; then
  `_flush` every 256 requests: journal commit, packing what is sent) with each of the two
  reporters;
* `NewOrder(...)` built from plain ints and from numpy ints, and `decode` of the same order
  (the gateway's hot path, which numpy support does not touch).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

try:  # noqa: SIM105  (first: keeps bench/ off the import path, see _path.py)
    import _path  # noqa: F401
except ModuleNotFoundError:
    pass
import msgpack
import numpy as np
import structlog

from exchange.protocol import NewOrder, decode, encode
from exchange.reports import Reporter
from exchange.server import ExchangeServer
from exchange.settings import ExchangeSettings

# bench/engine.py's order stream (loaded by path: bench/ is kept off the import path)
_ENGINE_BENCH = Path(__file__).with_name("engine.py")
_spec = importlib.util.spec_from_file_location("bench_engine", _ENGINE_BENCH)
assert _spec is not None and _spec.loader is not None
_engine_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_engine_bench)
make_engine, make_stream = _engine_bench.make_engine, _engine_bench.make_stream


def events_of(stream: list[tuple]) -> list[list[tuple]]:
    """The engine's events per message (computed once, outside the timing)."""
    engine = make_engine()
    out = []
    for ts, msg in enumerate(stream):
        kind = msg[0]
        if kind == "L":
            _, side, qty, price, acct, clid = msg
            out.append(engine.submit("AGR", side, "limit", qty, price, acct, clid, "GTC", ts))
        elif kind == "M":
            _, side, qty, _price, acct, clid = msg
            out.append(engine.submit("AGR", side, "market", qty, None, acct, clid, "IOC", ts))
        elif kind == "C":
            _, acct, clid = msg
            out.append(engine.cancel(acct, None, clid, ts))
        else:
            _, acct, clid, qty, price = msg
            out.append(engine.replace(acct, qty, price, None, clid, ts))
    return out


@contextlib.contextmanager
def process_gc() -> Iterator[None]:
    """The collector as the exchange process runs it (`ExchangeServer.serve`), then restored."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        gc.collect()


def time_reporter(reporter: Reporter, batches: list[list[tuple]], pack: bool = False) -> float:
    """`pack`: also pack each private message, as the process does to send it (a reporter with
    a resend window packs them itself, `RawOutbox.wire`)."""
    translate = reporter.translate_raw
    packb = msgpack.Packer(use_bin_type=True).pack
    with process_gc():
        t0 = time.process_time()
        if pack:
            for events in batches:
                for _owner, msg in translate(events).private:
                    packb(msg)
        else:
            for events in batches:
                translate(events)
        return time.process_time() - t0


def journal_records(stream: list[tuple]) -> list[list]:
    """The same stream as the exchange journals it (`exchange.server._record`)."""
    out: list[list] = []
    for ts, msg in enumerate(stream, start=1):
        kind = msg[0]
        if kind == "L":
            _, side, qty, price, acct, clid = msg
            out.append(["N", ts, acct, str(clid), "AGR", side, "limit", qty, price, "GTC",
                        False, "cancel_newest"])  # fmt: skip
        elif kind == "M":
            _, side, qty, _price, acct, clid = msg
            out.append(["N", ts, acct, str(clid), "AGR", side, "market", qty, None, "IOC",
                        False, "cancel_newest"])  # fmt: skip
        elif kind == "C":
            _, acct, clid = msg
            out.append(["X", ts, acct, f"x{ts}", "AGR", None, str(clid)])
        else:
            _, acct, clid, qty, price = msg
            out.append(["R", ts, acct, f"r{ts}", "AGR", None, str(clid), qty, price])
    return out


class _NullSocket:
    """Takes frames and drops them: the flush's work without the network."""

    def send_multipart(self, frames: list[bytes], flags: int = 0) -> None:
        pass


def time_process_path(records: list[list], remembering: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        settings = ExchangeSettings(data_dir=Path(tmp), symbols=[make_engine().market("AGR").spec])
        server = ExchangeServer(settings)
        if not remembering:
            server.reporter = Reporter()
        # Every account logged on (one session each), so its reports are routed and packed.
        for record in records:
            server.by_account[record[2]] = {record[2].encode()}
        server._gw = server._feed = server._dropsock = _NullSocket()  # type: ignore[assignment]
        with process_gc():
            t0 = time.process_time()
            for i, record in enumerate(records):
                server._apply(list(record), None, record[1])
                if i % 256 == 255:
                    server._flush()
            server._flush()
            elapsed = time.process_time() - t0
        server.journal.close()
        return elapsed


def alternate(variants: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Median time of each variant over `rounds` rounds, the variants taking turns."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            times[name].append(run())
    return {name: statistics.median(t) for name, t in times.items()}


def _row(label: str, n: int, t: float, base: float | None = None) -> str:
    vs = f" (time {(t / base - 1) * 100:+.1f}%)" if base is not None else ""
    return f"{label:<40}{n / t:>12,.0f} msg/s{vs}"


def time_calls(fn: Callable[[], Any], n: int) -> float:
    t0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t0) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (median)")
    args = parser.parse_args()
    n = args.messages
    stream = make_stream(n, args.seed)
    batches = events_of(stream)
    n_events = sum(len(b) for b in batches)
    print(f"{n:,} messages, {n_events:,} engine events; gc as the exchange process sets it")
    t = alternate({
        "plain": lambda: time_reporter(Reporter(), batches),
        "packed": lambda: time_reporter(Reporter(), batches, pack=True),
        "both": lambda: time_reporter(Reporter(resend_window=256, tape_window=10_000), batches),
        "resend": lambda: time_reporter(Reporter(resend_window=256), batches),
        "tape": lambda: time_reporter(Reporter(tape_window=10_000), batches),
    }, args.rounds)  # fmt: skip
    plain = t["plain"]
    print(_row("translate_raw, plain Reporter():", n, plain))
    print(_row("translate_raw, tape window only:", n, t["tape"], plain))
    print(_row("translate_raw + pack, plain Reporter():", n, t["packed"]))
    print(_row("translate_raw, sequenced + windows:", n, t["both"], t["packed"]))
    print(_row("translate_raw, resend window only:", n, t["resend"], t["packed"]))
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    records = journal_records(stream)
    t = alternate({
        "off": lambda: time_process_path(records, False),
        "on": lambda: time_process_path(records, True),
    }, max(3, args.rounds - 2))  # fmt: skip
    print(_row("exchange request path, plain reporter:", n, t["off"]))
    print(_row("exchange request path, remembering:", n, t["on"], t["off"]))

    calls = 50_000
    fields = dict(client_order_id="c1", symbol="AGR", side="buy", order_type="limit")
    ints = time_calls(lambda: NewOrder(**fields, qty=5, price=10_000), calls)
    nps = time_calls(lambda: NewOrder(**fields, qty=np.int64(5), price=np.int64(10_000)), calls)
    frame = encode(NewOrder(**fields, qty=5, price=10_000))
    dec = time_calls(lambda: decode(frame), calls)
    print(f"NewOrder(...) with ints:                {ints * 1e6:>9.2f} us")
    print(f"NewOrder(...) with numpy ints:          {nps * 1e6:>9.2f} us")
    print(f"decode(NewOrder frame) (gateway path):  {dec * 1e6:>9.2f} us")


if __name__ == "__main__":
    main()
