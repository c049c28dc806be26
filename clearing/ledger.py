"""The clearing ledger: accounts, cash, positions, fees, and settlement of each trade exactly once.

Pure and synchronous (ARCHITECTURE.md): trade captures in, balance changes out. The clearing
process persists the changes, the simulated-time kernel keeps them in memory; both settle with
this code.

Units. Cash is an integer number of *cash units* (cents by default). A trade of `qty` lots at
`price` ticks moves ``price * qty * multiplier`` cash units, where a symbol's integer multiplier
is ``tick_size * lot_size / cash_unit`` (1 for the default 0.01 tick, 1-unit lot, cent cash).

Exactly once. Trades carry the exchange's `trade_id`, contiguous from 1 within an exchange
epoch (``exchange.protocol.TRADE_EPOCH_BITS``). The ledger settles them in that order only: an
id at or below `settled_through` is a duplicate and changes nothing (idempotent: a replay after
a restart is harmless), an id beyond ``settled_through + 1`` is a gap and raises `OutOfOrder`
(the caller fetches the missing trades first). The one exception is the first trade of a later
epoch, which `follow` admits when the exchange's journal says it comes next (what the replay
service answers). A trade's two legs are computed before anything is touched, so it is applied
whole or not at all.

Rules. By default an account may neither borrow nor short: cash >= 0 and every position >= 0.
`Limits` relaxes that per account (a credit line, written as leverage over net deposits; a
short limit in lots; a maximum position; a maximum order notional, checked pre-trade; margin
on short positions, `clearing.margin`: an initial margin checked pre-trade, a maintenance
margin below which the account is in a margin call, `margin_calls`). The ledger cannot
refuse a trade (it already happened on the exchange); the exchange's pre-trade gate
(`clearing.risk`) makes sure no trade would break them, and the ledger records any breach
in `violations` so a broken gate is seen, not hidden.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from clearing.fees import FeeSchedule, fee_for
from clearing.margin import margin_shortfall
from exchange.protocol import TRADE_EPOCH_BITS

__all__ = [
    "FEE_ACCOUNT",
    "Account",
    "Change",
    "Ledger",
    "LedgerError",
    "Limits",
    "OutOfOrder",
    "Position",
    "multiplier",
]

MAX_CASH = 2**62
"""Largest balance (cash units or lots) an account may be given: room below the 64-bit columns."""

FEE_ACCOUNT = "_fees"
"""Where fees go (and rebates come from), so total cash is conserved exactly."""


class LedgerError(ValueError):
    """A refused ledger operation; `reason` is a machine-readable code."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason


class OutOfOrder(LedgerError):
    """A trade arrived before the ones it follows: fetch trades from `expected` first."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__("out_of_order", f"expected trade {expected}, got {got}")
        self.expected = expected


def multiplier(tick_size: Decimal, lot_size: Decimal, cash_unit: Decimal) -> int:
    """Cash units per (tick x lot): must be a whole number, or cash could not stay exact."""
    m = tick_size * lot_size / cash_unit
    if m != m.to_integral_value() or m < 1:
        raise ValueError(
            f"tick {tick_size} x lot {lot_size} is not a whole number of cash units {cash_unit}"
        )
    return int(m)


class Limits(BaseModel):
    """An account's trading rules. The defaults: no borrowing, no short selling."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    leverage: float = Field(1.0, ge=1.0, le=100.0, description="credit = (leverage-1) x deposits")
    short_limit: int = Field(0, ge=0, description="lots the account may be short, per symbol")
    max_position: int | None = Field(None, gt=0, description="largest long position, lots")
    max_order_notional: int | None = Field(None, gt=0, description="cash units, per order")
    short_margin: float = Field(
        0.0, ge=0.0, le=10.0,
        description="initial margin on shorts: equity >= this x short notional after a short "
        "sale (0 = no margin rule, only short_limit)",
    )  # fmt: skip
    maintenance_margin: float = Field(
        0.0, ge=0.0, le=10.0,
        description="below equity = this x short notional the account is in a margin call "
        "(0 = never)",
    )  # fmt: skip

    @model_validator(mode="after")
    def _maintenance_below_initial(self) -> Limits:
        if self.short_margin and self.maintenance_margin > self.short_margin:
            raise ValueError(f"maintenance_margin {self.maintenance_margin} is above "
                             f"short_margin {self.short_margin}: an account would be in a margin "
                             "call the moment its short sale was accepted")  # fmt: skip
        return self


