"""The live market's PnL leaderboard, ranked by what each account's trades made.

Every agent of a market starts with the same allocation (cash and shares), so clearing's PnL,
marked to the last trade, is mostly the drift of the shares each was handed: an idle agent
ranks above a trader. Here clearing's balances are split (`agents.analysis.pnl.split`) into
trading PnL (the account's own trades, marked to market, minus fees) and inventory PnL (its
starting position x the price move since the start), ranked by trading PnL, per account and
per strategy class. `agora up` prints it when it stops; `agora accounts` prints it any time.

The starting allocation of each account comes from the market file (its population's
positions, else the clearing terms' ``starting_positions``; the starting mark is the symbol's
reference price, the clearing house's cost basis for them). An account whose split does not
add up to clearing's own PnL (opened by hand with other positions) keeps its total, its split
shown as unknown rather than guessed.

Next to the PnL, each account's Sharpe ratio, maximum drawdown and fill ratio
(`agents.metrics`), from what the live market has: `agora up` samples every account's trading
PnL from clearing every few seconds (`PnlHistory`; the interval and the annualisation are
stated with the table), and the agent runners report, when they stop, the lots each agent
posted (new and replaced orders) and filled. `agora accounts`, a single look, has no history:
its Sharpe ratio and drawdown show as unknown.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from agents.analysis.pnl import PnlSplit, split
from agents.config import MarketConfig

__all__ = ["PnlHistory", "Row", "by_strategy", "rank", "with_metrics"]

OTHER = "other"  # accounts of no population of the market (attached agents, opened by hand)


@dataclass
class Row:
    """One account on the leaderboard (cash and PnL in cash units, positions in lots)."""

    account: str
    strategy: str
    cash: int
    equity: int
    pnl: int  # clearing's total: trading + inventory
    trading_pnl: int | None
    inventory_pnl: int | None
    fees: int
    settled_through: int
    positions: dict[str, int] = field(default_factory=dict)
    sharpe: float | None = None  # of the sampled trading PnL, annualised (PnlHistory)
    max_drawdown: float | None = None  # of the sampled trading PnL, cash units
    fill_ratio: float | None = None  # filled / posted lots, as the agent's runner counted

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class PnlHistory:
    """Every account's trading PnL (clearing's total where the split is unknown) sampled over
    time, in cash units: the series the live Sharpe ratio and drawdown are measured on.

    Samples come at the pace `agora up` takes them: every `interval_s`, as the clearing house
    answers. The Sharpe ratio takes the increments between consecutive samples as periods of
    `interval_s` (a late answer makes one period a little longer; putting the samples on a
    grid instead would turn it into a zero and a double increment, which distorts more)."""

    def __init__(self, interval_s: float = 5.0) -> None:
        import threading

        self.interval_s = interval_s
        self.ts: list[int] = []
        self.values: dict[str, list[float]] = {}
        self._lock = threading.Lock()  # `agora up` samples in a thread, the panel reads

    def add(self, ts_ns: int, rows: list[Row]) -> None:
        with self._lock:
            n = len(self.ts)
            self.ts.append(ts_ns)
            for r in rows:
                value = float(r.trading_pnl if r.trading_pnl is not None else r.pnl)
                self.values.setdefault(r.account, [math.nan] * n).append(value)
            for series in self.values.values():  # missing from this sample: unknown
                if len(series) < n + 1:
                    series.append(math.nan)

    def last(self) -> dict[str, float]:
        """Each account's value at the last sample (NaN where it was missing)."""
        with self._lock:
            return {a: v[-1] for a, v in self.values.items() if v}

    def __len__(self) -> int:
        return len(self.ts)

    def series(self, accounts: list[str]) -> Any:
        """The summed PnL of `accounts` (one account, or a strategy class) as a step function;
        None before two samples."""
        import numpy as np

        from agents.metrics import Series

        with self._lock:
            if len(self.ts) < 2:
                return None
            rows = [self.values[a] for a in accounts if a in self.values]
            if not rows:
                return None
            total = np.nansum(np.array(rows, dtype=float), axis=0)
            return Series.of(self.ts, total)

    def measure(self, accounts: list[str]) -> tuple[float | None, float | None]:
        """(Sharpe ratio, maximum drawdown in cash units) of the summed PnL of `accounts`."""
        import numpy as np

        from agents.metrics import max_drawdown, periods_per_year, sharpe

        s = self.series(accounts)
        if s is None:
            return None, None
        ratio = sharpe(np.diff(s.values), periods_per_year(self.interval_s))
        depth = max_drawdown(s.ts, s.values).depth
        return (ratio if math.isfinite(ratio) else None), depth

    @property
    def note(self) -> str:
        from agents.metrics import periods_per_year

        return (f"Sharpe and drawdown of the trading PnL sampled every {self.interval_s:g} s "
                f"({len(self.ts)} samples), Sharpe annualised x sqrt("
                f"{periods_per_year(self.interval_s):,.0f}) for a 252 x 6.5 h year; fill "
                "ratio: filled / posted lots")  # fmt: skip


