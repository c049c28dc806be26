"""Simulated time: the same Engine, Reporter and Agent classes on a virtual clock.

`Kernel` is the discrete-event loop; `SimMarket` puts an exchange and agents on it;
`agents.sim.output` turns a run into tables (and Parquet files).
"""

from agents.sim.kernel import Kernel
from agents.sim.market import SimContext, SimMarket, resolve_strategy

__all__ = ["Kernel", "SimContext", "SimMarket", "resolve_strategy"]
