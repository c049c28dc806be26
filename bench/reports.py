"""What remembering costs the exchange's report path, and what numpy integers cost the models.

    python bench/reports.py [--messages 200000] [--seed 7]

Figures, each against its baseline in the same run (interleaved rounds, best of each, CPU
time: a busy machine distorts both alike):
* the engine's events for bench/engine.py's order stream translated by a plain `Reporter()`
  (the simulator's) and by the exchange's (`account_seq` stamped on every execution report, the
  last 256 per account kept for resends, the last 10,000 prints per symbol for the tape);
* the exchange process's whole per-request path without sockets (`ExchangeServer._apply`:
  journal, engine, reports, feed; a flush every 256 requests) with each of the two reporters;
* `NewOrder(...)` built from plain ints and from numpy ints, and `decode` of the same order
  (the gateway's hot path, which numpy support does not touch).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import logging
import tempfile
import time
from pathlib import Path

try:  # noqa: SIM105  (first: keeps bench/ off the import path, see _path.py)
    import _path  # noqa: F401
except ModuleNotFoundError:
    pass
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


def time_reporter(reporter: Reporter, batches: list[list[tuple]]) -> float:
    translate = reporter.translate_raw
    t0 = time.process_time()
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


def time_process_path(records: list[list], remembering: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        settings = ExchangeSettings(data_dir=Path(tmp), symbols=[make_engine().market("AGR").spec])
        server = ExchangeServer(settings)
        if not remembering:
            server.reporter = Reporter()
        gc.collect()
        gc.freeze()  # as the process does before serving
        gc.set_threshold(50_000, 50, 1000)
        t0 = time.process_time()
        for i, record in enumerate(records):
            server._apply(list(record), None, record[1])
            if i % 256 == 255:
                server.journal.commit()
                server._private.clear()
                server._public.clear()
                server._drop.clear()
        server.journal.commit()
        elapsed = time.process_time() - t0
        server.journal.close()
        gc.unfreeze()
        return elapsed


def time_calls(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    t0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t0) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    stream = make_stream(args.messages, args.seed)
    batches = events_of(stream)
    n_events = sum(len(b) for b in batches)
    print(f"{args.messages:,} messages, {n_events:,} engine events")
    # Interleaved rounds, best of each: a busy machine slows both alike.
    plain = kept = float("inf")
    for _ in range(5):
        plain = min(plain, time_reporter(Reporter(), batches))
        kept = min(kept, time_reporter(Reporter(resend_window=256, tape_window=10_000), batches))
    print(f"translate_raw, plain Reporter():        {args.messages / plain:>12,.0f} msg/s")
    print(f"translate_raw, sequenced + windows:     {args.messages / kept:>12,.0f} msg/s "
          f"(time {(kept / plain - 1) * 100:+.1f}%)")  # fmt: skip
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    records = journal_records(stream)
    off = on = float("inf")
    for _ in range(3):
        off = min(off, time_process_path(records, False))
        on = min(on, time_process_path(records, True))
    print(f"exchange request path, plain reporter:  {args.messages / off:>12,.0f} msg/s")
    print(f"exchange request path, remembering:     {args.messages / on:>12,.0f} msg/s "
          f"(time {(on / off - 1) * 100:+.1f}%)")  # fmt: skip

    n = 50_000
    fields = dict(client_order_id="c1", symbol="AGR", side="buy", order_type="limit")
    ints = time_calls(lambda: NewOrder(**fields, qty=5, price=10_000), n)
    nps = time_calls(lambda: NewOrder(**fields, qty=np.int64(5), price=np.int64(10_000)), n)
    frame = encode(NewOrder(**fields, qty=5, price=10_000))
    dec = time_calls(lambda: decode(frame), n)
    print(f"NewOrder(...) with ints:                {ints * 1e6:>9.2f} us")
    print(f"NewOrder(...) with numpy ints:          {nps * 1e6:>9.2f} us")
    print(f"decode(NewOrder frame) (gateway path):  {dec * 1e6:>9.2f} us")


if __name__ == "__main__":
    main()
