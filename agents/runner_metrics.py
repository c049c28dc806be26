"""An agent runner's Prometheus metrics (``AGORA_METRICS_PORT``): read from the runner at
scrape time, so the agents' hot path counts nothing more than it already did."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

__all__ = ["RunnerMetrics"]


class RunnerMetrics:
    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.registry.register(self)

    def serve(self, port: int, host: str) -> str:
        start_http_server(port, host, registry=self.registry)
        return f"http://{host}:{port}/metrics"

    def collect(self) -> Iterator[Any]:
        r = self.runner
        contexts = list(r.contexts)
        yield GaugeMetricFamily("agora_agents_agents", "agents this runner hosts",
                                value=len(contexts))  # fmt: skip
        yield CounterMetricFamily("agora_agents_orders", "orders sent (new and replace)",
                                  value=sum(c.orders_sent for c in contexts))  # fmt: skip
        yield CounterMetricFamily("agora_agents_fills", "fills received", value=r.fills)
        yield CounterMetricFamily("agora_agents_decisions", "agent handler calls",
                                  value=sum(c.calls for c in contexts))  # fmt: skip
        rejects = CounterMetricFamily("agora_agents_rejects", "orders refused, by reason",
                                      labels=["reason"])  # fmt: skip
        for reason, n in list(r.reject_reasons.items()):
            rejects.add_metric([reason], n)
        yield rejects
        yield CounterMetricFamily("agora_agents_errors", "handler errors",
                                  value=sum(c.errors for c in contexts))  # fmt: skip
