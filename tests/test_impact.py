"""agents.impact against values computed by hand, and the properties the models promise."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.impact import AlmgrenChriss, SquareRoot, decay


def test_almgren_chriss_by_hand() -> None:
    m = AlmgrenChriss(eta=0.1, gamma=0.02, decay_rate=0.5)
    # η·sigma·|v|/√T = 0.1·2·100/√4 = 10; gamma·sigma·v = 0.02·2·100 = 4; V·(10 + 4/2) = 1200
    assert m.temporary(100, 2.0, 4.0) == pytest.approx(10.0)
    assert m.permanent(100, 2.0) == pytest.approx(4.0)
    assert m.cost(100, 2.0, 4.0) == pytest.approx(1200.0)
    # a sell moves the price down and costs the same
    assert m.temporary(-100, 2.0, 4.0) == pytest.approx(-10.0)
    assert m.permanent(-100, 2.0) == pytest.approx(-4.0)
    assert m.cost(-100, 2.0, 4.0) == pytest.approx(1200.0)
    # I₀·e^(-λt): 10·e^(-0.5·2) = 3.6788
    assert decay(10.0, m.decay_rate, 2.0) == pytest.approx(10.0 * math.exp(-1.0))
    assert decay(10.0, 0.5, 0.0) == 10.0
    with pytest.raises(ValueError):
        m.temporary(1, 1.0, 0.0)


def test_square_root_by_hand() -> None:
    m = SquareRoot(beta=0.5, daily_volume=10_000, permanent_fraction=0.25)
    # β·sigma·√(|v|/V) = 0.5·2·√(400/10000) = 0.2
    assert m.impact(400, 2.0) == pytest.approx(0.2)
    assert m.impact(-400, 2.0) == pytest.approx(-0.2)
    assert m.permanent(400, 2.0) == pytest.approx(0.05)
    assert m.temporary(400, 2.0) == pytest.approx(0.15)
    assert m.cost(400, 2.0) == pytest.approx(80.0)  # |v|·|I|
    assert m.cost(-400, 2.0) == pytest.approx(80.0)
    # four times the size, twice the impact
    assert m.impact(1600, 2.0) == pytest.approx(2 * m.impact(400, 2.0))


@given(v=st.integers(-10_000, 10_000), sigma=st.floats(0.0, 20.0), t=st.floats(0.01, 1e4))
def test_costs_are_never_negative_and_impacts_follow_the_trade(v: int, sigma: float,
                                                                t: float) -> None:  # fmt: skip
    for m in (AlmgrenChriss(0.05, 0.01), SquareRoot(0.5, 1e5)):
        assert m.cost(v, sigma, t) >= 0
        assert m.permanent(v, sigma, t) * v >= 0
        assert m.temporary(v, sigma, t) * v >= 0
        assert m.cost(v, sigma, t) == pytest.approx(m.cost(-v, sigma, t))
