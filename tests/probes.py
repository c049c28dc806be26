"""Looking at a running process from a test: its Prometheus metrics, a condition to wait for,
a raw DEALER. Shared by the security and service-limit tests."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable

import zmq

from deploy.launch import Proc

WAIT_S = 60.0  # a safety net against a hang, never a synchronisation


def metric(proc: Proc, name: str, labels: str = "") -> float:
    """One sample from the process's /metrics (0 if not there yet)."""
    text = urllib.request.urlopen(proc.ready["metrics"], timeout=10).read().decode()
    key = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    return 0.0


def wait_until(pred: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)  # polling the condition, not waiting for it to happen


def dealer(ctx: zmq.Context, endpoint: str, routing_id: bytes | None = None) -> zmq.Socket:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if routing_id is not None:
        sock.setsockopt(zmq.ROUTING_ID, routing_id)
    sock.connect(endpoint)
    return sock
