"""The market-health verdict: does a long run stay alive? PASS or FAIL per target (pure).

The facts verdict (`agents.analysis.verdict`) asks whether prices look like a market's; this
one asks whether the market keeps working over hours: trading does not die out, the informed
and the trend-following agents are still trading at the end, the price still follows the fair
value, and the market makers are not drained (they keep a bid and an ask resting). The figures
(`MarketHealth`) are measured by whoever runs the market (`bench/realism.py --part market`);
`health_verdict` holds them to `HealthBands`, so the targets are stated in one place.

Targets and their defaults:

* ``activity``: trades per minute in the last hour >= 30% of the first hour's.
* ``participation:<strategy>``: at least half of that strategy's agents (fair-value, trend)
  trade in the last hour.
* ``tracking``: the median |price - F| / F over the last hour's 5 s bars <= 2%.
* ``quotes:<agent>``: each market maker has a bid and an ask resting at >= 99% of the
  once-a-minute checks.

A figure that could not be measured (NaN: no trades, no F) FAILS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["HealthBands", "HealthResult", "HealthVerdict", "MarketHealth", "health_verdict"]


@dataclass(frozen=True)
class HealthBands:
    """What a healthy long run must show (the module docstring's defaults)."""

    min_activity_ratio: float = 0.3
    min_participation: float = 0.5
    max_tracking_gap: float = 0.02
    min_two_sided: float = 0.99

    def __post_init__(self) -> None:
        for name in ("min_activity_ratio", "min_participation", "min_two_sided"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a share in [0, 1], got {getattr(self, name)}")
        if self.max_tracking_gap < 0:
            raise ValueError(f"max_tracking_gap must be >= 0, got {self.max_tracking_gap}")


@dataclass(frozen=True)
class MarketHealth:
    """The figures of one run: trades per minute in the first and last hour, the share of each
    strategy's agents trading in the last hour, the median |P - F| / F of the last hour, and
    each market maker's share of checks with both sides quoted."""

    per_min_first: float
    per_min_last: float
    participation: Mapping[str, float] = field(default_factory=dict)
    tracking_gap: float = math.nan
    two_sided: Mapping[str, float] = field(default_factory=dict)

    @property
    def activity_ratio(self) -> float:
        if not self.per_min_first or not math.isfinite(self.per_min_first):
            return math.nan
        return self.per_min_last / self.per_min_first


@dataclass(frozen=True)
class HealthResult:
    """One target: the measured `value` (None if it could not be measured), the band in words,
    whether it `passed`, and the figure as a person reads it (`shown`)."""

    key: str
    title: str
    value: float | None
    band: str
    passed: bool
    shown: str

    @property
    def mark(self) -> str:
        return "PASS" if self.passed else "FAIL"


@dataclass(frozen=True)
class HealthVerdict:
    results: tuple[HealthResult, ...]
    bands: HealthBands

    @property
    def all_passed(self) -> bool:
        return all(r.passed for r in self.results)

    def result(self, key: str) -> HealthResult:
        for r in self.results:
            if r.key == key:
                return r
        raise KeyError(f"no target {key!r}: one of {[r.key for r in self.results]}")


def _judge(key: str, title: str, value: float, band: str, ok: bool, shown: str) -> HealthResult:
    if not math.isfinite(value):
        return HealthResult(key, title, None, band, False, "n/a")
    return HealthResult(key, title, float(value), band, bool(ok), shown)


def health_verdict(h: MarketHealth, bands: HealthBands | None = None) -> HealthVerdict:
    """Every target of `h`, held to `bands` (default: `HealthBands()`)."""
    b = bands or HealthBands()
    ratio = h.activity_ratio
    results = [_judge(
        "activity", "trades/min last h / first h", ratio, f">= {b.min_activity_ratio:.2f}",
        ratio >= b.min_activity_ratio,
        f"{ratio:.2f} ({h.per_min_last:.0f}/{h.per_min_first:.0f})",
    )]  # fmt: skip
    for kind, share in h.participation.items():
        results.append(_judge(
            f"participation:{kind}", f"{kind} agents trading last h", share,
            f">= {b.min_participation:.0%}", share >= b.min_participation, f"{share:.0%}",
        ))  # fmt: skip
    gap = h.tracking_gap
    results.append(_judge(
        "tracking", "median |P-F|/F last h", gap, f"<= {b.max_tracking_gap:.0%}",
        gap <= b.max_tracking_gap, f"{gap:.2%}",
    ))  # fmt: skip
    for name, share in h.two_sided.items():
        results.append(_judge(
            f"quotes:{name}", f"{name} quotes both sides", share, f">= {b.min_two_sided:.0%}",
            share >= b.min_two_sided, f"{share:.0%}",
        ))  # fmt: skip
    return HealthVerdict(tuple(results), b)
