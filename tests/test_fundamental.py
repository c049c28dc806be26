"""The fundamental-value source: the seeded model's statistics, its validation, the wire format,
and the real `python -m agents.fundamental` process on loopback.

Statistical checks use seeded generators (so they are deterministic) and bounds of several
standard errors derived from the sample size, so a different seed would pass too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import signal
from decimal import Decimal
from typing import Any

import msgpack
import numpy as np
import pytest
from pydantic import ValidationError

from agents.fundamental import (
    Fundamental,
    FundamentalConfig,
    FundamentalFeed,
    FundamentalModel,
    JumpConfig,
    MalformedFundamental,
    decode_fundamental,
    encode_fundamental,
)
from deploy.launch import start_fundamental

N = 100_000  # steps per statistical test


def config(**kw: Any) -> FundamentalConfig:
    base: dict[str, Any] = {"symbols": {"AGR": Decimal("100.00")}, "scale": 0.01, "seed": 7}
    base.update(kw)
    return FundamentalConfig(**base)


def log_returns(model: FundamentalModel, n: int) -> np.ndarray:
    start = np.log(np.array(list(model.values.values())))
    path = np.log(model.simulate(n))
    return np.diff(np.vstack([start, path]), axis=0)


def kurtosis(x: np.ndarray) -> float:
    c = x - x.mean()
    return float(np.mean(c**4) / np.mean(c**2) ** 2)


# ------------------------------------------------------------------------------ determinism


@pytest.mark.parametrize("process", ["gaussian", "levy"])
def test_same_seed_same_path_different_seed_different_path(process: str) -> None:
    kw = {"process": process, "jumps": JumpConfig(rate=0.5, scale=0.02), "mean_reversion": 0.01}
    a, b = FundamentalModel(config(**kw)), FundamentalModel(config(**kw))
    c = FundamentalModel(config(seed=8, **kw))
    path_a = [a.step(1.0) for _ in range(200)]
    assert path_a == [b.step(1.0) for _ in range(200)]
    assert path_a != [c.step(1.0) for _ in range(200)]


def test_path_does_not_depend_on_how_time_is_chopped() -> None:
    cfg = config(
        symbols={"A": "10", "B": "20"}, step_s=0.1, correlation=[[1, 0.3], [0.3, 1]],
        jumps=JumpConfig(rate=1.0, distribution="laplace", scale=0.01), mean_reversion=0.5,
    )  # fmt: skip
    coarse, fine, batch = FundamentalModel(cfg), FundamentalModel(cfg), FundamentalModel(cfg)
    for _ in range(50):
        coarse.step(1.0)
    for _ in range(500):
        fine.step(0.1)
    batch.simulate(500)
    assert coarse.values == pytest.approx(fine.values, rel=1e-12)
    assert coarse.values == pytest.approx(batch.values, rel=1e-12)
    assert coarse.steps == fine.steps == batch.steps == 500


def test_partial_steps_carry_over_and_values_start_at_f0() -> None:
    model = FundamentalModel(config(step_s=1.0))
    assert model.values == {"AGR": pytest.approx(100.0)}
    assert model.step(0.4) == {"AGR": pytest.approx(100.0)}  # no whole step yet
    assert model.step(0.4) == {"AGR": pytest.approx(100.0)}
    moved = model.step(0.4)  # 1.2 s in total: one step, 0.2 s carried
    assert model.steps == 1 and moved["AGR"] != pytest.approx(100.0)
    with pytest.raises(ValueError):
        model.step(-1.0)
    with pytest.raises(ValueError):
        model.step(math.nan)


# ------------------------------------------------------------------------------ statistics


def test_gaussian_log_returns_have_std_s() -> None:
    s = 0.01
    r = log_returns(FundamentalModel(config(scale=s)), N)[:, 0]
    se = s / math.sqrt(2 * N)  # standard error of a sample std of normals
    assert abs(r.std(ddof=1) - s) < 6 * se
    assert abs(r.mean()) < 6 * s / math.sqrt(N)
    assert abs(kurtosis(r) - 3.0) < 6 * math.sqrt(24 / N)


def test_levy_steps_are_pareto_tailed_with_exponent_mu() -> None:
    s, mu = 0.001, 1.5
    r = log_returns(FundamentalModel(config(process="levy", scale=s, tail_exponent=mu)), N)[:, 0]
    size = np.abs(r)
    assert size.min() >= s * (1 - 1e-9)  # Pareto type I: every step is at least s
    # Hill / maximum-likelihood estimate of μ with the known minimum s; std error μ/√n.
    mu_hat = N / float(np.sum(np.log(size / s)))
    assert abs(mu_hat - mu) < 6 * mu / math.sqrt(N)
    # Symmetric: about half the steps are up.
    assert abs(np.mean(r > 0) - 0.5) < 6 * 0.5 / math.sqrt(N)
    # Survival function at 10·s is 10^-μ.
    p = 10.0**-mu
    assert abs(np.mean(size > 10 * s) - p) < 6 * math.sqrt(p * (1 - p) / N)
    # Far heavier tails than the Gaussian walk (kurtosis ≈ 3).
    g = log_returns(FundamentalModel(config(scale=s)), N)[:, 0]
    assert kurtosis(r) > 10 * kurtosis(g)


def test_levy_max_step_truncates() -> None:
    cap = 0.05
    model = FundamentalModel(
        config(process="levy", scale=0.001, tail_exponent=0.5, levy_max_step=cap)
    )
    r = log_returns(model, 20_000)
    assert np.abs(r).max() <= cap * (1 + 1e-9)
    assert np.isclose(np.abs(r).max(), cap)


def test_correlated_gaussian_log_returns() -> None:
    rho = 0.6
    cfg = config(symbols={"A": "100", "B": "50"}, correlation=[[1, rho], [rho, 1]])
    r = log_returns(FundamentalModel(cfg), N)
    se = (1 - rho**2) / math.sqrt(N)  # large-sample std error of Pearson's r
    assert abs(np.corrcoef(r[:, 0], r[:, 1])[0, 1] - rho) < 6 * se


def test_correlated_levy_steps_follow_the_gaussian_copula() -> None:
    rho = 0.6
    cfg = config(
        symbols={"A": "100", "B": "50"}, correlation=[[1, rho], [rho, 1]], process="levy",
        scale=0.001, tail_exponent=1.2,
    )  # fmt: skip
    r = log_returns(FundamentalModel(cfg), N)
    ranks = np.argsort(np.argsort(r, axis=0), axis=0)
    spearman = np.corrcoef(ranks[:, 0], ranks[:, 1])[0, 1]
    expected = 6 / math.pi * math.asin(rho / 2)
    assert abs(spearman - expected) < 6 / math.sqrt(N)


def test_perfect_correlation_is_accepted_and_moves_together() -> None:
    cfg = config(symbols={"A": "100", "B": "50"}, correlation=[[1, 1], [1, 1]])
    r = log_returns(FundamentalModel(cfg), 1_000)
    assert np.allclose(r[:, 0], r[:, 1])


def test_mean_reversion_pulls_back_toward_f0() -> None:
    theta = math.log(2)  # halves the log-distance to F0 every second
    model = FundamentalModel(config(scale=0.0, mean_reversion=theta), start={"AGR": 400.0})
    assert model.values["AGR"] == pytest.approx(400.0)
    assert model.step(1.0)["AGR"] == pytest.approx(200.0)
    assert model.step(2.0)["AGR"] == pytest.approx(100.0 * 2**0.25)
    assert model.step(100.0)["AGR"] == pytest.approx(100.0)


def test_mean_reversion_makes_the_noisy_walk_stationary() -> None:
    s, theta, dt = 0.01, 0.1, 1.0
    a = math.exp(-theta * dt)
    model = FundamentalModel(config(scale=s, mean_reversion=theta, step_s=dt))
    x = np.log(model.simulate(N)[:, 0] / 100.0)
    stationary = s / math.sqrt(1 - a**2)  # AR(1) stationary std ≈ 0.0308
    # Effective sample size of an AR(1) is about N·(1-a)/(1+a); bounds from that, loose.
    n_eff = N * (1 - a) / (1 + a)
    assert abs(x.mean()) < 6 * stationary / math.sqrt(n_eff)
    assert abs(x.std() - stationary) < 6 * stationary / math.sqrt(2 * n_eff)
    lag1 = np.corrcoef(x[:-1], x[1:])[0, 1]
    assert abs(lag1 - a) < 6 * (1 - a**2) / math.sqrt(N)
    walk = np.log(FundamentalModel(config(scale=s)).simulate(N)[:, 0] / 100.0)
    assert np.abs(walk).max() > 5 * np.abs(x).max()  # without the pull it wanders away


def test_jumps_occur_at_the_configured_rate() -> None:
    rate, dt, n = 2.0, 0.01, N
    model = FundamentalModel(
        config(scale=0.0, step_s=dt, jumps=JumpConfig(rate=rate, mean=0.0, scale=0.01))
    )
    r = log_returns(model, n)[:, 0]
    expected = rate * dt * n  # 2000 jumps in 1000 s
    count = model.jump_counts["AGR"]
    assert abs(count - expected) < 6 * math.sqrt(expected)
    # With no diffusion, the price moves exactly in the steps that had a jump.
    moved = int(np.count_nonzero(np.abs(r) > 1e-15))
    p_two_or_more = 1 - math.exp(-rate * dt) * (1 + rate * dt)
    assert count - 6 * math.sqrt(n * p_two_or_more) - 10 <= moved <= count
    # Jump sizes: N(0, 0.01²) when one jump fell in the step.
    assert abs(r[np.abs(r) > 1e-15].std() - 0.01) < 0.002


def test_jumps_are_independent_across_symbols() -> None:
    cfg = config(symbols={"A": "1", "B": "2"}, scale=0.0, jumps=JumpConfig(rate=0.5, scale=0.1))
    model = FundamentalModel(cfg)
    model.step(20_000.0)
    counts = model.jump_counts
    assert counts["A"] != counts["B"]
    for c in counts.values():
        assert abs(c - 10_000) < 6 * 100


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"correlation": [[1, 0.5], [0.4, 1]]}, "symmetric"),
        ({"correlation": [[1, 0.5], [0.5, 0.9]]}, "diagonal"),
        ({"correlation": [[1, 0.5, 0.2], [0.5, 1, 0.1], [0.2, 0.1, 1]]}, "2x2"),
        ({"correlation": [[1, 0.5], [0.5]]}, "2x2"),
        ({"correlation": [[1, 1.5], [1.5, 1]]}, "[-1, 1]"),
        ({"tail_exponent": 0.0}, "greater than 0"),
        ({"tail_exponent": 2.5}, "less than or equal to 2"),
        ({"scale": -0.1}, "greater than or equal to 0"),
        ({"step_s": 0.0}, "greater than 0"),
        ({"step_s": 1e-12}, "1 ns"),
        ({"mean_reversion": -1.0}, "greater than or equal to 0"),
        ({"symbols": {}}, "at least 1"),
        ({"symbols": {"AGR": "-1"}}, "greater than 0"),
        ({"symbols": {"AGR": "NaN"}}, "symbols.AGR"),
        ({"symbols": {"bad symbol": "1"}}, "pattern"),
        ({"process": "brownian"}, "process"),
        ({"jumps": {"rate": -1, "scale": 0.1}}, "jumps.rate"),
        ({"jumps": {"rate": 1, "scale": 0}}, "jumps.scale"),
        ({"scale": math.inf}, "finite"),
        ({"sigma": 0.1}, "Extra inputs"),
    ],
)
def test_invalid_configs_raise_clear_errors(kw: dict[str, Any], needle: str) -> None:
    base: dict[str, Any] = {"symbols": {"A": "10", "B": "20"}}
    base.update(kw)
    with pytest.raises(ValidationError) as info:
        FundamentalConfig(**base)
    assert needle in str(info.value)


def test_non_psd_correlation_is_refused() -> None:
    bad = [[1, 0.9, 0.9], [0.9, 1, -0.9], [0.9, -0.9, 1]]
    with pytest.raises(ValidationError, match="positive semi-definite"):
        FundamentalConfig(symbols={"A": "1", "B": "1", "C": "1"}, correlation=bad)


def test_config_round_trips_through_json() -> None:
    cfg = config(
        symbols={"A": "10.5", "B": "20"}, process="levy", tail_exponent=1.2,
        correlation=[[1, -0.2], [-0.2, 1]], jumps={"rate": 0.1, "scale": 0.05},
    )  # fmt: skip
    assert FundamentalConfig.model_validate_json(cfg.model_dump_json()) == cfg


def test_bad_start_values_raise() -> None:
    with pytest.raises(ValueError, match="unknown symbol"):
        FundamentalModel(config(), start={"ZZZ": 1.0})
    with pytest.raises(ValueError, match="positive"):
        FundamentalModel(config(), start={"AGR": 0.0})


# ------------------------------------------------------------------------------ wire format


def test_encode_decode_round_trip() -> None:
    msg = Fundamental(ts=123, symbol="AGR", value=101.25, seq=1)
    data = encode_fundamental(msg)
    assert msgpack.unpackb(data) == {
        "type": "fundamental", "v": 1, "ts": 123, "symbol": "AGR", "value": 101.25, "seq": 1,
    }  # fmt: skip
    assert decode_fundamental(data) == msg


GOOD = {"type": "fundamental", "v": 1, "ts": 1, "symbol": "AGR", "value": 1.5, "seq": 1}


def packed(**changes: Any) -> bytes:
    obj = {**GOOD, **changes}
    return msgpack.packb({k: v for k, v in obj.items() if v is not ...})


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never-used msgpack byte
        b"garbage that is not msgpack \xff\xfe",
        msgpack.packb([1, 2, 3]),
        msgpack.packb("fundamental"),
        packed() + b"\x00",  # trailing bytes
        packed(type="trade"),
        packed(v=2),
        packed(ts=...),
        packed(ts=-1),
        packed(ts="1"),
        packed(symbol=""),
        packed(symbol=5),
        packed(value=0.0),
        packed(value=-3.0),
        packed(value=math.nan),
        packed(value=math.inf),
        packed(value="1.5"),
        packed(seq=0),
        packed(seq=True),
        packed(seq=1.0),
        packed(extra="field"),
        msgpack.packb({**GOOD, "symbol": "x" * 2000}),
        msgpack.packb({1: 2}, strict_types=False),
        msgpack.packb(msgpack.ExtType(1, b"x")),
    ],
)
def test_decode_rejects_garbage(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_fundamental(data)


def test_decode_rejects_non_bytes_and_is_a_value_error() -> None:
    with pytest.raises(MalformedFundamental):
        decode_fundamental("text")  # type: ignore[arg-type]
    assert issubclass(MalformedFundamental, ValueError)


def test_decode_accepts_an_integer_value() -> None:
    assert decode_fundamental(packed(value=100)).value == 100.0


def test_feed_skips_malformed_frames_and_other_symbols() -> None:
    feed = FundamentalFeed("tcp://127.0.0.1:1", symbols=["AG"])
    good = Fundamental(ts=1, symbol="AG", value=2.0, seq=3)
    assert feed._parse([b"AG", encode_fundamental(good)]) == good
    assert feed._parse([b"AG", b"\xc1"]) is None
    assert feed._parse([b"AG"]) is None
    assert feed._parse([b"AGR", encode_fundamental(good)]) is None  # topic/payload mismatch
    assert feed.skipped == 3
    other = Fundamental(ts=1, symbol="AGR", value=2.0, seq=1)  # prefix match of "AG"
    assert feed._parse([b"AGR", encode_fundamental(other)]) is None
    assert feed.skipped == 3
    feed.close()


# ------------------------------------------------------------------------------ real process


async def test_process_publishes_contiguous_fundamentals_and_stops_cleanly() -> None:
    model = {"symbols": {"AGR": "100.00", "XYZ": "25"}, "scale": 0.01, "step_s": 0.01}
    proc = start_fundamental(
        AGORA_FUNDAMENTAL_INTERVAL_S="0.01", AGORA_FUNDAMENTAL_MODEL=json.dumps(model),
        AGORA_FUNDAMENTAL_SEED="3",
    )  # fmt: skip
    try:
        endpoint = proc.ready["fundamental"]
        assert endpoint.startswith("tcp://127.0.0.1:") and not endpoint.endswith("*")
        received: list[Fundamental] = []
        # The timeout is a safety net against a hang, not a synchronisation.
        async with asyncio.timeout(60), FundamentalFeed(endpoint, symbols=["AGR"]) as feed:
            async for msg in feed:
                received.append(msg)
                if len(received) == 5:
                    break
        assert feed.skipped == 0
        assert all(m.symbol == "AGR" and m.value > 0 for m in received)
        seqs = [m.seq for m in received]
        assert seqs == list(range(seqs[0], seqs[0] + 5))
        assert all(a.ts <= b.ts for a, b in itertools.pairwise(received))
    finally:
        err = proc.stop(signal.SIGTERM)
    assert proc.returncode == 0, err[-3000:]
    assert "fundamental_stopped" in err
