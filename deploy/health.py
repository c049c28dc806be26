"""``python -m deploy.health``: the container health check shared by every Agora service.

Each service binds ZeroMQ TCP sockets; the cheapest proof that it is up and serving is that
its port accepts a TCP connection. One image runs every service, so the Dockerfile's
HEALTHCHECK cannot know which port to try: the service's environment says it, in
``AGORA_HEALTH_ENDPOINT`` (compose sets it per service), e.g. ``tcp://127.0.0.1:5555``. Several
endpoints may be given, comma-separated; all must accept. A bind address (``tcp://0.0.0.0:5555``
or ``tcp://*:5555``) is checked on loopback, since that is where the service listens too.

No endpoint means nothing to check (a one-off command, an agent runner or a recorder binds no
port): healthy. This checks reachability only, not the processes' internal state, so it needs
no change to any service.
"""

from __future__ import annotations

import os
import socket
import sys

__all__ = ["ENV_ENDPOINT", "ENV_TIMEOUT", "check", "main", "parse_endpoint"]

ENV_ENDPOINT = "AGORA_HEALTH_ENDPOINT"
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


def check(endpoint: str, timeout: float = 2.0) -> str | None:
    """None if `endpoint` accepts a TCP connection within `timeout` s, else why not."""
    try:
        host, port = parse_endpoint(endpoint)
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except (OSError, ValueError) as exc:
        return f"{endpoint}: {exc}"


def main(environ: dict[str, str] | None = None) -> int:
    """Exit status for Docker: 0 healthy, 1 unhealthy (with the reasons on stderr)."""
    env = os.environ if environ is None else environ
    endpoints = [e for e in env.get(ENV_ENDPOINT, "").split(",") if e.strip()]
    try:
        timeout = float(env.get(ENV_TIMEOUT, "2"))
    except ValueError:
        print(f"{ENV_TIMEOUT} is not a number", file=sys.stderr)
        return 1
    problems = [p for p in (check(e, timeout) for e in endpoints) if p is not None]
    for problem in problems:
        print(f"unhealthy: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
