"""The fundamental-value process: the pure `FundamentalModel` behind a ZeroMQ PUB socket.

A thin shell (ARCHITECTURE.md): every `interval_s` of wall time it advances the model by the
same amount of model time and publishes one frame per symbol, ``[symbol utf-8, msgpack map]``
(format in `agents.fundamental.messages`), ``seq`` contiguous per symbol from 1.

Ticks are scheduled on absolute deadlines (start + n·interval) so publication does not drift;
if the loop falls behind (a stalled host), the model is advanced by all the elapsed intervals at
once and one frame per symbol is published, keeping model time equal to wall time.

With ``control_bind`` set, it also answers the admin's stress-scenario requests (fundamental
shocks apply to its model; every scenario is published to the agent runners under a control
topic): `agents.stress.live`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import signal
import time
from collections.abc import Callable, Iterator

import structlog
import zmq
import zmq.asyncio
from prometheus_client import CollectorRegistry, Metric, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from agents.fundamental.messages import Fundamental, encode_fundamental
from agents.fundamental.model import FundamentalModel
from agents.fundamental.settings import FundamentalSettings

__all__ = ["FundamentalServer"]


class _Metrics:
    """Prometheus figures read from the server at scrape time (nothing counted on the way)."""

    def __init__(self, server: FundamentalServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("agora_fundamental_published", "F(t) values published",
                                  value=sum(self.server.seq.values()))  # fmt: skip
        values = GaugeMetricFamily("agora_fundamental_value", "the last F(t) published",
                                   labels=["symbol"])  # fmt: skip
        for symbol, value in list(self.server.last.items()):
            values.add_metric([symbol], value)
        yield values

log = structlog.get_logger("fundamental")


class FundamentalServer:
    """One publisher process. `await serve()` runs until `stop()` (or SIGINT/SIGTERM)."""

    def __init__(
        self,
        settings: FundamentalSettings | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = s = settings or FundamentalSettings()
        self.model = FundamentalModel(s.model_config_seeded())
        self.seq: dict[str, int] = dict.fromkeys(self.model.symbols, 0)
        self.endpoint = ""
        self.control_endpoint = ""
        self._clock = clock
        self._stopping: asyncio.Event | None = None
        self._topics = {sym: sym.encode() for sym in self.model.symbols}
        self.last: dict[str, float] = {}
        if s.interval_s < s.model.step_s:
            log.warning(
                "interval_shorter_than_step", interval_s=s.interval_s, step_s=s.model.step_s,
                note="values change only once a whole model step has elapsed",
            )  # fmt: skip

    def stop(self) -> None:
        """Stop publishing; `serve` then closes the socket and returns."""
        if self._stopping is not None:
            self._stopping.set()

    async def serve(self) -> None:
        s = self.settings
        self._stopping = asyncio.Event()
        ctx = zmq.asyncio.Context()
        pub = ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 1000)
        pub.setsockopt(zmq.SNDHWM, s.pub_hwm)
        control = None
        try:
            pub.bind(s.bind)
            self.endpoint = pub.getsockopt_string(zmq.LAST_ENDPOINT)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self.stop)
            cfg = self.model.config
            log.info(
                "fundamental_ready", endpoint=self.endpoint, symbols=list(self.model.symbols),
                process=cfg.process, interval_s=s.interval_s, step_s=cfg.step_s, seed=cfg.seed,
            )  # fmt: skip
            ready = {"fundamental": self.endpoint}
            if s.metrics_port:
                registry = CollectorRegistry()
                ProcessCollector(registry=registry)
                registry.register(_Metrics(self))
                start_http_server(s.metrics_port, s.metrics_host, registry=registry)
                ready["metrics"] = f"http://{s.metrics_host}:{s.metrics_port}/metrics"
            if s.control_bind:  # stress scenarios from the admin (agents.stress.live)
                from agents.stress.live import serve_control

                control = ctx.socket(zmq.ROUTER)
                control.setsockopt(zmq.LINGER, 0)
                control.bind(s.control_bind)
                ready["control"] = control.getsockopt_string(zmq.LAST_ENDPOINT)
                self.control_endpoint = ready["control"]
                task = asyncio.create_task(serve_control(self, control, pub))
            if control is not None:
                log.info("scenario_control_ready", endpoint=ready["control"])
            print("AGORA_READY " + json.dumps(ready), flush=True)
            try:
                await self._loop(pub)
            finally:
                if control is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    control.close()
        finally:
            pub.close()
            ctx.term()
            log.info("fundamental_stopped", steps=self.model.steps, seq=self.seq)

    async def _loop(self, pub: zmq.asyncio.Socket) -> None:
        assert self._stopping is not None
        interval = self.settings.interval_s
        loop = asyncio.get_running_loop()
        start = loop.time()
        ticks = 0
        while not self._stopping.is_set():
            deadline = start + (ticks + 1) * interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), timeout=max(0.0, deadline - loop.time())
                )
            if self._stopping.is_set():
                break
            due = max(ticks + 1, math.floor((loop.time() - start) / interval))
            if due - ticks > 1:
                log.warning("fundamental_behind", missed_intervals=due - ticks - 1)
            values = self.model.step((due - ticks) * interval)
            ticks = due
            await self._publish(pub, values)

    async def _publish(self, pub: zmq.asyncio.Socket, values: dict[str, float]) -> None:
        ts = self._clock()
        for symbol, value in values.items():
            if not (math.isfinite(value) and value > 0):
                # A Lévy flight with a tiny μ and no `levy_max_step` can overflow a float.
                log.error("fundamental_value_not_finite", symbol=symbol, value=value)
                continue
            self.seq[symbol] += 1
            self.last[symbol] = value
            msg = Fundamental(ts=ts, symbol=symbol, value=value, seq=self.seq[symbol])
            await pub.send_multipart([self._topics[symbol], encode_fundamental(msg)])
