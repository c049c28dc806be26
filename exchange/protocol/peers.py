"""Which TCP connection a ROUTER frame came from: sessions belong to connections, not ids.

A ROUTER knows its peers by routing id, and a peer chooses its own id. A session keyed by
the id alone can be taken over by anyone presenting the same id. So a server binds each
session to the *connection* the logon came on:

* ``ROUTER_HANDOVER`` is off: while the owner is connected, libzmq refuses a second peer
  with the same id;
* every frame carries its connection's file descriptor (``frame.get(zmq.SRCFD)``, received
  with ``copy=False``), and a socket monitor reports ``ACCEPTED`` and ``DISCONNECTED`` with
  the same descriptor. Descriptors are reused by later connections, so each ``ACCEPTED``
  bumps a generation counter per descriptor: ``(fd, generation)`` names one connection for
  the life of the process;
* the monitor is drained after a frame is received and before it is acted on. A connection's
  ``ACCEPTED`` is emitted before any of its messages can arrive, so a frame is always judged
  against its own connection's generation;
* ZMTP heartbeats close peers that stopped answering, which then ends their sessions.

Why not CurveZMQ: it would need a server key distributed to every client and a key per
client; this works with any ZeroMQ client unchanged. CURVE can be layered on later for
encryption.

This module sits in ``exchange.protocol`` because the clearing process uses it too (clearing
may import only the protocol package of the exchange's).
"""

from __future__ import annotations

import contextlib
import itertools
import sys
from collections.abc import Callable

import zmq
from zmq.utils.monitor import recv_monitor_message

__all__ = [
    "AddressLimits",
    "Connection",
    "ConnectionTracker",
    "SrcFdUnavailable",
    "TokenBucket",
    "check_srcfd",
    "harden",
    "require_srcfd",
]

Connection = tuple[int, int]
"""(file descriptor, generation): one TCP connection for the life of the process."""

_EVENTS = zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED
_monitors = itertools.count(1)


class SrcFdUnavailable(RuntimeError):
    """libzmq did not say which connection a frame came from: sessions cannot be bound."""


def harden(sock: zmq.Socket, heartbeat_ivl_s: float, heartbeat_timeout_s: float) -> None:
    """Options every session-bearing ROUTER needs, set before it binds."""
    sock.setsockopt(zmq.ROUTER_HANDOVER, 0)  # a duplicate id while the owner is on: refused
    if heartbeat_ivl_s > 0:
        sock.setsockopt(zmq.HEARTBEAT_IVL, max(1, int(heartbeat_ivl_s * 1000)))
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, max(1, int(heartbeat_timeout_s * 1000)))


def check_srcfd(ctx: zmq.Context | None = None) -> None:
    """Raise `SrcFdUnavailable` unless frames received over TCP carry their descriptor.

    Run once at start: a server that cannot tell connections apart must not run at all.
    """
    own = ctx is None
    context = zmq.Context() if ctx is None else ctx
    router = context.socket(zmq.ROUTER)
    dealer = context.socket(zmq.DEALER)
    try:
        for s in (router, dealer):
            s.setsockopt(zmq.LINGER, 0)
        router.bind("tcp://127.0.0.1:*")
        dealer.connect(router.getsockopt_string(zmq.LAST_ENDPOINT))
        dealer.send(b"probe")
        if not router.poll(5000):
            raise SrcFdUnavailable("a loopback probe frame never arrived")
        frames = router.recv_multipart(copy=False)
        try:
            fd = frames[-1].get(zmq.SRCFD)
        except zmq.ZMQError as exc:
            raise SrcFdUnavailable(f"libzmq {zmq.zmq_version()}: no SRCFD ({exc})") from None
        if not isinstance(fd, int) or fd < 0:
            raise SrcFdUnavailable(f"libzmq {zmq.zmq_version()} gave SRCFD {fd!r}")
    finally:
        router.close(linger=0)
        dealer.close(linger=0)
        if own:
            context.term()


