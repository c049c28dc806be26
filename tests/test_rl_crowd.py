"""The `crowd` background's hold on the garbage collector: raised while a crowd is open (as
`SimMarket.run` raises it inside each run), given back when the last one closes or is
collected, whoever closes first."""

from __future__ import annotations

import gc

import numpy as np
import pytest

pytest.importorskip("gymnasium")

from agents.rl.config import EnvConfig
from agents.rl.crowd import GC_GEN0, CrowdMarket


def _crowd(seed: int) -> CrowdMarket:
    return CrowdMarket(EnvConfig(background="crowd"), np.random.default_rng(seed), 1, "medium")


def test_crowd_holds_the_young_generation_threshold_while_open():
    before = gc.get_threshold()
    gc.set_threshold(700, *before[1:])
    try:
        a = _crowd(1)
        assert gc.get_threshold()[0] == GC_GEN0
        b = _crowd(2)
        a.close()
        assert gc.get_threshold()[0] == GC_GEN0  # b is still open
        a.close()  # twice is harmless
        assert gc.get_threshold()[0] == GC_GEN0
        del b  # dropped without close: given back when collected
        gc.collect()
        assert gc.get_threshold() == (700, *before[1:])
    finally:
        gc.set_threshold(*before)