def with_metrics(
    rows: list[Row], history: PnlHistory | None, activity: dict[str, dict[str, Any]] | None
) -> list[Row]:
    """Fill in each row's Sharpe ratio and drawdown (from `history`) and fill ratio (from
    `activity`: per account, the ``volume`` filled and lots ``posted`` its runner reported)."""
    from agents.metrics import fill_ratio

    for r in rows:
        if history is not None:
            r.sharpe, r.max_drawdown = history.measure([r.account])
        a = (activity or {}).get(r.account)
        if a and a.get("posted") is not None and a.get("volume") is not None:
            ratio = fill_ratio(float(a["volume"]), float(a["posted"]))
            r.fill_ratio = ratio if math.isfinite(ratio) else None
    return rows


def _population(account: str, market: MarketConfig) -> Any:
    """The population an account belongs to: its name is ``<population>[-instance]-<i>``."""
    best = None
    for pop in market.populations:
        if account.startswith(pop.name + "-") and (best is None or len(pop.name) > len(best.name)):
            best = pop
    return best


def _strategy_names(market: MarketConfig) -> dict[str, str]:
    from agents.strategies import load_strategy

    names = {}
    for pop in market.populations:
        try:
            names[pop.name] = load_strategy(pop.strategy).__name__
        except Exception:  # a population the runner could not load shows by its own name
            names[pop.name] = pop.strategy
    return names


def rank(balances: list[Any], market: MarketConfig | None) -> list[Row]:
    """Clearing's `AccountBalance`s as leaderboard rows, best trading PnL first.

    Without a market (no market file known) the split is unknown: rows keep clearing's total.
    """
    from decimal import Decimal

    from clearing.ledger import multiplier

    starts = {s.symbol: s.reference_price for s in market.symbols} if market else {}
    # cash units per (tick x lot); a long account list may leave them out of each balance
    mults = {s.symbol: multiplier(s.tick_size, s.lot_size, Decimal("0.01"))
             for s in market.symbols} if market else {}  # fmt: skip
    strategies = _strategy_names(market) if market else {}
    rows = []
    for b in balances:
        positions = {p.symbol: p.qty for p in b.positions if p.qty}
        pop = _population(b.account, market) if market else None
        strategy = strategies.get(pop.name, OTHER) if pop is not None else OTHER
        parts: PnlSplit | None = None
        if market is not None:
            given = pop.positions if pop is not None and pop.positions is not None else (
                market.clearing.starting_positions)  # fmt: skip
            marks = {p.symbol: p.mark for p in b.positions if p.mark is not None}
            try:
                parts = split(b.deposits, given, b.cash, positions, starts, marks,
                              b.multipliers or mults)  # fmt: skip
            except ValueError:
                parts = None
            if parts is not None and parts.total != b.pnl:
                parts = None  # not the allocation the market file gives: do not guess
        rows.append(Row(
            account=b.account, strategy=strategy, cash=b.cash, equity=b.equity, pnl=b.pnl,
            trading_pnl=parts.trading if parts else None,
            inventory_pnl=parts.inventory if parts else None,
            fees=b.fees_paid, settled_through=b.settled_through, positions=positions,
        ))  # fmt: skip
    rows.sort(key=lambda r: (r.trading_pnl is None, -(r.trading_pnl or 0), -r.pnl, r.account))
    return rows