@dataclass(slots=True)
class Position:
    """A position in one symbol: `cost` is the signed cost basis of the open quantity."""

    qty: int = 0
    cost: int = 0
    realised: int = 0

    @property
    def avg_cost(self) -> float:
        return self.cost / self.qty if self.qty else 0.0


@dataclass(slots=True)
class Account:
    account: str
    cash: int = 0
    deposits: int = 0  # net deposits: the base of the credit line and of PnL
    fees_paid: int = 0
    limits: Limits = field(default_factory=Limits)
    positions: dict[str, Position] = field(default_factory=dict)
    token_hash: str = ""

    @property
    def credit_limit(self) -> int:
        """How far below zero cash may go."""
        return int((self.limits.leverage - 1.0) * max(self.deposits, 0))

    def position(self, symbol: str) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position()
        return pos


@dataclass(slots=True, frozen=True)
class Change:
    """One balance change, as persisted: a trade leg, a deposit, a withdrawal, an opening."""

    kind: str  # "trade" | "deposit" | "withdraw" | "open" | "fee"
    account: str
    cash_delta: int
    symbol: str | None = None
    qty_delta: int = 0
    fee: int = 0
    trade_id: int | None = None
    ts: int = 0


class Ledger:
    """Every account's cash and positions, and the id of the last settled trade."""

    def __init__(
        self,
        fees: FeeSchedule | None = None,
        multipliers: Mapping[str, int] | None = None,
        settled_through: int = 0,
    ) -> None:
        self.fees = fees or FeeSchedule()
        self.multipliers = dict(multipliers or {})
        self.settled_through = settled_through
        self.accounts: dict[str, Account] = {FEE_ACCOUNT: Account(FEE_ACCOUNT)}
        self.marks: dict[str, int] = {}  # last trade price per symbol (ticks)
        self.violations: list[tuple[int, str, str]] = []  # (trade_id, account, rule)

    # ------------------------------------------------------------------ accounts
    def open_account(
        self,
        account: str,
        cash: int = 0,
        positions: Mapping[str, int] | None = None,
        limits: Limits | None = None,
        token_hash: str = "",
        cost_prices: Mapping[str, int] | None = None,
        ts: int = 0,
    ) -> list[Change]:
        """Open `account` with its initial allocation (positions cost at `cost_prices`)."""
        if account in self.accounts:
            raise LedgerError("account_exists", f"account {account!r} already exists")
        if not 0 <= cash <= MAX_CASH or any(
            not 0 <= q <= MAX_CASH for q in (positions or {}).values()
        ):
            raise LedgerError("invalid_amount", f"initial cash and positions: 0..{MAX_CASH}")
        acct = Account(account, cash=cash, deposits=cash, limits=limits or Limits())
        acct.token_hash = token_hash
        changes = [Change("open", account, cash, ts=ts)]
        for symbol, qty in (positions or {}).items():
            if qty:
                price = (cost_prices or {}).get(symbol, 0)
                pos = acct.position(symbol)
                pos.qty = qty
                pos.cost = qty * price * self.multipliers.get(symbol, 1)
                changes.append(Change("open", account, 0, symbol, qty, ts=ts))
        self.accounts[account] = acct
        return changes

    def get(self, account: str) -> Account:
        acct = self.accounts.get(account)
        if acct is None:
            raise LedgerError("unknown_account", f"no account {account!r}")
        return acct

    def deposit(self, account: str, amount: int, ts: int = 0) -> Change:
        if amount <= 0:
            raise LedgerError("invalid_amount", "a deposit must be > 0")
        acct = self.get(account)
        if acct.cash + amount > MAX_CASH:
            raise LedgerError("invalid_amount", f"cash would exceed {MAX_CASH}")
        acct.cash += amount
        acct.deposits += amount
        return Change("deposit", account, amount, ts=ts)

    def withdraw(self, account: str, amount: int, ts: int = 0) -> Change:
        """Take cash out; refused if it would leave cash below the account's floor."""
        if amount <= 0:
            raise LedgerError("invalid_amount", "a withdrawal must be > 0")
        acct = self.get(account)
        deposits = acct.deposits - amount
        credit = int((acct.limits.leverage - 1.0) * max(deposits, 0))
        if acct.cash - amount < -credit:
            raise LedgerError(
                "insufficient_funds", f"{account}: cash {acct.cash} cannot cover {amount}"
            )
        acct.cash -= amount
        acct.deposits = deposits
        return Change("withdraw", account, -amount, ts=ts)

    def set_limits(self, account: str, limits: Limits) -> None:
        self.get(account).limits = limits

    # ------------------------------------------------------------------ settlement
    def follow(self, trade_id: int) -> None:
        """The exchange's journal says `trade_id` is the next trade after everything settled:
        allow it if it is the first trade of a later epoch (the exchange restarted; trades of
        the old epoch that it may have lost from its journal are settled here already)."""
        if trade_id == self.settled_through + 1:
            return
        mask = (1 << TRADE_EPOCH_BITS) - 1
        if (
            trade_id & mask == 1
            and trade_id >> TRADE_EPOCH_BITS > self.settled_through >> TRADE_EPOCH_BITS
        ):
            self.settled_through = trade_id - 1
            return
        raise OutOfOrder(self.settled_through + 1, trade_id)

    def settle(self, trade: Mapping[str, Any]) -> list[Change] | None:
        """Settle one trade capture (a wire dict or model fields); None if already settled.

        Returns the balance changes to persist: the buyer's and seller's legs and the fees.
        """
        trade_id = trade["trade_id"]
        if trade_id <= self.settled_through:
            return None
        if trade_id != self.settled_through + 1:
            raise OutOfOrder(self.settled_through + 1, trade_id)
        # Read everything (a malformed record fails here) before changing anything.
        symbol, price, qty = trade["symbol"], trade["price"], trade["qty"]
        buy_name, sell_name = trade["buy_account"], trade["sell_account"]
        ts = trade.get("ts", 0)
        fees = self.settle_trade(
            trade_id, symbol, price, qty, trade.get("aggressor_side", "none"), buy_name,
            sell_name,
        )  # fmt: skip
        if fees is None:
            return None
        notional, buy_fee, sell_fee = fees
        return [
            Change("trade", buy_name, -notional - buy_fee, symbol, qty, buy_fee, trade_id, ts),
            Change("trade", sell_name, notional - sell_fee, symbol, -qty, sell_fee, trade_id, ts),
            Change("fee", FEE_ACCOUNT, buy_fee + sell_fee, trade_id=trade_id, ts=ts),
        ]

    def settle_trade(
        self, trade_id: int, symbol: str, price: int, qty: int, aggressor: str, buy_name: str,
        sell_name: str,
    ) -> tuple[int, int, int] | None:  # fmt: skip
        """`settle` from plain values, without the change records (the simulator's path).

        Returns (notional, buyer's fee, seller's fee), or None if already settled.
        """
        if trade_id <= self.settled_through:
            return None
        if trade_id != self.settled_through + 1:
            raise OutOfOrder(self.settled_through + 1, trade_id)
        notional = price * qty * self.multipliers.get(symbol, 1)
        rate = self.fees.rate
        buy_fee = fee_for(notional, rate("taker" if aggressor == "buy" else "maker"))
        sell_fee = fee_for(notional, rate("taker" if aggressor == "sell" else "maker"))
        buyer = self._account_for(buy_name)
        seller = self._account_for(sell_name)
        fees = self.accounts[FEE_ACCOUNT]
        self._leg(buyer, symbol, qty, notional, price, buy_fee)
        self._leg(seller, symbol, -qty, -notional, price, sell_fee)
        fees.cash += buy_fee + sell_fee
        self.marks[symbol] = price
        self.settled_through = trade_id
        self._check_rules(buyer, symbol, trade_id)
        self._check_rules(seller, symbol, trade_id)
        return notional, buy_fee, sell_fee

    def _account_for(self, account: str) -> Account:
        acct = self.accounts.get(account)
        if acct is None:
            # Without a pre-trade gate the exchange accepts any account; settle it anyway (a
            # trade that happened must be booked) on a fresh, empty account.
            acct = self.accounts[account] = Account(account)
        return acct

    @staticmethod
    def _leg(acct: Account, symbol: str, dqty: int, dcost: int, price: int, fee: int) -> None:
        """Apply a fill of `dqty` (signed) costing `dcost` (signed, = price x dqty x mult)."""
        acct.cash -= dcost + fee
        acct.fees_paid += fee
        pos = acct.position(symbol)
        old = pos.qty
        new = old + dqty
        if old == 0 or (old > 0) == (dqty > 0):
            pos.cost += dcost  # opening or adding: the cost basis grows
        elif (old > 0) == (new > 0) or new == 0:
            # Reducing: the closed part leaves at its average cost; the rest is realised.
            closed_cost = round(pos.cost * (-dqty) / old)
            pos.realised += -dcost - closed_cost
            pos.cost -= closed_cost
        else:
            # Flipping through zero: close the whole old position, open the rest at `price`.
            # dcost is price x dqty x multiplier exactly, so this division is exact (integers
            # all the way: no float rounding of large balances).
            close_value = dcost // dqty * -old
            pos.realised += -close_value - pos.cost
            pos.cost = dcost - close_value
        pos.qty = new

    def _check_rules(self, acct: Account, symbol: str, trade_id: int) -> None:
        if acct.cash < -acct.credit_limit:
            self.violations.append((trade_id, acct.account, "cash_below_floor"))
        qty = acct.positions[symbol].qty
        if qty < -acct.limits.short_limit:
            self.violations.append((trade_id, acct.account, "short_limit"))
        if acct.limits.max_position is not None and qty > acct.limits.max_position:
            self.violations.append((trade_id, acct.account, "max_position"))

    # ------------------------------------------------------------------ views
    def unrealised(self, acct: Account, symbol: str) -> int:
        pos = acct.positions.get(symbol)
        mark = self.marks.get(symbol)
        if pos is None or not pos.qty or mark is None:
            return 0
        return pos.qty * mark * self.multipliers.get(symbol, 1) - pos.cost

    def equity(self, acct: Account) -> int:
        """Cash plus positions at their marks (at cost where a symbol has not traded)."""
        value = acct.cash
        for symbol, pos in acct.positions.items():
            mark = self.marks.get(symbol)
            if mark is None:
                value += pos.cost
            else:
                value += pos.qty * mark * self.multipliers.get(symbol, 1)
        return value

    def margin_shortfall(self, acct: Account) -> int:
        """Cash units of equity `acct` lacks for its maintenance margin at the marks (0: none).

        The same rule the pre-trade gate applies with the initial margin
        (`clearing.margin.margin_shortfall`), on the settled balances.
        """
        return margin_shortfall(
            acct.cash, {s: p.qty for s, p in acct.positions.items()}, self.marks,
            self.multipliers, acct.limits.maintenance_margin,
        )  # fmt: skip

    def margin_calls(self) -> list[str]:
        """Accounts whose equity is below their maintenance margin now, by name."""
        return sorted(name for name, acct in self.accounts.items()
                      if acct.limits.maintenance_margin
                      and self.margin_shortfall(acct))  # fmt: skip

    def pnl(self, acct: Account) -> int:
        """Net PnL: realised + unrealised - fees (= equity - net deposits - initial positions)."""
        realised = sum(p.realised for p in acct.positions.values())
        unreal = sum(self.unrealised(acct, s) for s in acct.positions)
        return realised + unreal - acct.fees_paid
