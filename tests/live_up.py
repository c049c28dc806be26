"""A small whole market started the way a person starts one (`agora up`), for the dashboard's
browser tests and the monitoring tests: real processes on loopback, free ports.

`LiveUp` starts `agora up --json --free-ports` (plus any flags), waits for its ready event
(never a sleep) and stops it as Ctrl-C does.
"""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

WAIT_S = 180.0  # a safety net against a hang, never a synchronisation

MARKET = """
name = "dashboard-test"
seed = 7
fundamental_interval_s = 0.25

[[symbols]]
symbol = "AGR"
reference_price = 10000
band_bps = 1000

[clearing]
starting_cash = 50_000_000
starting_positions = { AGR = 2000 }

[[populations]]
name = "zi"
strategy = "zi"
count = 8
params = { mean_interval_ns = 150_000_000 }

[[populations]]
name = "fv"
strategy = "fair_value"
count = 4
params = { rate_per_s = 2.0 }
"""
AGENTS = {f"zi-{i}" for i in range(8)} | {f"fv-{i}" for i in range(4)}


class LiveUp:
    def __init__(self, tmp: Path, *flags: str) -> None:
        config = tmp / "market.toml"
        config.write_text(MARKET)
        self.data_dir = tmp / "var"
        self.err_path = tmp / "up.err"
        self._err = open(self.err_path, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", "up", str(config), "--data-dir",
             str(self.data_dir), "--free-ports", "--json", *flags],
            stdout=subprocess.PIPE, stderr=self._err, text=True, cwd=tmp,
        )  # fmt: skip
        try:
            self.ready = self._ready()
        except BaseException:
            self.stop()
            raise
        self.admin_token = (self.data_dir / "admin.token").read_text().strip()

    def _ready(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + WAIT_S
        try:
            while (left := deadline - time.monotonic()) > 0 and sel.select(left):
                line = self.proc.stdout.readline()
                if not line:
                    break
                event = json.loads(line) if line.startswith("{") else {}
                if event.get("event") == "ready":
                    return event
        finally:
            sel.close()
        raise AssertionError(f"agora up ended before it was ready:\n{self.err_path.read_text()}")

    def logs(self) -> str:
        """Everything the market's services and `agora up` wrote to logs and the terminal."""
        parts = [p.read_text(errors="replace") for p in (self.data_dir / "logs").glob("*.log")]
        return "\n".join([*parts, self.err_path.read_text(errors="replace")])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # as Ctrl-C: agents first, then the rest
            try:
                self.proc.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._err.close()
