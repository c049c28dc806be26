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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from agents.analysis.pnl import PnlSplit, split
from agents.config import MarketConfig

__all__ = ["Row", "by_strategy", "rank"]

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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def by_strategy(rows: list[Row]) -> list[dict[str, Any]]:
    """Per strategy class: agents, total trading and inventory PnL, trading PnL per agent;
    best trading PnL per agent first. Accounts with an unknown split count in `pnl` only."""
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
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
    out.sort(key=lambda g: -(g["trading_pnl_per_agent"] or 0))
    return out


def tables(rows: list[Row], market: MarketConfig | None, top: int = 15) -> list[Any]:
    """The leaderboard as rich tables (money in currency): the best `top` accounts, then the
    strategy classes."""
    from rich.table import Table

    from agents.units import money

    def m(v: int | float | None) -> str:
        return "-" if v is None else money(v)

    note = "ranked by trading PnL" if market is not None else (
        "total PnL only: no market file to split it")  # fmt: skip
    accounts = Table(title=f"leaderboard: {len(rows):,} accounts, {note}")
    for col in ("#", "account", "strategy", "trading PnL", "inventory PnL", "total PnL"):
        accounts.add_column(col, justify="left" if col in ("account", "strategy") else "right")
    for i, r in enumerate(rows[:top], 1):
        accounts.add_row(str(i), r.account, r.strategy, m(r.trading_pnl), m(r.inventory_pnl),
                         m(r.pnl))  # fmt: skip
    classes = Table(title="by strategy (trading PnL: own trades marked to market, minus fees; "
                          "inventory PnL: starting shares x price move)")  # fmt: skip
    for col in ("strategy", "agents", "trading PnL / agent", "trading PnL", "inventory PnL",
                "total PnL"):  # fmt: skip
        classes.add_column(col, justify="left" if col == "strategy" else "right")
    unsplit = []
    for g in by_strategy(rows):
        classes.add_row(g["strategy"], f"{g['agents']:,}", m(g["trading_pnl_per_agent"]),
                        m(g["trading_pnl"]), m(g["inventory_pnl"]), m(g["pnl"]))  # fmt: skip
        if g["unknown"]:
            unsplit.append(f"{g['strategy']}: {g['unknown']:,} of {g['agents']:,}")
    if unsplit:  # otherwise a per-agent figure that looks wrong (it is over the split ones)
        classes.caption = (f"{'; '.join(unsplit)} accounts started with cash or shares the "
                           "market file does not give them: their PnL cannot be split, so it "
                           "counts in total PnL only (not in trading, inventory or per agent)")
    return [accounts, classes] if market is not None else [accounts]
