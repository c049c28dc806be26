"""Pre-trade risk: refuse an order that could break its account's rules if it filled.

Pure (no IO). It runs inside the exchange process, in front of the matching engine, fed from
two sides:

* the clearing house sends each account's *settled* state (cash, positions, limits, token hash)
  together with `settled_through`, the last trade id those balances include;
* the engine's own events tell it about open orders and about fills that clearing has not
  confirmed yet (trade ids above `settled_through`).

So for every account it knows the worst case: settled balances, plus pending fills, minus what
every open order could still take if it filled entirely at its limit price (fees included).
A new order, or a replace that raises exposure, is accepted only if that worst case stays
within the account's rules (cash >= -credit, -short_limit <= position <= max_position,
notional <= max_order_notional). Since a fill never costs more than its reservation, whatever
fills afterwards, settled in any order, leaves the ledger within the rules: the issue's
invariant, proved by `tests/test_clearing_properties.py` over random flows.

Where the account has a `short_margin`, a sell that opens or extends a short must also leave
equity >= short_margin x short notional (`clearing.margin`), refused ``insufficient_margin``
otherwise. That rule is judged at the marks of the moment: a later price move can take an
account below it, which the ledger's maintenance margin reports (a margin call), and which
then refuses every further short sale here.

Margin needs marks: the gate keeps the last trade price of every symbol from the trades it
follows (clearing's settled marks fill in a symbol it has not seen trade). Its worst case for
margin counts every open sell filled at the lower of its limit price and the mark, and every
open buy paid for (its reservation gone) with its shares worth the lower of its price and the
mark, without covering any short: whichever of its orders fill, the account's margin is never
worse than the gate assumed. Buys are never refused for margin (buying back a short must
always be possible).

Market orders have no limit price; the host gives `worst_price(symbol, side, qty)`: the price
of the last level a sweep of the current book would reach (matching follows immediately, so
that bound holds), or None when there is none to give (an auction), which refuses the order.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clearing.fees import FeeSchedule, fee_for
from clearing.margin import margin_shortfall

__all__ = ["AccountRisk", "RiskGate", "hash_token"]

WorstPrice = Callable[[str, str, int], int | None]


def hash_token(token: str) -> str:
    """How tokens are stored and shared: never in the clear outside the account's owner."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(slots=True)
class AccountRisk:
    """One account as the gate sees it."""

    account: str
    token_hash: str = ""
    cash: int = 0  # settled, from clearing
    positions: dict[str, int] = field(default_factory=dict)  # settled
    credit_limit: int = 0
    short_limit: int = 0
    max_position: int | None = None
    max_order_notional: int | None = None
    pending_cash: int = 0  # fills beyond settled_through
    pending_debits: int = 0  # their cash outflows alone (<= 0): what a withdrawal must leave
    pending_pos: dict[str, int] = field(default_factory=dict)
    reserved_cash: int = 0  # open buy orders at their limit price, with fees
    held: int = 0  # cash set aside for withdrawals clearing has not paid out yet
    leverage: float = 1.0
    open_buy: dict[str, int] = field(default_factory=dict)  # leaves per symbol
    open_sell: dict[str, int] = field(default_factory=dict)
    short_margin: float = 0.0  # initial margin on shorts (0: none, only short_limit)
    live: dict[int, list] = field(default_factory=dict)  # open orders (for margin), by id()

    def available_cash(self) -> int:
        return self.cash + self.pending_cash - self.reserved_cash - self.held + self.credit_limit

    def position(self, symbol: str) -> int:
        return self.positions.get(symbol, 0) + self.pending_pos.get(symbol, 0)

    def funded(self) -> bool:
        """Do the open orders still fit the rules (after a withdrawal or new limits)?"""
        if self.available_cash() < 0:
            return False
        for symbol, sells in self.open_sell.items():
            if self.position(symbol) - sells < -self.short_limit:
                return False
        if self.max_position is not None:
            for symbol, buys in self.open_buy.items():
                if self.position(symbol) + buys > self.max_position:
                    return False
        return True


