"""Start Agora's processes as children: free loopback ports, wait until ready, stop cleanly.

Used by the tests, the benchmarks and (later) `agora up`.

Readiness is the process's own ``AGORA_READY {json}`` line on stdout (it prints it after every
socket is bound), never a sleep. Binding ``tcp://127.0.0.1:*`` lets the OS pick free ports; the
ready line says which. A restart after a crash can pin the ports it had before.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 60.0  # a safety net for a broken start, not a synchronisation

__all__ = [
    "Market",
    "Proc",
    "client_env",
    "free_endpoint",
    "start_clearing",
    "start_exchange",
    "start_fundamental",
    "start_market",
    "start_recorder",
]


class Proc:
    """A child process; `ready` is its ``AGORA_READY`` JSON.

    Its pipes are always drained (the ready line by the starter, the rest by reader threads),
    so a chatty child can never block on a full pipe. With `log_path`, stderr (the logs) goes
    to that file instead. `output` holds the stdout after the ready line (e.g. a runner's
    ``AGORA_RESULT``), complete once the process has stopped.
    """

    def __init__(
        self, args: list[str], env: dict[str, str], log_path: Path | None = None,
        wait: bool = True, **popen: Any,
    ) -> None:  # fmt: skip
        self.args = args
        self.env = env
        self.log_path = log_path
        self._log = None
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(log_path, "a")  # noqa: SIM115 (closed in stop/kill)
        self.popen = subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log if self._log is not None else subprocess.PIPE,
            **popen,
        )
        self._out = bytearray()  # stdout after the ready line
        self._err = bytearray()
        self._err_done = False
        self._err_seen = 0  # how far `wait_log` has looked
        self._cond = threading.Condition()
        self._readers: list[threading.Thread] = []
        if self.popen.stderr is not None:
            self._drain(self.popen.stderr.fileno(), self._err)
        self.ready: dict[str, Any] = self._wait_ready() if wait else {}

    def _drain(self, fd: int, into: bytearray) -> None:
        def read() -> None:
            while chunk := os.read(fd, 65536):
                with self._cond:
                    into.extend(chunk)
                    self._cond.notify_all()
            with self._cond:
                if into is self._err:
                    self._err_done = True
                self._cond.notify_all()

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        self._readers.append(thread)

    def _wait_ready(self) -> dict[str, Any]:
        """Read stdout (raw, so no line waits unseen in a buffer) up to the ready line."""
        assert self.popen.stdout is not None
        fd = self.popen.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
            if not ready:
                break
            chunk = os.read(fd, 65536)
            if not chunk:  # the process exited before it was ready
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.startswith(b"AGORA_READY "):
                    self._out.extend(buf)
                    self._drain(fd, self._out)
                    return json.loads(line[len(b"AGORA_READY ") :])
        err = self.stop()
        raise RuntimeError(f"{self.args} did not become ready:\n{err[-4000:]}")

    def wait_log(self, pred: Callable[[str], bool], timeout: float = READY_TIMEOUT_S) -> str:
        """The next stderr line (of those not yet looked at) for which `pred` is true.

        Event-driven: it wakes when the reader thread adds output. Raises `LookupError` if the
        stream ends (or `timeout`, a safety net, passes) first. Only for stderr piped here.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                end = self._err.rfind(b"\n") + 1
                if end > self._err_seen:
                    lines = self._err[self._err_seen : end].decode(errors="replace")
                    for line in lines.splitlines():
                        self._err_seen += len(line.encode()) + 1
                        if pred(line):
                            return line
                    self._err_seen = end
                left = deadline - time.monotonic()
                if self._err_done or left <= 0:
                    raise LookupError("no such log line")
                self._cond.wait(left)

    def stderr_text(self, timeout: float = 10.0) -> str:
        """Everything on stderr so far; once the process has exited, all of it."""
        with self._cond:
            if self.popen.poll() is not None:
                self._cond.wait_for(lambda: self._err_done, timeout)
            return self._err.decode(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> str:
        """Signal the process, wait for it (kill -9 after `timeout`), return its stderr."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        return self._finish()

    def kill(self) -> None:
        """kill -9: no goodbye, no flush."""
        self.popen.kill()
        self.popen.wait()
        self._finish()

    def _finish(self) -> str:
        for thread in self._readers:
            thread.join(timeout=5)
        for pipe in (self.popen.stdout, self.popen.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self.output = self._out.decode(errors="replace")
        if self._log is None:
            return self._err.decode(errors="replace")
        self._log.close()
        self._log = None
        assert self.log_path is not None
        return self.log_path.read_text()[-20_000:]

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


def free_endpoint(host: str = "127.0.0.1") -> str:
    """A loopback TCP endpoint whose port is free now, chosen outside the ephemeral range.

    Two processes that must know each other's address before either is up (the exchange's
    gate talks to clearing, clearing reads the exchange's trade stream) cannot both bind ``*``;
    the launcher picks their ports up front instead. Not from the kernel's ephemeral range:
    between the pick and the bind, any outgoing connection (clearing connecting to the
    exchange, agents logging on) could be given that very port as its source.
    """
    low, high = _ephemeral_range()
    candidates = [p for p in range(20_000, 65_000) if not low <= p <= high]
    rnd = random.Random()
    for _ in range(200):
        port = rnd.choice(candidates)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        return f"tcp://{host}:{port}"
    raise RuntimeError("no free port found")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999  # Linux's default


_CLIENT_VARS = {
    "gateway": "AGORA_GATEWAY", "feed": "AGORA_FEED", "snapshot": "AGORA_SNAPSHOT",
    "clearing": "AGORA_CLEARING", "fundamental": "AGORA_FUNDAMENTAL",
}  # fmt: skip


def client_env(endpoints: dict[str, str], admin_token: str = "") -> dict[str, str]:
    """This process's environment plus what an Agora client needs to reach these endpoints
    (``AGORA_GATEWAY``, ``AGORA_FEED``, ... and the admin token for opening accounts)."""
    env = dict(os.environ)
    env.update({var: endpoints[key] for key, var in _CLIENT_VARS.items() if key in endpoints})
    if admin_token:
        env["AGORA_ADMIN_TOKEN"] = admin_token
    return env


def start_clearing(
    data_dir: Path, exchange: dict[str, str], api: str = "tcp://127.0.0.1:*", **env: str
) -> Proc:
    """`python -m clearing` reading `exchange`'s drop copy and replay (its ready endpoints)."""
    full = dict(os.environ)
    full.update({
        "AGORA_CLEARING_API_BIND": api,
        "AGORA_CLEARING_EXCHANGE_DROPCOPY": exchange["dropcopy"],
        "AGORA_CLEARING_EXCHANGE_SNAPSHOT": exchange["snapshot"],
        "AGORA_CLEARING_DATA_DIR": str(data_dir),
        "AGORA_CLEARING_LOG_JSON": "1",
    })  # fmt: skip
    full.update(env)
    return Proc([sys.executable, "-m", "clearing"], full)


@dataclass
class Market:
    """An exchange with its clearing house, wired to each other (`start_market`)."""

    exchange: Proc
    clearing: Proc
    admin_token: str
    endpoints: dict[str, str]
    link_secret: str = ""  # what the exchange's risk link proves to clearing
    data_dir: Path | None = None

    def restart_exchange(self, **env: str) -> Proc:
        """A new exchange on the same ports, journal and clearing house (after the old one
        stopped or was killed); it becomes `self.exchange`."""
        assert self.data_dir is not None
        ports = {k: self.endpoints[k] for k in ("gateway", "feed", "snapshot", "dropcopy")}
        self.exchange = start_exchange(
            self.data_dir / "exchange", ports, AGORA_EXCHANGE_CLEARING=self.endpoints["clearing"],
            AGORA_EXCHANGE_CLEARING_TOKEN=self.admin_token,
            AGORA_EXCHANGE_CLEARING_LINK_SECRET=self.link_secret, **env,
        )  # fmt: skip
        return self.exchange

    def stop(self) -> None:
        self.exchange.stop()
        self.clearing.stop()


def start_market(
    data_dir: Path,
    exchange_env: dict[str, str] | None = None,
    clearing_env: dict[str, str] | None = None,
    admin_token: str = "",
) -> Market:
    """Exchange + clearing on free loopback ports, sharing one admin token and a link secret
    (the exchange's risk link to clearing)."""
    token = admin_token or secrets.token_urlsafe(24)
    link = secrets.token_urlsafe(24)
    ports = {k: free_endpoint() for k in ("gateway", "feed", "snapshot", "dropcopy")}
    api = free_endpoint()
    clearing = start_clearing(
        data_dir / "clearing", ports, api=api, AGORA_CLEARING_ADMIN_TOKEN=token,
        **{"AGORA_CLEARING_LINK_SECRET": link, **(clearing_env or {})},
    )  # fmt: skip
    try:
        exchange = start_exchange(
            data_dir / "exchange", ports, AGORA_EXCHANGE_CLEARING=api,
            AGORA_EXCHANGE_CLEARING_TOKEN=token,
            **{"AGORA_EXCHANGE_CLEARING_LINK_SECRET": link, **(exchange_env or {})},
        )  # fmt: skip
    except Exception:
        clearing.stop()
        raise
    endpoints = dict(exchange.ready)
    endpoints["clearing"] = clearing.ready["api"]
    return Market(exchange, clearing, token, endpoints, link, data_dir)


def start_recorder(feed: str, out_dir: Path, **env: str) -> Proc:
    """`python -m agents.recorder` on `feed`, writing under `out_dir`.

    Its ready line (``proc.ready["recorder"]``, the absolute output directory) comes once the
    first feed frame arrived, so whatever the exchange publishes afterwards is recorded. Extra
    ``AGORA_RECORDER_*`` variables (e.g. the snapshot endpoint) go in `env`.
    """
    full = dict(os.environ)
    full.update({
        "AGORA_RECORDER_FEED": feed,
        "AGORA_RECORDER_OUT_DIR": str(out_dir),
        "AGORA_RECORDER_LOG_JSON": "1",
    })  # fmt: skip
    full.update(env)
    return Proc([sys.executable, "-m", "agents.recorder"], full)