def by_strategy(
    rows: list[Row], history: PnlHistory | None = None,
    activity: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Per strategy class: agents, total trading and inventory PnL, trading PnL per agent;
    best trading PnL per agent first. Accounts with an unknown split count in `pnl` only.
    With a `history`, the Sharpe ratio and drawdown of the class's summed PnL; with `activity`
    (see `with_metrics`), its fill ratio: the members' filled lots over their posted lots."""
    groups: dict[str, dict[str, Any]] = {}
    members: dict[str, list[str]] = {}
    for r in rows:
        members.setdefault(r.strategy, []).append(r.account)
        g = groups.setdefault(r.strategy, {"strategy": r.strategy, "agents": 0, "pnl": 0,
                                           "trading_pnl": 0, "inventory_pnl": 0,
                                           "unknown": 0})  # fmt: skip
        g["agents"] += 1
        g["pnl"] += r.pnl
        if r.trading_pnl is None or r.inventory_pnl is None:
            g["unknown"] += 1
            continue
        g["trading_pnl"] += r.trading_pnl
        g["inventory_pnl"] += r.inventory_pnl
    out = list(groups.values())
    for g in out:
        known = g["agents"] - g["unknown"]
        g["trading_pnl_per_agent"] = g["trading_pnl"] / known if known else None
        if history is not None:
            g["sharpe"], g["max_drawdown"] = history.measure(members[g["strategy"]])
        if activity is not None:
            acts = [activity.get(a) or {} for a in members[g["strategy"]]]
            posted = sum(float(a.get("posted") or 0) for a in acts)
            filled = sum(float(a.get("volume") or 0) for a in acts)
            g["fill_ratio"] = filled / posted if posted > 0 else None
    out.sort(key=lambda g: -(g["trading_pnl_per_agent"] or 0))
    return out


def tables(
    rows: list[Row], market: MarketConfig | None, top: int = 15,
    classes_rows: list[dict[str, Any]] | None = None, note: str | None = None,
) -> list[Any]:
    """The leaderboard as rich tables (money in currency): the best `top` accounts, then the
    strategy classes (`classes_rows`, default `by_strategy(rows)`). Sharpe, drawdown and fill
    ratio columns show when any row has them; `note` says how they were measured."""
    from rich.table import Table

    from agents.units import money

    def m(v: int | float | None) -> str:
        return "-" if v is None else money(v)

    def ratio(v: float | None, pct: bool = False) -> str:
        if v is None or not math.isfinite(v):
            return "-"
        return f"{v:.1%}" if pct else f"{v:,.2f}"

    groups = classes_rows if classes_rows is not None else by_strategy(rows)
    extra = any(r.sharpe is not None or r.max_drawdown is not None or r.fill_ratio is not None
                for r in rows)  # fmt: skip

    note = "ranked by trading PnL" if market is not None else (
        "total PnL only: no market file to split it")  # fmt: skip
    accounts = Table(title=f"leaderboard: {len(rows):,} accounts, {note}")
    metric_cols = ("Sharpe", "max drawdown", "fill ratio") if extra else ()
    for col in ("#", "account", "strategy", "trading PnL", "inventory PnL", "total PnL",
                *metric_cols):  # fmt: skip
        accounts.add_column(col, justify="left" if col in ("account", "strategy") else "right")
    for i, r in enumerate(rows[:top], 1):
        cells = (ratio(r.sharpe), m(r.max_drawdown), ratio(r.fill_ratio, True)) if extra else ()
        accounts.add_row(str(i), r.account, r.strategy, m(r.trading_pnl), m(r.inventory_pnl),
                         m(r.pnl), *cells)  # fmt: skip
    if extra and note:
        accounts.caption = note
    classes = Table(title="by strategy (trading PnL: own trades marked to market, minus fees; "
                          "inventory PnL: starting shares x price move)")  # fmt: skip
    for col in ("strategy", "agents", "trading PnL / agent", "trading PnL", "inventory PnL",
                "total PnL", *metric_cols):  # fmt: skip
        classes.add_column(col, justify="left" if col == "strategy" else "right")
    unsplit = []
    for g in groups:
        cells = (ratio(g.get("sharpe")), m(g.get("max_drawdown")),
                 ratio(g.get("fill_ratio"), True)) if extra else ()  # fmt: skip
        classes.add_row(g["strategy"], f"{g['agents']:,}", m(g["trading_pnl_per_agent"]),
                        m(g["trading_pnl"]), m(g["inventory_pnl"]), m(g["pnl"]),
                        *cells)  # fmt: skip
        if g["unknown"]:
            unsplit.append(f"{g['strategy']}: {g['unknown']:,} of {g['agents']:,}")
    if unsplit:  # otherwise a per-agent figure that looks wrong (it is over the split ones)
        classes.caption = (f"{'; '.join(unsplit)} accounts started with cash or shares the "
                           "market file does not give them: their PnL cannot be split, so it "
                           "counts in total PnL only (not in trading, inventory or per agent)")
    return [accounts, classes] if market is not None else [accounts]
