"""Analysis of simulated and real price histories (stylized facts, the packaged real series)
and of results (`agents.analysis.pnl`: trading PnL vs inventory PnL, pure integers).

`agents.analysis.stylized` is numpy only; `agents.analysis.plots` needs matplotlib (the
``plots`` extra) and is imported only when plots are asked for. `agents.analysis.run_metrics`
reads a run directory into the inputs of `agents.metrics` (per agent, per strategy class,
whole market) and measures them.
"""

from agents.analysis.real import REAL_SERIES, load_real
from agents.analysis.stylized import (
    acf,
    aggregate,
    facts_table,
    hill_tail_index,
    kurtosis,
    log_returns,
    regular_closes,
)

__all__ = [
    "REAL_SERIES",
    "acf",
    "aggregate",
    "facts_table",
    "hill_tail_index",
    "kurtosis",
    "load_real",
    "log_returns",
    "regular_closes",
]
