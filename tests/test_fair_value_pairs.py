"""The paired histories of the shift form hold exactly what two separate histories would: a
close and its mood-free value recorded together (`BarPair`, `TimedPair`) read back, window for
window and instant for instant, as a `BarHistory` or `TimedHistory` of each series alone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.strategies.fair_value import BarHistory, BarPair, TimedHistory, TimedPair

# (step forward, first value, second value): steps of 0 are same-bar / same-instant samples
_samples = st.lists(
    st.tuples(st.integers(0, 7), st.floats(-5, 5), st.floats(-5, 5)), min_size=1, max_size=200
)


@given(_samples, st.integers(1, 12))
def test_a_bar_pair_reads_as_two_bar_histories(samples: list, maxlen: int) -> None:
    pair, first, second = BarPair(maxlen), BarHistory(maxlen), BarHistory(maxlen)
    bar = 0
    for step, a, b in samples:
        bar += step
        pair.record_pair(bar, a, b)
        first.record(bar, a)
        second.record(bar, b)
        assert pair.values == first.values and pair.seconds == second.values
        assert pair.last_bar == first.last_bar == pair.second.last_bar
        assert len(pair.second) == len(second)
        for back in range(0, 3 * maxlen + 2, 3):
            for n in (1, 2, maxlen + 3):
                assert pair.window(bar - back, n) == first.window(bar - back, n)
                assert pair.second.window(bar - back, n) == second.window(bar - back, n)


@given(_samples, st.integers(1, 12))
def test_a_timed_pair_reads_as_two_timed_histories(samples: list, maxlen: int) -> None:
    pair, first, second = TimedPair(maxlen), TimedHistory(maxlen), TimedHistory(maxlen)
    assert pair.second(0) is None and pair.at(0) is None
    ts = 100
    for step, a, b in samples:
        ts += step
        pair.record_pair(ts, a, b)
        first.record(ts, a)
        second.record(ts, b)
        for back in range(-1, 4 * maxlen + 8):
            assert pair.at(ts - back) == first.at(ts - back)
            assert pair.second(ts - back) == second.at(ts - back)


def test_a_pair_records_both_series_or_none() -> None:
    with pytest.raises(TypeError, match="record_pair"):
        BarPair(4).record(0, 1.0)
    with pytest.raises(TypeError, match="record_pair"):
        TimedPair(4).record(0, 1.0)