class RiskGate:
    def __init__(
        self,
        fees: FeeSchedule | None = None,
        multipliers: Mapping[str, int] | None = None,
        worst_price: WorstPrice | None = None,
    ) -> None:
        self.fees = fees or FeeSchedule()
        self.multipliers = dict(multipliers or {})
        self.worst_price = worst_price
        # Reservations assume the dearer fee rate: a resting order may end up either side.
        self._fee_bps = max(self.fees.maker_bps, self.fees.taker_bps, 0.0)
        self.accounts: dict[str, AccountRisk] = {}
        self.settled_through = 0
        self.ready = False  # True once clearing has sent its first state
        # order_id -> [account, symbol, side, price used for the reservation, qty, leaves, res]
        self.orders: dict[int, list[Any]] = {}
        # Fills not yet confirmed by clearing:
        # (trade_id, buyer, seller, symbol, qty, price, aggressor, buyer's cash delta, seller's)
        self.pending: deque[tuple[int, str, str, str, int, int, str, int, int]] = deque()
        self._market_price: tuple[Any, Any, int] | None = None  # (account, clid, worst price)
        self.holds: dict[str, tuple[str, int]] = {}  # hold id -> (account, amount held)
        self.token_changed: list[str] = []  # accounts whose token changed (the host drains it)
        self.marks: dict[str, int] = {}  # last trade price per symbol (ticks), for margin

    # ------------------------------------------------------------------ from clearing
    def hold(self, hold_id: str, account: str, amount: int) -> str | None:
        """Set cash aside for a withdrawal, or say why not.

        With leverage the credit line shrinks with the deposits, so a withdrawal of `amount`
        costs ``leverage x amount`` of buying power.
        """
        acct = self.accounts.get(account)
        if acct is None:
            return "unknown_account"
        need = math.ceil(amount * acct.leverage)
        # Clearing pays a withdrawal out at once, before the fills still pending settle in
        # trade order; a pending sale's proceeds may settle after a pending purchase, so only
        # the pending outflows count here (the cash must cover every step, not just the end).
        free = (acct.cash + acct.pending_debits - acct.reserved_cash - acct.held
                + acct.credit_limit)  # fmt: skip
        if need > free:
            return "insufficient_funds"
        acct.held += need
        self.holds[hold_id] = (account, need)
        return None

    def release(self, hold_ids: Iterable[str]) -> None:
        for hold_id in hold_ids:
            held = self.holds.pop(hold_id, None)
            if held is not None and held[0] in self.accounts:
                self.accounts[held[0]].held -= held[1]

    def update(
        self, settled_through: int, states: Iterable[Mapping[str, Any]],
        released: Iterable[str] = (), marks: Mapping[str, int] | None = None,
    ) -> list[str]:  # fmt: skip
        """Settled state from clearing; returns accounts whose open orders are now unfunded.

        `released`: withdrawal holds that these balances already include (or that clearing
        abandoned); their cash stops being held in the same step, so it is never counted
        twice or not at all. `marks`: clearing's settled marks, for symbols the gate has not
        seen trade itself (its own are as new or newer).
        """
        for symbol, mark in (marks or {}).items():
            self.marks.setdefault(symbol, mark)
        for s in states:
            acct = self.accounts.get(s["account"])
            if acct is None:
                acct = self.accounts[s["account"]] = AccountRisk(s["account"])
            new_hash = s.get("token_hash", acct.token_hash)
            if acct.token_hash and new_hash != acct.token_hash:
                self.token_changed.append(acct.account)  # its old sessions must end
            acct.token_hash = new_hash
            acct.cash = s["cash"]
            acct.positions = dict(s.get("positions") or {})
            acct.credit_limit = s.get("credit_limit", 0)
            acct.short_limit = s.get("short_limit", 0)
            acct.max_position = s.get("max_position")
            acct.max_order_notional = s.get("max_order_notional")
            acct.leverage = s.get("leverage", 1.0)
            acct.short_margin = s.get("short_margin", 0.0)
        self.release(released)
        if settled_through > self.settled_through:
            self.settled_through = settled_through
        pending = self.pending
        while pending and pending[0][0] <= self.settled_through:
            self._unpend(pending.popleft())
        self.ready = True
        return [a.account for a in self.accounts.values() if a.open_buy or a.open_sell
                if not a.funded()]  # fmt: skip

    def _unpend(self, p: tuple) -> None:
        _tid, buyer, seller, symbol, qty, _price, _agg, dbuy, dsell = p
        for name, dq, dc in ((buyer, qty, dbuy), (seller, -qty, dsell)):
            acct = self.accounts.get(name)
            if acct is not None:
                acct.pending_cash -= dc
                acct.pending_debits -= min(dc, 0)
                acct.pending_pos[symbol] = acct.pending_pos.get(symbol, 0) - dq

    def set_terms(self, fees: FeeSchedule | None, multipliers: Mapping[str, int] | None) -> None:
        """Clearing's fee schedule and cash multipliers (its first full state carries them).

        Fills already pending were costed with the old terms; they are costed again, and every
        open buy order's reservation too, so the gate agrees with clearing to the cash unit.
        """
        if fees is not None:
            self.fees = fees
            self._fee_bps = max(fees.maker_bps, fees.taker_bps, 0.0)
        if multipliers is not None:
            self.multipliers = dict(multipliers)
        old = list(self.pending)
        self.pending.clear()
        for p in old:
            self._unpend(p)
            self._pend(p[0], p[1], p[2], p[3], p[4], p[5], p[6])
        for order in self.orders.values():
            leaves = order[5]
            self._set_leaves(order, 0)
            self._set_leaves(order, leaves)

    def authenticate(self, account: str, token: str) -> str | None:
        if not self.ready:
            return "clearing_unavailable"
        acct = self.accounts.get(account)
        if acct is None:
            return "unknown_account"
        if not acct.token_hash or not hmac.compare_digest(acct.token_hash, hash_token(token)):
            return "invalid_token"
        return None

    # ------------------------------------------------------------------ checks
    def _reservation(self, symbol: str, price: int, leaves: int) -> int:
        """What `leaves` lots at `price` can cost at most, fees included.

        Fees truncate (`fee_for`), so the fees of the fills an order is split into never add up
        to more than the whole order's fee at the dearer rate.
        """
        notional = price * leaves * self.multipliers.get(symbol, 1)
        return notional + fee_for(notional, self._fee_bps)

    def check_new(
        self, account: str, clid: Any, symbol: str, side: str, qty: int, price: int | None
    ) -> str | None:
        """None if the order may go to the engine, else the reject reason."""
        acct = self.accounts.get(account)
        if acct is None:
            return "unknown_account"
        if price is None:
            if self.worst_price is None:
                return "no_price_protection"
            price = self.worst_price(symbol, side, qty)
            if price is None:
                return "no_price_protection"
            self._market_price = (account, clid, price)
        mult = self.multipliers.get(symbol, 1)
        if acct.max_order_notional is not None and price * qty * mult > acct.max_order_notional:
            return "max_order_notional"
        if side == "buy":
            if acct.max_position is not None and (
                acct.position(symbol) + acct.open_buy.get(symbol, 0) + qty > acct.max_position
            ):
                return "max_position"
            if self._reservation(symbol, price, qty) > acct.available_cash():
                return "insufficient_funds"
        else:
            after = acct.position(symbol) - acct.open_sell.get(symbol, 0) - qty
            if after < -acct.short_limit:
                return "insufficient_position" if acct.short_limit == 0 else "short_limit"
            if after < 0 and acct.short_margin and self.margin_shortfall(
                acct, symbol, qty, price
            ):
                return "insufficient_margin"
        return None

    def margin_shortfall(
        self, acct: AccountRisk, symbol: str, qty: int, price: int, instead_of: list | None = None,
    ) -> int:  # fmt: skip
        """What `acct` would lack for its initial margin, in the worst case, if it also sold
        `qty` `symbol` at `price` (replacing its open order `instead_of`, if given).

        The state judged: settled and pending cash and positions, less open buys'
        reservations and withdrawal holds; every open sell (and this one) filled at the lower of
        its price and the mark, fees at the dearer rate; every open buy's shares worth the
        lower of its price and the mark (nothing without a mark), its short cover not
        counted. A symbol that has not traded is marked at this order's price.
        """
        marks = self.marks
        if symbol not in marks:
            marks = {**marks, symbol: price}
        mult = self.multipliers
        fee_bps = self._fee_bps
        cash = acct.cash + acct.pending_cash - acct.reserved_cash - acct.held
        positions = dict(acct.positions)
        for s, q in acct.pending_pos.items():
            positions[s] = positions.get(s, 0) + q
        orders = [(symbol, "sell", price, qty)]
        orders += [(o[1], o[2], o[3], o[5]) for o in acct.live.values() if o is not instead_of]
        for s, side, p, q in orders:
            mark = marks.get(s)
            if side == "buy":
                if mark is not None:
                    cash += min(p, mark) * q * mult.get(s, 1)
                continue
            notional = (p if mark is None else min(p, mark)) * q * mult.get(s, 1)
            cash += notional - fee_for(notional, fee_bps)
            positions[s] = positions.get(s, 0) - q
        return margin_shortfall(cash, positions, marks, mult, acct.short_margin)

    def check_replace(self, account: str, order_id: int | None, qty: int, price: int | None) -> (
        str | None
    ):
        """A replace may only be refused for raising exposure beyond the rules."""
        order = self.orders.get(order_id) if order_id is not None else None
        acct = self.accounts.get(account)
        if order is None or acct is None or order[0] != account:
            return None  # the engine answers unknown or foreign orders itself
        _a, symbol, side, old_price, old_qty, leaves, res = order
        new_leaves = qty - (old_qty - leaves)
        if new_leaves <= 0:
            return None
        new_price = old_price if price is None else price
        if acct.max_order_notional is not None and (
            new_price * qty * self.multipliers.get(symbol, 1) > acct.max_order_notional
        ):
            return "max_order_notional"
        if side == "buy":
            extra = self._reservation(symbol, new_price, new_leaves) - res
            if extra > 0 and extra > acct.available_cash():
                return "insufficient_funds"
            if acct.max_position is not None and new_leaves > leaves and (
                acct.position(symbol) + acct.open_buy.get(symbol, 0) + new_leaves - leaves
                > acct.max_position
            ):
                return "max_position"
        else:
            after = acct.position(symbol) - acct.open_sell.get(symbol, 0) - (new_leaves - leaves)
            if new_leaves > leaves and after < -acct.short_limit:
                return "insufficient_position" if acct.short_limit == 0 else "short_limit"
            if (
                acct.short_margin and after < 0 and (new_leaves > leaves or new_price < old_price)
                and self.margin_shortfall(acct, symbol, new_leaves, new_price, order)
            ):  # fmt: skip
                return "insufficient_margin"
        return None

    # ------------------------------------------------------------------ from the engine
    def on_events(self, events: Iterable[tuple]) -> None:
        """Follow open orders and fills (engine event tuples, see `exchange.events`)."""
        for ev in events:
            kind = ev[0]
            if kind == "accepted":
                self.on_accepted(ev)
            elif kind == "trade":
                self._trade(ev)
            elif kind == "cancelled":
                self.on_cancelled(ev)
            elif kind == "replaced":
                order = self.orders.get(ev[3])
                if order is not None:
                    _k, _s, _sym, oid, _acct, price, qty, leaves, _kept, _ts = ev
                    if price is not None:
                        self._set_leaves(order, 0)
                        order[3] = price
                    order[4] = qty
                    self._set_leaves(order, leaves)
                    if leaves == 0:
                        del self.orders[oid]

    # `on_events` for one event of a known kind (the simulator's commonest path)
    def on_cancelled(self, ev: tuple) -> None:
        """A CANCELLED event: the order's leaves and reservation go."""
        order = self.orders.pop(ev[3], None)
        if order is not None:
            self._set_leaves(order, 0)

    def on_accepted(self, ev: tuple) -> None:
        """An ACCEPTED event: the order is followed, its leaves reserved."""
        _k, _s, symbol, oid, clid, account, side, _otype, price, qty, _tif, _ts = ev
        if price is None:  # a market order: reserved at the price its check used
            mp = self._market_price
            if mp is not None and mp[0] == account and mp[1] == clid:
                price = mp[2]
            else:  # replayed from the journal: the bound now (the band edge in an auction)
                bound = self.worst_price(symbol, side, qty) if self.worst_price else None
                price = bound or 0
        self._market_price = None
        order = [account, symbol, side, price, qty, 0, 0]
        self.orders[oid] = order
        self._set_leaves(order, qty)

    # ------------------------------------------------------------------ restart
    def snapshot_state(self) -> dict[str, Any]:
        """What the gate learnt from the exchange's events, as plain data for the exchange's
        snapshot: open orders and trades clearing had not settled yet. The rest (cash,
        positions, limits, settled_through) is clearing's and arrives again with its next
        `RiskState`."""
        return {
            "orders": [[oid, *order] for oid, order in self.orders.items()],
            "pending": [list(p[:7]) for p in self.pending],
            "settled_through": self.settled_through,
            "marks": dict(self.marks),
        }

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """The state `snapshot_state` saved, as if the events it summarises were replayed: each
        order's leaves are reserved again and each unsettled trade pended again."""
        self.settled_through = max(self.settled_through, int(state.get("settled_through", 0)))
        self.marks.update(state.get("marks") or {})
        for oid, account, symbol, side, price, qty, leaves, _res in state.get("orders", ()):
            order = [account, symbol, side, price, qty, 0, 0]
            self.orders[oid] = order
            self._set_leaves(order, leaves)
        for trade_id, buyer, seller, symbol, qty, price, aggressor in state.get("pending", ()):
            if trade_id > self.settled_through:
                self._pend(trade_id, buyer, seller, symbol, qty, price, aggressor)

    def _set_leaves(self, order: list[Any], leaves: int) -> None:
        """Move an order's leaves (and a buy's cash reservation) to `leaves`.

        Runs for every order event the gate follows, so the reservation is `_reservation`
        inlined (same integer maths).
        """
        account, symbol, side, price, _qty, old, res = order
        acct = self.accounts.get(account)
        if acct is None:  # a journal replay before clearing spoke: the state fills in later
            acct = self.accounts[account] = AccountRisk(account)
        order[5] = leaves
        if side == "buy":
            book = acct.open_buy
            if leaves:
                notional = price * leaves * self.multipliers.get(symbol, 1)
                new_res = notional + fee_for(notional, self._fee_bps)
            else:
                new_res = 0
            order[6] = new_res
            acct.reserved_cash += new_res - res
        else:
            book = acct.open_sell
        if leaves:
            acct.live[id(order)] = order
        elif old:
            acct.live.pop(id(order), None)
        n = book.get(symbol, 0) + leaves - old
        if n:
            book[symbol] = n
        elif symbol in book:
            del book[symbol]

    def _trade(self, ev: tuple) -> None:
        (_k, _s, symbol, trade_id, price, qty, aggressor, buy_oid, buyer, buy_leaves,
         sell_oid, seller, sell_leaves, _ts) = ev  # fmt: skip
        for oid, leaves in ((buy_oid, buy_leaves), (sell_oid, sell_leaves)):
            order = self.orders.get(oid)
            if order is not None:
                self._set_leaves(order, leaves)
                if leaves == 0:
                    del self.orders[oid]
        self.marks[symbol] = price
        if trade_id <= self.settled_through:
            return  # already in the settled balances (a journal replay after clearing spoke)
        self._pend(trade_id, buyer, seller, symbol, qty, price, aggressor)

    def _pend(
        self, trade_id: int, buyer: str, seller: str, symbol: str, qty: int, price: int,
        aggressor: str,
    ) -> None:  # fmt: skip
        notional = price * qty * self.multipliers.get(symbol, 1)
        fees = self.fees
        dbuy = -notional - fee_for(notional, fees.rate("taker" if aggressor == "buy" else "maker"))
        dsell = notional - fee_for(
            notional, fees.rate("taker" if aggressor == "sell" else "maker")
        )
        for name, dq, dc in ((buyer, qty, dbuy), (seller, -qty, dsell)):
            acct = self.accounts.get(name)
            if acct is None:
                acct = self.accounts[name] = AccountRisk(name)
            acct.pending_cash += dc
            acct.pending_debits += min(dc, 0)
            acct.pending_pos[symbol] = acct.pending_pos.get(symbol, 0) + dq
        self.pending.append((trade_id, buyer, seller, symbol, qty, price, aggressor, dbuy, dsell))
