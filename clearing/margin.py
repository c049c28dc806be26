"""Margin on short positions: does an account's equity cover a fraction of what it is short?

One pure function, `margin_shortfall`, is the whole rule. The exchange's pre-trade gate
(`clearing.risk`, live and in simulated time) asks it with the account's worst case before a
sell that opens or extends a short (the *initial* margin, ``short_margin``); the ledger
(`clearing.ledger`) asks it with the settled balances to say whether an account is in a
*margin call* (below ``maintenance_margin``). Both give it the same numbers in the same units,
so the live clearing house and the simulator cannot disagree on the rule.

Equity is cash plus every position at its mark (``qty x mark x multiplier``; a short counts
negative); the short notional is what buying every short position back at the mark costs. The
rule, Reg T style: ``equity >= fraction x short notional``. A sale's proceeds stay in the
account, so at ``fraction = 0.5`` a short sale needs half its value again in equity.

The fraction is applied in basis points with integer arithmetic (balances reach 2**62: floats
would round them). A long position in a symbol without a mark counts for nothing (no price to
lend on); a short one without a mark cannot be valued, and the account is refused (shortfall
`UNPRICED`).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["UNPRICED", "equity_and_shorts", "margin_bps", "margin_shortfall"]

UNPRICED = 2**63
"""The shortfall of an account short of a symbol with no mark: too large to cover."""


def margin_bps(fraction: float) -> int:
    """A margin fraction (0.5 = 50%) in whole basis points."""
    return round(fraction * 10_000)


def equity_and_shorts(
    cash: int,
    positions: Mapping[str, int],
    marks: Mapping[str, int],
    multipliers: Mapping[str, int],
) -> tuple[int, int] | None:
    """(equity, short notional) in cash units; None if a short position has no mark."""
    equity = cash
    short = 0
    for symbol, qty in positions.items():
        if not qty:
            continue
        mark = marks.get(symbol)
        if mark is None:
            if qty < 0:
                return None
            continue
        value = qty * mark * multipliers.get(symbol, 1)
        equity += value
        if value < 0:
            short -= value
    return equity, short


def margin_shortfall(
    cash: int,
    positions: Mapping[str, int],
    marks: Mapping[str, int],
    multipliers: Mapping[str, int],
    fraction: float,
) -> int:
    """How many cash units of equity the account lacks to cover `fraction` of its shorts.

    0 when covered (or when `fraction` is 0: margin off). `cash` and `positions` are whatever
    state the caller judges: the gate passes its worst case (open orders filled), the ledger
    its settled balances.
    """
    bps = margin_bps(fraction)
    if bps <= 0:
        return 0
    found = equity_and_shorts(cash, positions, marks, multipliers)
    if found is None:
        return UNPRICED
    equity, short = found
    if not short:
        return 0
    required = -(-short * bps // 10_000)  # rounded up: never a unit short of the rule
    return max(required - equity, 0)