def require_srcfd() -> None:
    """Stop with one clear line (exit status 2) if frames do not name their connection."""
    try:
        check_srcfd()
    except SrcFdUnavailable as exc:
        print(f"error: cannot bind sessions to connections: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


class TokenBucket:
    """A token bucket: `rate` per second, at most `burst` saved up (limits per account or
    per source address, in both processes)."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.last = now

    def refill(self, now: float) -> float:
        tokens = self.tokens + (now - self.last) * self.rate
        self.tokens = tokens = tokens if tokens < self.burst else self.burst
        self.last = now
        return tokens

    def take(self, now: float) -> bool:
        if self.refill(now) < 1.0:
            return False
        self.tokens -= 1.0
        return True


class AddressLimits:
    """A request budget per source address for a ROUTER service anyone may connect to.

    Three answers, the gateway's pattern: within budget a request is served (`SERVE`); over
    it, refused with a reason (`REFUSE`), and each refusal is a debt; a whole burst in debt,
    frames are dropped unread (`DROP`), so a flood costs a few microseconds a frame instead of
    a decode and an answer. An address thus costs at most twice its rate in decoded requests.
    A request that turns out privileged (it proved a secret) is given its token back.
    """

    SERVE, REFUSE, DROP = 0, 1, 2
    __slots__ = ("buckets", "burst", "max_addresses", "rate")

    def __init__(self, rate: float, burst: float, max_addresses: int = 100_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_addresses = max_addresses
        self.buckets: dict[str, TokenBucket] = {}

    def judge(self, address: str, now: float) -> int:
        bucket = self.buckets.get(address)
        if bucket is None:
            if len(self.buckets) >= self.max_addresses:  # forget the ones that refilled
                for key in [k for k, b in self.buckets.items() if b.refill(now) >= b.burst]:
                    del self.buckets[key]
            bucket = self.buckets[address] = TokenBucket(self.rate, self.burst, now)
        tokens = bucket.refill(now) - 1.0
        if tokens >= 0.0:
            bucket.tokens = tokens
            return self.SERVE
        if tokens < -self.burst:
            return self.DROP
        bucket.tokens = tokens
        return self.REFUSE

    def refund(self, address: str) -> None:
        """Give back the token a request took (it was privileged: not counted)."""
        bucket = self.buckets.get(address)
        if bucket is not None:
            bucket.tokens = min(bucket.burst, bucket.tokens + 1.0)


class ConnectionTracker:
    """Connection identity for one ROUTER: generations per descriptor, and who disconnected.

    `drain()` must be called after each receive and before acting on the frame; it returns the
    connections that went away, which the caller ends the sessions of. `on_closed` (if set) is
    called for each as well.
    """

    def __init__(self, sock: zmq.Socket, ctx: zmq.Context) -> None:
        # The monitor PAIR is a plain socket in the server's context (inproc needs the same
        # context), so it can be drained without the event loop.
        address = f"inproc://agora-peers-{next(_monitors)}"
        sock.monitor(address, _EVENTS)
        self._monitor = zmq.Context.shadow(ctx.underlying).socket(zmq.PAIR)
        self._monitor.setsockopt(zmq.LINGER, 0)
        self._monitor.connect(address)
        self._sock = sock
        self.generation: dict[int, int] = {}
        self.live: set[int] = set()
        self._addresses: dict[Connection, str] = {}
        self.accepted = 0
        self.disconnected = 0
        self.on_closed: Callable[[Connection], None] | None = None

    def drain(self) -> list[Connection]:
        """Apply every pending monitor event (non-blocking); returns the closed connections."""
        closed: list[Connection] = []
        monitor = self._monitor
        while monitor.getsockopt(zmq.EVENTS) & zmq.POLLIN:  # cheaper than a raised Again
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.ZMQError:  # nothing pending (Again), or the monitor is being torn down
                break
            kind, fd = event["event"], int(event["value"])
            if kind == zmq.EVENT_ACCEPTED:
                self.generation[fd] = self.generation.get(fd, 0) + 1
                self.live.add(fd)
                self.accepted += 1
            elif kind == zmq.EVENT_DISCONNECTED and fd in self.live:
                self.live.discard(fd)
                conn = (fd, self.generation.get(fd, 0))
                self._addresses.pop(conn, None)
                self.disconnected += 1
                closed.append(conn)
                if self.on_closed is not None:
                    self.on_closed(conn)
        return closed

    def connection(self, frame: zmq.Frame) -> Connection:
        """The connection a frame came on (drain first). A descriptor the monitor has not
        seen accepted (it cannot happen over TCP) gets generation 0, which no session has."""
        fd = frame.get(zmq.SRCFD)
        return (fd, self.generation.get(fd, 0) if fd in self.live else 0)

    def address(self, conn: Connection, frame: zmq.Frame) -> str:
        """The peer's address (for per-address limits), read once per connection."""
        addr = self._addresses.get(conn)
        if addr is None:
            try:
                addr = frame.get("Peer-Address")
            except zmq.ZMQError:
                addr = "?"
            if conn[1]:
                self._addresses[conn] = addr
        return addr

    def close(self) -> None:
        with contextlib.suppress(zmq.ZMQError):
            self._sock.disable_monitor()
        with contextlib.suppress(zmq.ZMQError):
            self._monitor.close(linger=0)
