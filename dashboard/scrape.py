"""The services page's figures, read from each service's Prometheus endpoint.

The dashboard reads the same `/metrics` pages Prometheus scrapes (no private channel to any
process): this module parses one page (prometheus-client's own parser) and turns two
successive reads into what a person wants to see: rates per second, rejects by reason, ack
latency percentiles from the histogram's buckets, feed subscribers, journal size, uptime.
Pure: the caller fetches the text and passes the time it was read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Reading", "parse", "summarise"]

Labels = tuple[tuple[str, str], ...]


@dataclass
class Reading:
    """One scrape: every sample by (name, labels), and when it was read (s, monotonic)."""

    at: float
    samples: dict[tuple[str, Labels], float] = field(default_factory=dict)

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def by_label(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for (n, labels), v in self.samples.items():
            if n == name:
                d = dict(labels)
                if label in d:
                    out[d[label]] = out.get(d[label], 0.0) + v
        return out

    def total(self, name: str) -> float | None:
        values = [v for (n, _), v in self.samples.items() if n == name]
        return sum(values) if values else None


def parse(text: str, at: float) -> Reading:
    reading = Reading(at)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            reading.samples[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return reading


def _rate(new: Reading, old: Reading | None, name: str) -> float | None:
    now = new.total(name)
    if now is None or old is None or new.at <= old.at:
        return None
    before = old.total(name)
    if before is None or now < before:  # a restart resets counters
        return None
    return (now - before) / (new.at - old.at)


def _quantile(new: Reading, old: Reading | None, name: str, q: float) -> float | None:
    """The q-quantile (s) of a histogram over the interval between two readings (or since
    the start), by linear interpolation inside the bucket, as Prometheus does."""
    buckets: dict[float, float] = {}
    for (n, labels), v in new.samples.items():
        if n == f"{name}_bucket":
            le = float(dict(labels)["le"])
            prev = old.samples.get((n, labels), 0.0) if old is not None else 0.0
            buckets[le] = v - prev if v >= prev else v
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if math.isinf(le):
                return lower
            inside = count - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, count
    return lower


# name of the counter -> how the page labels its rate
RATES = {
    "agora_exchange_messages_total": "requests/s",
    "agora_exchange_trades_total": "trades/s",
    "agora_clearing_settled_trades_total": "settled/s",
    "agora_clearing_api_requests_total": "API requests/s",
    "agora_fundamental_published_total": "F(t) values/s",
    "agora_recorder_rows_total": "rows recorded/s",
    "agora_agents_orders_total": "orders/s",
    "agora_agents_fills_total": "fills/s",
    "agora_dashboard_feed_messages_total": "feed messages/s",
}
REJECTS = ("agora_exchange_rejects_total", "agora_agents_rejects_total")


def summarise(name: str, new: Reading | None, old: Reading | None, now_s: float,
              error: str = "") -> dict[str, Any]:  # fmt: skip
    """One service's row on the services page (`now_s`: wall-clock seconds, for uptime)."""
    if new is None:
        return {"service": name, "up": False, "error": error or "not read yet"}
    row: dict[str, Any] = {"service": name, "up": True, "rates": {}, "rejects": {}}
    started = new.value("process_start_time_seconds")
    row["uptime_s"] = round(now_s - started) if started else None
    for metric, label in RATES.items():
        rate = _rate(new, old, metric)
        if rate is not None:
            row["rates"][label] = round(rate, 1)
    for metric in REJECTS:
        for reason, n in new.by_label(metric, "reason").items():
            row["rejects"][reason] = int(n)
    for metric, key in (("agora_exchange_batch_seconds", "ack"),
                        ("agora_clearing_settlement_lag_seconds", "settlement_lag"),
                        ("agora_recorder_feed_lag_seconds", "feed_lag"),
                        ("agora_dashboard_feed_lag_seconds", "feed_lag")):  # fmt: skip
        p50, p99 = _quantile(new, old, metric, 0.5), _quantile(new, old, metric, 0.99)
        if p50 is not None:
            row[f"{key}_ms"] = {"p50": round(p50 * 1e3, 3), "p99": round((p99 or 0) * 1e3, 3)}
    for metric, key in (("agora_exchange_feed_subscribers", "feed_subscribers"),
                        ("agora_exchange_journal_bytes", "journal_bytes"),
                        ("agora_exchange_sessions", "sessions"),
                        ("agora_exchange_open_orders", "open_orders"),
                        ("agora_agents_agents", "agents"),
                        ("agora_dashboard_browsers", "browsers")):  # fmt: skip
        v = new.value(metric)
        if v is not None:
            row[key] = int(v)
    return row
