"""Analysis of simulated and real price histories (stylized facts, the packaged real series,
the PASS/FAIL verdict of `agents.analysis.verdict`; a long run's market health,
`agents.analysis.health`) and of results (`agents.analysis.pnl`:
trading PnL vs inventory PnL, pure integers).

`agents.analysis.stylized` and `agents.analysis.verdict` are numpy only;
`agents.analysis.plots` needs matplotlib (the ``plots`` extra) and is imported only when plots
are asked for. `agents.analysis.run_metrics` reads a run directory into the inputs of
`agents.metrics` (per agent, per strategy class, whole market) and measures them;
`agents.analysis.resting` rebuilds from a run's orders and fills which orders rested in the
book, at what price and for how long (the time at the top of the book).
"""

from agents.analysis.real import REAL_SERIES, load_real
from agents.analysis.stylized import (
    TailIndex,
    acf,
    aggregate,
    facts_table,
    hill,
    hill_tail_index,
    kurtosis,
    log_returns,
    regular_closes,
    tail_indices,
)
from agents.analysis.verdict import (
    FACT_KEYS,
    FactBands,
    FactResult,
    FactsVerdict,
    facts_verdict,
    facts_verdict_of_prices,
)

__all__ = [
    "FACT_KEYS",
    "REAL_SERIES",
    "FactBands",
    "FactResult",
    "FactsVerdict",
    "TailIndex",
    "acf",
    "aggregate",
    "facts_table",
    "facts_verdict",
    "facts_verdict_of_prices",
    "hill",
    "hill_tail_index",
    "kurtosis",
    "load_real",
    "log_returns",
    "regular_closes",
    "tail_indices",
]
