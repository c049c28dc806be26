"""Start Agora's processes as children: free loopback ports, wait until ready, stop cleanly.

Used by the tests, the benchmarks and (later) `agora up`.

Readiness is the process's own ``AGORA_READY {json}`` line on stdout (it prints it after every
socket is bound), never a sleep. Binding ``tcp://127.0.0.1:*`` lets the OS pick free ports; the
ready line says which. A restart after a crash can pin the ports it had before.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 60.0  # a safety net for a broken start, not a synchronisation

__all__ = ["Proc", "start_exchange", "start_fundamental"]


class Proc:
    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args = args
        self.env = env
        self.popen = subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.ready: dict[str, Any] = self._wait_ready()

    def _wait_ready(self) -> dict[str, Any]:
        assert self.popen.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.popen.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not sel.select(timeout=deadline - time.monotonic()):
                break
            line = self.popen.stdout.readline()
            if not line:  # the process exited before it was ready
                break
            if line.startswith("AGORA_READY "):
                return json.loads(line[len("AGORA_READY ") :])
        err = self.stop()
        raise RuntimeError(f"{self.args} did not become ready:\n{err[-4000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> str:
        """Signal the process, wait for it, return its stderr."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            _out, err = self.popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            _out, err = self.popen.communicate()
        return err or ""

    def kill(self) -> None:
        """kill -9: no goodbye, no flush."""
        self.popen.kill()
        self.popen.communicate()

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()


def start_exchange(data_dir: Path, ports: dict[str, str] | None = None, **env: str) -> Proc:
    """`python -m exchange` on free ports (or the given endpoints), journal under `data_dir`."""
    ports = ports or {}
    full = dict(os.environ)
    full.update({
        "AGORA_EXCHANGE_GATEWAY_BIND": ports.get("gateway", "tcp://127.0.0.1:*"),
        "AGORA_EXCHANGE_FEED_BIND": ports.get("feed", "tcp://127.0.0.1:*"),
        "AGORA_EXCHANGE_SNAPSHOT_BIND": ports.get("snapshot", "tcp://127.0.0.1:*"),
        "AGORA_EXCHANGE_DROPCOPY_BIND": ports.get("dropcopy", "tcp://127.0.0.1:*"),
        "AGORA_EXCHANGE_DATA_DIR": str(data_dir),
        "AGORA_EXCHANGE_LOG_JSON": "1",
    })  # fmt: skip
    full.update(env)
    return Proc([sys.executable, "-m", "exchange"], full)


def start_fundamental(bind: str = "tcp://127.0.0.1:*", **env: str) -> Proc:
    """`python -m agents.fundamental` on a free port (or `bind`); its endpoint is
    ``proc.ready["fundamental"]``. Extra ``AGORA_FUNDAMENTAL_*`` variables go in `env`."""
    full = dict(os.environ)
    full.update({
        "AGORA_FUNDAMENTAL_BIND": bind,
        "AGORA_FUNDAMENTAL_LOG_JSON": "1",
    })  # fmt: skip
    full.update(env)
    return Proc([sys.executable, "-m", "agents.fundamental"], full)
