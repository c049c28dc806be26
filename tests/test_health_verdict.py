"""The market-health verdict (`agents.analysis.health`): each target passes exactly when its
figure is inside its band, an unmeasurable figure fails, and the benchmark prints its rows."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.analysis.health import HealthBands, MarketHealth, health_verdict

shares = st.floats(0.0, 1.0)


@given(first=st.floats(0.1, 1e4), last=st.floats(0.0, 1e4), fv=shares, trend=shares,
       gap=st.floats(0.0, 0.2), mm=st.lists(shares, max_size=3))
def test_every_target_passes_exactly_inside_its_band(first, last, fv, trend, gap, mm) -> None:
    h = MarketHealth(first, last, {"fair_value": fv, "trend": trend}, gap,
                     {f"mm-{i}": s for i, s in enumerate(mm)})  # fmt: skip
    v = health_verdict(h)
    assert v.result("activity").passed == (last / first >= 0.3)
    assert v.result("participation:fair_value").passed == (fv >= 0.5)
    assert v.result("participation:trend").passed == (trend >= 0.5)
    assert v.result("tracking").passed == (gap <= 0.02)
    for i, s in enumerate(mm):
        assert v.result(f"quotes:mm-{i}").passed == (s >= 0.99)
    assert v.all_passed == all(r.passed for r in v.results)
    assert len(v.results) == 4 + len(mm)


def test_a_figure_that_cannot_be_measured_fails() -> None:
    v = health_verdict(MarketHealth(0.0, 0.0, tracking_gap=math.nan))
    assert not v.result("activity").passed and v.result("activity").value is None
    assert not v.result("tracking").passed and v.result("tracking").shown == "n/a"
    assert not v.all_passed


def test_bands_are_checked_and_can_be_changed_in_one_place() -> None:
    with pytest.raises(ValueError, match="share"):
        HealthBands(min_two_sided=1.5)
    h = MarketHealth(100.0, 20.0, tracking_gap=0.03)
    assert not health_verdict(h).all_passed
    assert health_verdict(h, HealthBands(min_activity_ratio=0.2, max_tracking_gap=0.05)).all_passed


def test_the_realism_benchmark_prints_the_typed_verdicts_rows() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    try:
        from realism import health_verdicts
    finally:
        sys.path.pop(0)
    rows = health_verdicts({"per_min_first": 100.0, "per_min_last": 40.0,
                            "share": {"fair_value": 0.8, "trend": 0.25}, "gap": 0.011,
                            "mm_both": {"mm-0": 1.0}})  # fmt: skip
    assert rows == [
        ("trades/min last h / first h", "0.40 (40/100)", ">= 0.30", True),
        ("fair_value agents trading last h", "80%", ">= 50%", True),
        ("trend agents trading last h", "25%", ">= 50%", False),
        ("median |P-F|/F last h", "1.10%", "<= 2%", True),
        ("mm-0 quotes both sides", "100%", ">= 99%", True),
    ]
