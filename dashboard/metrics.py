"""The dashboard's own Prometheus metrics (``AGORA_DASHBOARD_METRICS_PORT``).

Counted per feed frame, not per message (one ``inc(n)`` per frame), so measuring the
dashboard costs next to nothing at 10,000 messages a second.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

__all__ = ["DashboardMetrics"]


class DashboardMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        ProcessCollector(registry=r)
        self.feed_messages = Counter(
            "agora_dashboard_feed_messages", "feed messages received", registry=r
        )
        self.bad_frames = Counter(
            "agora_dashboard_bad_frames", "feed frames that could not be read", registry=r
        )
        self.feed_lag = Histogram(
            "agora_dashboard_feed_lag_seconds",
            "time from the exchange stamping a feed frame's last message to its arrival here",
            buckets=(1e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1.0, 5.0),
            registry=r,
        )
        self.updates = Counter(
            "agora_dashboard_updates", "conflated updates sent to browsers", registry=r
        )
        self.browsers = Gauge("agora_dashboard_browsers", "open browser connections", registry=r)
        self.actions = Counter(
            "agora_dashboard_actions", "operator actions asked for, by outcome",
            ["outcome"], registry=r,
        )  # fmt: skip

        self.feed_total = 0  # the same two figures as plain numbers, for the services page
        self.browser_count = 0

    def took(self, n: int) -> None:
        self.feed_messages.inc(n)
        self.feed_total += n

    def set_browsers(self, n: int) -> None:
        self.browsers.set(n)
        self.browser_count = n
