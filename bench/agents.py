"""How many agents one runner process sustains, and its decisions per second.

    python bench/agents.py [--counts 100,300,1000] [--seconds 10] [--interval-ms 1000]

For each count, starts a fresh exchange + clearing, then one runner process with that many
zero-intelligence agents, each deciding on a timer every `--interval-ms` (Poisson) and hearing
every book and trade change. Prints decisions/s (handler calls), orders/s, fills, and how late
the agents' timers fired (p50/p99): a runner that keeps up fires its timers within a few
milliseconds; one that does not falls behind and its lateness grows with the run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

try:  # noqa: SIM105  (first: keeps bench/ off the import path, see _path.py)
    import _path  # noqa: F401
except ModuleNotFoundError:  # a multiprocessing child: the parent's path is clean already
    pass

from deploy.launch import client_env, start_market


def run_one(count: int, seconds: float, interval_ms: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        market = start_market(Path(d))
        ep = market.endpoints
        env = client_env(ep, market.admin_token)
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "agents", "run", "zi", "--count", str(count),
                 "--cash", "100000000", "--position", "AGR=100000", "--duration", str(seconds),
                 "--param", f"mean_interval_ns={interval_ms * 1_000_000}", "--json-logs"],
                env=env, capture_output=True, text=True, timeout=seconds + 600,
            )  # fmt: skip
        finally:
            market.stop()
    line = next((x for x in proc.stdout.splitlines() if x.startswith("AGORA_RESULT ")), None)
    if line is None:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(line[len("AGORA_RESULT ") :])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", default="100,300,1000")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--interval-ms", type=int, default=1000)
    args = ap.parse_args()
    print(f"{'agents':>7} {'decisions/s':>12} {'orders/s':>9} {'fills':>7} "
          f"{'timer late p50':>15} {'p99':>9}  mismatches")  # fmt: skip
    for count in (int(c) for c in args.counts.split(",")):
        r = run_one(count, args.seconds, args.interval_ms)
        load = r["load"]
        orders_s = r["orders"] / load["seconds"]
        p50, p99 = load["timer_late_p50_ms"], load["timer_late_p99_ms"]
        print(f"{count:>7} {load['decisions_per_s']:>12,.0f} {orders_s:>9,.0f} "
              f"{r['fills']:>7,} {p50:>12} ms {p99:>6} ms  {len(r['mismatches'])}",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
