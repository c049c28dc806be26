"""``python -m deploy.health [PROBE]``: the container health check shared by every Agora service.

A port that accepts TCP proves little: a process stuck replaying its journal, or wedged in a
loop, still has its listening socket. So the check asks the service a question it answers only
while it serves:

* ``exchange``: a snapshot request on the snapshot service (any answer, a book or a reject,
  means its request loop runs);
* ``clearing``: a balance request on the account API (a reject for the probe's unknown account
  is an answer);
* ``fundamental``: a fair value published on its feed within the timeout;
* ``tcp``: the port accepts a TCP connection (for anything else).

One image runs every service, so the command line or the service's environment says which
probe and where: ``python -m deploy.health exchange tcp://127.0.0.1:5557``, or
``AGORA_HEALTH_PROBE`` (default ``tcp``) and ``AGORA_HEALTH_ENDPOINT``. Compose gives the probe
as an argument and the endpoint in the environment; Kubernetes readiness probes give both.
Several endpoints may be given, comma-separated; all must answer. A bind address
(``tcp://0.0.0.0:5555`` or ``tcp://*:5555``) is checked on loopback, since that is where the
service listens too. No endpoint means nothing to check (a one-off command, an agent runner
or a recorder binds no port): healthy.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence

__all__ = ["ENV_ENDPOINT", "ENV_PROBE", "ENV_TIMEOUT", "PROBES", "check", "main",
           "parse_endpoint"]  # fmt: skip

ENV_ENDPOINT = "AGORA_HEALTH_ENDPOINT"
ENV_PROBE = "AGORA_HEALTH_PROBE"
ENV_TIMEOUT = "AGORA_HEALTH_TIMEOUT_S"
_ANY_HOSTS = {"*", "0.0.0.0", "", "::", "[::]"}


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """``tcp://host:port`` or ``host:port`` -> (host, port); wildcard hosts become loopback."""
    text = endpoint.strip()
    if "://" in text:
        scheme, _, text = text.partition("://")
        if scheme != "tcp":
            raise ValueError(f"only tcp:// endpoints can be checked, not {endpoint!r}")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not a host:port endpoint: {endpoint!r}")
    if host in _ANY_HOSTS:
        host = "127.0.0.1"
    return host.strip("[]"), int(port)


def _tcp(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        pass


def _ask(host: str, port: int, timeout: float, request: bytes) -> bytes:
    """One request on a DEALER socket; the answer's first frame, or TimeoutError."""
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(f"tcp://{host}:{port}")
        sock.send(request)
        if not sock.poll(int(timeout * 1000)):
            raise TimeoutError(f"no answer within {timeout:g} s")
        return sock.recv()
    finally:
        sock.close()
        ctx.term()


def _exchange(host: str, port: int, timeout: float) -> None:
    import msgpack

    from exchange.protocol import SnapshotRequest, encode

    reply = msgpack.unpackb(_ask(host, port, timeout, encode(SnapshotRequest(symbol="HEALTH"))))
    first = reply[0] if isinstance(reply, list) and reply else reply
    if not isinstance(first, dict) or first.get("type") not in ("book_snapshot",
                                                                  "protocol_reject"):
        raise ValueError(f"not an exchange's snapshot service: {str(first)[:80]}")


def _clearing(host: str, port: int, timeout: float) -> None:
    from clearing.protocol import BalanceRequest, decode, encode

    probe = BalanceRequest(account="health-probe", token="health-probe")
    reply = decode(_ask(host, port, timeout, encode(probe)))
    if getattr(reply, "type", None) not in ("clearing_reject", "account_balance"):
        raise ValueError(f"not a clearing house's account API: {reply!r:.80}")


def _fundamental(host: str, port: int, timeout: float) -> None:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    try:
        sock.connect(f"tcp://{host}:{port}")
        if not sock.poll(int(timeout * 1000)):
            raise TimeoutError(f"no fair value published within {timeout:g} s")
    finally:
        sock.close()
        ctx.term()


PROBES: dict[str, Callable[[str, int, float], None]] = {
    "tcp": _tcp, "exchange": _exchange, "clearing": _clearing, "fundamental": _fundamental,
}  # fmt: skip


def check(endpoint: str, timeout: float = 2.0, probe: str = "tcp") -> str | None:
    """None if the service at `endpoint` answers `probe` within `timeout` s, else why not."""
    try:
        host, port = parse_endpoint(endpoint)
        PROBES[probe](host, port, timeout)
        return None
    except Exception as exc:  # any failure is an unhealthy answer, never a crash
        return f"{endpoint}: {type(exc).__name__}: {exc}"


def main(environ: Mapping[str, str] | None = None, argv: Sequence[str] | None = None) -> int:
    """Exit status for Docker: 0 healthy, 1 unhealthy (with the reasons on stderr)."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="python -m deploy.health",
        description="Ask an Agora service whether it is serving (the container health check).",
        epilog=f"The endpoints come from {ENV_ENDPOINT} (comma-separated), the probe from "
        f"{ENV_PROBE} unless given, the timeout from {ENV_TIMEOUT} (seconds, default 2).",
    )
    parser.add_argument("probe", nargs="?", choices=sorted(PROBES),
                        help=f"what to ask (default: {ENV_PROBE}, else tcp)")  # fmt: skip
    parser.add_argument("endpoint", nargs="?",
                        help=f"where, e.g. tcp://127.0.0.1:5557 (default: {ENV_ENDPOINT})")
    args = parser.parse_args([] if argv is None and environ is not None else argv)
    probe = args.probe or env.get(ENV_PROBE, "tcp")
    if probe not in PROBES:
        print(f"{ENV_PROBE}={probe!r}: not one of {', '.join(sorted(PROBES))}", file=sys.stderr)
        return 1
    where = args.endpoint or env.get(ENV_ENDPOINT, "")
    endpoints = [e for e in where.split(",") if e.strip()]
    try:
        timeout = float(env.get(ENV_TIMEOUT, "2"))
    except ValueError:
        print(f"{ENV_TIMEOUT} is not a number", file=sys.stderr)
        return 1
    problems = [p for p in (check(e, timeout, probe) for e in endpoints) if p is not None]
    for problem in problems:
        print(f"unhealthy: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
