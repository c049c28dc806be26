"""The recorder process: the exchange's market-data feed into Parquet files.

A thin shell (ARCHITECTURE.md): a SUB socket, a clock, a logger and, for book snapshots, a
DEALER to the snapshot service; what is written, and how files rotate, is `ParquetSink`'s.

* Subscribes with an empty prefix (every symbol and channel, plus heartbeats and goodbye), or
  to the configured symbols' topics.
* Ready means *recording*: ``AGORA_READY {"recorder": out_dir}`` is printed once the first frame
  (at worst the exchange's heartbeat, every ``heartbeat_s``) has arrived. PUB/SUB subscriptions
  propagate asynchronously (the "slow joiner"), so a line printed right after ``connect`` would
  promise nothing; a received frame proves the publisher applies our subscription, and since a
  PUB socket delivers to a subscriber in order, everything published after that frame reaches
  us (up to the high-water mark, which shows up as a gap).
* Sequence gaps per stream are counted (`GapTracker`) and logged; a gap on a ``book`` stream,
  and the first sight of a symbol, fetch a full book snapshot (channel ``snapshots``) so the
  recorded deltas can always be replayed onto a known book.
* Every ``flush_s`` seconds (default 5) what arrived is written as finished files, so the
  recording can be read while the market runs; files are still named by rotation period.
* SIGINT/SIGTERM: stop receiving, drain what is already queued in the socket, write every
  buffer, exit 0. The exchange's goodbye also writes every buffer (and, with
  ``exit_on_goodbye``, stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import structlog
import zmq
import zmq.asyncio
from prometheus_client import (
    CollectorRegistry,
    Histogram,
    Metric,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily

from agents.recorder.settings import RecorderSettings
from agents.recorder.sink import MESSAGE_TYPES, GapTracker, ParquetSink
from exchange.protocol import BookSnapshot, ProtocolError, SnapshotRequest, decode_batch, encode

__all__ = ["RecorderServer"]


class _Metrics:
    """Prometheus figures: counts read from the server at scrape time, and the feed's lag
    (exchange stamp to arrival here, one observation per frame)."""

    def __init__(self, server: RecorderServer) -> None:
        self.server = server
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.feed_lag = Histogram(
            "agora_recorder_feed_lag_seconds",
            "time from the exchange stamping a feed frame's last message to its arrival here",
            buckets=(1e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1.0, 5.0),
            registry=self.registry,
        )
        self.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        s = self.server
        for name, text, value in (
            ("frames", "feed frames received", s.frames),
            ("messages", "feed messages recorded", s.messages),
            ("rows", "rows written to Parquet, by channel", s.sink.rows_written),
            ("files", "Parquet files written", s.sink.files_written),
            ("gaps", "messages lost on the feed (sequence gaps)", s.gaps.total),
        ):
            if isinstance(value, dict):
                family = CounterMetricFamily(f"agora_recorder_{name}", text, labels=["channel"])
                for channel, n in list(value.items()):
                    family.add_metric([channel], n)
                yield family
            else:
                yield CounterMetricFamily(f"agora_recorder_{name}", text, value=value)

log = structlog.get_logger("recorder")

_DRAIN = 10_000  # frames read per wake-up before the loop looks at timers and signals again
_TICK_S = 1.0  # at most this long between rotation checks on a silent feed
_MAX_FRAME = 64 * 1024 * 1024  # a frame this large is not from an exchange; skip it


class RecorderServer:
    """One recorder. `await serve()` runs until `stop()` (or SIGINT/SIGTERM)."""

    def __init__(
        self, settings: RecorderSettings | None = None, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self.settings = s = settings or RecorderSettings()
        self._clock = clock
        self.sink = ParquetSink(s.out_dir, s.rotate_s, s.rotate_rows, s.compression, clock=clock,
                                flush_s=s.flush_s)  # fmt: skip
        self.gaps = GapTracker()
        self.channels = frozenset(s.channels)
        self.symbols = frozenset(s.symbols)
        self.frames = 0
        self.metrics: _Metrics | None = None
        self.messages = 0
        self.skipped = 0  # malformed frames
        self.snapshots = 0
        self.snapshot_failures = 0
        self.ready = False
        self._seen_symbols: set[str] = set()
        self._stopping: asyncio.Event | None = None
        self._snap_queue: asyncio.Queue[str] | None = None
        self._snap_pending: set[str] = set()
        self._unpacker_opts: dict[str, Any] = {"raw": False, "strict_map_key": True}

    def stop(self) -> None:
        """Stop receiving; `serve` then drains the socket, writes every buffer and returns."""
        if self._stopping is not None:
            self._stopping.set()

    # ------------------------------------------------------------------ the loop
    async def serve(self) -> None:
        s = self.settings
        self._stopping = asyncio.Event()
        self._snap_queue = asyncio.Queue()
        ctx = zmq.asyncio.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, s.rcvhwm)
        if s.rcvbuf:
            sub.setsockopt(zmq.RCVBUF, s.rcvbuf)
        sub.setsockopt(zmq.MAXMSGSIZE, _MAX_FRAME)
        for prefix in s.topics():
            sub.setsockopt_string(zmq.SUBSCRIBE, prefix)
        snap_task: asyncio.Task | None = None
        try:
            if s.metrics_port:
                self.metrics = _Metrics(self)
                start_http_server(s.metrics_port, s.metrics_host, registry=self.metrics.registry)
            sub.connect(s.feed)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self.stop)
            if "snapshots" in self.channels:
                snap_task = asyncio.create_task(self._snapshot_worker(ctx), name="snapshots")
            log.info(
                "recorder_subscribed", feed=s.feed, topics=s.topics(), out_dir=str(s.out_dir),
                channels=sorted(self.channels), rotate_s=s.rotate_s, rotate_rows=s.rotate_rows,
                flush_s=s.flush_s,
            )  # fmt: skip
            await self._loop(sub, zmq.Socket.shadow(sub.underlying))
        finally:
            if snap_task is not None:
                snap_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await snap_task
            sub.close()
            ctx.term()
            self._write(self.sink.flush(), "shutdown")
            log.info(
                "recorder_stopped", frames=self.frames, messages=self.messages,
                rows=self.sink.rows_written, files=self.sink.files_written, gaps=self.gaps.total,
                gaps_by_stream=self.gaps.gaps, malformed=self.sink.malformed + self.skipped,
                snapshots=self.snapshots, snapshot_failures=self.snapshot_failures,
            )  # fmt: skip

    async def _loop(self, sub: zmq.asyncio.Socket, raw: zmq.Socket) -> None:
        assert self._stopping is not None
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                wait_s = min(_TICK_S, max(0.0, (self.sink.next_due - self._clock()) / 1e9))
                poll = asyncio.ensure_future(sub.poll(int(wait_s * 1000) + 1, zmq.POLLIN))
                await asyncio.wait({poll, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not poll.done():
                    poll.cancel()  # a poll consumes nothing: cancelling it loses no message
                self._drain(raw)
                now = self._clock()
                why = "rotation" if now >= self.sink.period_end else "flush"
                self._write(self.sink.tick(now), why)
            self._drain(raw, limit=None)  # what already arrived is recorded before we go
        finally:
            stopping.cancel()

    def _drain(self, raw: zmq.Socket, limit: int | None = _DRAIN) -> None:
        """Handle every frame already queued (at most `limit`) without blocking."""
        n = 0
        while limit is None or n < limit:
            try:
                frames = raw.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            n += 1
            self._on_frame(frames)

    # ------------------------------------------------------------------ one frame
    def _on_frame(self, frames: list[bytes]) -> None:
        now = self._clock()
        self.frames += 1
        if not self.ready:
            self.ready = True
            out_dir = str(self.settings.out_dir.resolve())
            log.info("recorder_ready", out_dir=out_dir)
            print("AGORA_READY " + json.dumps({"recorder": out_dir}), flush=True)
        if len(frames) != 2:
            self.skipped += 1
            return
        try:
            topic = frames[0].decode()
            msgs = msgpack.unpackb(frames[1], **self._unpacker_opts)
        except (UnicodeDecodeError, ValueError, msgpack.UnpackException):
            self.skipped += 1
            return
        symbol, sep, channel = topic.partition("|")
        if not sep or not isinstance(msgs, list):
            self.skipped += 1
            return
        if symbol == "*":
            if channel == "goodbye":
                self._on_goodbye()
            return
        if self.symbols and symbol not in self.symbols:
            return
        if self.metrics is not None and msgs and isinstance(msgs[-1], dict):
            stamped = msgs[-1].get("ts")
            if isinstance(stamped, int) and stamped:
                self.metrics.feed_lag.observe(max(0.0, (now - stamped) / 1e9))
        if symbol not in self._seen_symbols:
            self._seen_symbols.add(symbol)
            self._request_snapshot(symbol)
        wanted = MESSAGE_TYPES.get(channel)
        record = channel in self.channels
        for msg in msgs:
            if not isinstance(msg, dict) or not isinstance(seq := msg.get("seq"), int):
                self.skipped += 1
                continue
            kind = msg.get("type")
            lost = self.gaps.observe(topic, seq, heartbeat=kind == "heartbeat")
            if lost:
                log.warning("feed_gap", topic=topic, lost=lost, seq=seq, gaps=self.gaps.total)
                if channel == "book":
                    self._request_snapshot(symbol)
            if kind != wanted:
                continue  # heartbeats, or a message type this recorder does not know
            self.messages += 1
            if record:
                self._write(self.sink.add(channel, msg, now), "rows")

    def _on_goodbye(self) -> None:
        log.info("feed_goodbye", messages=self.messages, gaps=self.gaps.total)
        # The exchange is going: make what we have durable now, not at the next rotation.
        self._write(self.sink.flush(), "goodbye")
        if self.settings.exit_on_goodbye:
            self.stop()

    def _write(self, paths: list[Any], why: str) -> None:
        emit = log.debug if why == "flush" else log.info  # a flush every few seconds is routine
        for path in paths:
            emit("recorder_file", path=str(path), why=why, gaps=self.gaps.total)

    # ------------------------------------------------------------------ snapshots
    def _request_snapshot(self, symbol: str) -> None:
        if self._snap_queue is None or "snapshots" not in self.channels:
            return
        if symbol not in self._snap_pending:
            self._snap_pending.add(symbol)
            self._snap_queue.put_nowait(symbol)

    async def _snapshot_worker(self, ctx: zmq.asyncio.Context) -> None:
        """One snapshot request at a time, off the receive path: the feed is never blocked."""
        assert self._snap_queue is not None
        sock: zmq.asyncio.Socket | None = None
        try:
            while True:
                symbol = await self._snap_queue.get()
                self._snap_pending.discard(symbol)
                if sock is None:
                    sock = ctx.socket(zmq.DEALER)
                    sock.setsockopt(zmq.LINGER, 0)
                    sock.connect(self.settings.snapshot)
                try:
                    snap = await self._fetch(sock, symbol)
                except (TimeoutError, ProtocolError, ValueError) as exc:
                    # A fresh socket never sees the late answer to an abandoned request.
                    sock.close()
                    sock = None
                    self.snapshot_failures += 1
                    log.warning("snapshot_failed", symbol=symbol, error=str(exc))
                    continue
                self.snapshots += 1
                log.info("book_snapshot", symbol=snap.symbol, seq=snap.seq)
                row = {
                    "type": "book_snapshot", "ts": snap.ts, "symbol": snap.symbol,
                    "seq": snap.seq,
                    "bids": [{"price": p, "qty": q, "count": c} for p, q, c in snap.bids],
                    "asks": [{"price": p, "qty": q, "count": c} for p, q, c in snap.asks],
                }  # fmt: skip
                self._write(self.sink.add("snapshots", row, self._clock()), "rows")
        finally:
            if sock is not None:
                sock.close()

    async def _fetch(self, sock: zmq.asyncio.Socket, symbol: str) -> BookSnapshot:
        await sock.send(encode(SnapshotRequest(symbol=symbol)))
        frame = await asyncio.wait_for(sock.recv(), self.settings.snapshot_timeout_s)
        replies = decode_batch(frame)
        reply = replies[0] if len(replies) == 1 else None
        if not isinstance(reply, BookSnapshot):
            raise ValueError(f"unexpected snapshot reply: {replies!r:.200}")
        return reply
