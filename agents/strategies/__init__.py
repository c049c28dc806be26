"""The strategy zoo: pure `Agent` classes, and a registry to find them by name.

Every strategy acts only through its `Context`, so each one trades unchanged live and in
simulated time. `load_strategy` resolves a registry name, a "module:Class" or a
"path/to/file.py:Class" to an `Agent` subclass.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from agents.agent import Agent
from agents.strategies.execution import AlmgrenChrissExecutor, TWAPExecutor
from agents.strategies.fair_value import FairValueTrader
from agents.strategies.hft import ImbalanceTaker
from agents.strategies.market_maker import AvellanedaStoikov, FixedSpreadMarketMaker
from agents.strategies.mean_reversion import MeanReversion
from agents.strategies.noise import NoiseTrader
from agents.strategies.pairs import PairsTrader
from agents.strategies.trend import TrendFollower
from agents.strategies.zero_intelligence import ZeroIntelligence

__all__ = [
    "STRATEGIES",
    "AlmgrenChrissExecutor",
    "AvellanedaStoikov",
    "FairValueTrader",
    "FixedSpreadMarketMaker",
    "ImbalanceTaker",
    "MeanReversion",
    "NoiseTrader",
    "PairsTrader",
    "TWAPExecutor",
    "TrendFollower",
    "ZeroIntelligence",
    "load_strategy",
]

STRATEGIES: dict[str, type[Agent]] = {
    "zi": ZeroIntelligence,
    "noise": NoiseTrader,
    "fair_value": FairValueTrader,
    "trend": TrendFollower,
    "mean_reversion": MeanReversion,
    "pairs": PairsTrader,
    "avellaneda_stoikov": AvellanedaStoikov,
    "fixed_spread_mm": FixedSpreadMarketMaker,
    "twap": TWAPExecutor,
    "almgren_chriss": AlmgrenChrissExecutor,
    "imbalance": ImbalanceTaker,
}


def load_strategy(name_or_path: str) -> type[Agent]:
    """An agent class from a registry name, "package.module:Class" or "path/file.py:Class"."""
    if name_or_path in STRATEGIES:
        return STRATEGIES[name_or_path]
    where, sep, attr = name_or_path.rpartition(":")
    if not sep or not where or not attr:
        raise ValueError(
            f"unknown strategy {name_or_path!r}: use one of {sorted(STRATEGIES)}, "
            "'module:Class' or 'path/to/file.py:Class'"
        )
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where)
        if not path.is_file():
            raise ValueError(f"no such strategy file: {where}")
        mod_name = f"agora_strategy_{path.stem}_{abs(hash(str(path.resolve())))}"
        module = sys.modules.get(mod_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(mod_name, path)
            if spec is None or spec.loader is None:
                raise ValueError(f"cannot import {where}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[mod_name]
                raise
    else:
        module = importlib.import_module(where)
    cls = getattr(module, attr, None)
    if cls is None:
        raise ValueError(f"{where} has no attribute {attr!r}")
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise TypeError(f"{name_or_path} is not an Agent subclass")
    return cls
