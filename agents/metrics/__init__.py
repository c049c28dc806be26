"""Performance and risk metrics of an account, a strategy class or a whole market.

One pure package (numpy and the standard library; no IO): everything that reports a Sharpe
ratio, a drawdown or a markout in Agora (simulation results, `agora report`, the live
leaderboard, stress runs, replay and RL evaluation) calls `compute` here. Inputs are plain
arrays in Agora's units: times in ns, prices in ticks, quantities in lots, cash in cash units.

Modules, one theme each (formulas in their docstrings):

* `series`: the inputs, `Fills` (ts, side +1/-1, price, qty, fee) and `Series` (a step function);
* `pnl`: trading/inventory split (`agents.analysis.pnl`), realised/unrealised (average cost),
  fees and rebates, the PnL curve from fills;
* `returns`: Sharpe, Sortino (sampling interval and annualisation stated), profit factor,
  turnover;
* `drawdown`: maximum drawdown, absolute and relative, its duration;
* `var`: historical and parametric VaR and CVaR;
* `inventory`: time-weighted inventory statistics and time at the position limit;
* `market_making`: spread captured, fill ratio, markouts (adverse selection), time at the top;
* `execution`: implementation shortfall against arrival, VWAP and TWAP slippage;
* `compute`/`result`: the entry point and its typed result.

Example::

    from agents.metrics import Fills, MarketContext, Series, compute

    market = MarketContext(
        mids=Series.of([0, 1_000_000_000, 2_000_000_000], [10000.5, 10001.5, 10000.5]),
        trade_ts=[500_000_000, 1_500_000_000], trade_price=[10000, 10002], trade_qty=[5, 3],
    )
    fills = Fills.of(ts=[500_000_000], side=[+1], price=[10000], qty=[5])
    m = compute(fills, market, posted_qty=20, start_position=0)
    m.market_making.fill_ratio          # 0.25: 5 lots filled of 20 posted
    m.market_making.spread_captured     # 0.5 tick per lot: bought half a tick under the mid
    m.as_dict()                         # JSON-ready, sampling and annualisation stated

Building these inputs from a run directory (per agent, per strategy class, whole market) is
`agents.analysis.run_metrics`, which does the reading.
"""

from agents.metrics.compute import MarketContext, MetricsConfig, compute, merge_fills, sum_on_grid
from agents.metrics.drawdown import Drawdown, drawdown_curve, max_drawdown
from agents.metrics.execution import implementation_shortfall, slippage, twap, vwap
from agents.metrics.inventory import InventoryStats, inventory_stats
from agents.metrics.market_making import (
    DEFAULT_MARKOUT_S,
    SpreadCaptured,
    fill_ratio,
    markouts,
    quote_time_at_top,
    spread_captured,
)
from agents.metrics.pnl import PnlBreakdown, average_cost, breakdown, pnl_curve
from agents.metrics.result import (
    Execution,
    MarketMaking,
    Metrics,
    Profitability,
    Risk,
    Sampling,
)
from agents.metrics.returns import (
    TRADING_YEAR_S,
    periods_per_year,
    profit_factor,
    sharpe,
    sortino,
    turnover,
)
from agents.metrics.series import NS, Fills, Series, as_of, on_grid, time_weights
from agents.metrics.var import (
    historical_cvar,
    historical_var,
    historical_var_cvar,
    parametric_cvar,
    parametric_var,
)

__all__ = [
    "DEFAULT_MARKOUT_S",
    "NS",
    "TRADING_YEAR_S",
    "Drawdown",
    "Execution",
    "Fills",
    "InventoryStats",
    "MarketContext",
    "MarketMaking",
    "Metrics",
    "MetricsConfig",
    "PnlBreakdown",
    "Profitability",
    "Risk",
    "Sampling",
    "Series",
    "SpreadCaptured",
    "as_of",
    "average_cost",
    "breakdown",
    "compute",
    "drawdown_curve",
    "fill_ratio",
    "historical_cvar",
    "historical_var",
    "historical_var_cvar",
    "implementation_shortfall",
    "inventory_stats",
    "markouts",
    "max_drawdown",
    "merge_fills",
    "on_grid",
    "parametric_cvar",
    "parametric_var",
    "periods_per_year",
    "pnl_curve",
    "profit_factor",
    "quote_time_at_top",
    "sharpe",
    "slippage",
    "sortino",
    "spread_captured",
    "sum_on_grid",
    "time_weights",
    "turnover",
    "twap",
    "vwap",
]
