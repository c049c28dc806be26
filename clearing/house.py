"""The clearing house's business: accounts, their API requests, settlement batches.

No sockets and no clock (the process, `clearing.server`, passes the time in): a request goes in,
a reply comes out, and the balances it touched are reported so the shell can push updates.
Every change is written to the store before its reply or update leaves, so what a client has
been told is always on disk.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from clearing.fees import FeeSchedule
from clearing.ledger import (
    FEE_ACCOUNT,
    Account,
    Change,
    Ledger,
    LedgerError,
    Limits,
    OutOfOrder,
    multiplier,
)
from clearing.protocol import (
    AccountBalance,
    AccountList,
    AccountOpened,
    AccountState,
    Ack,
    BalanceRequest,
    ClearingReject,
    Deposit,
    ListAccounts,
    OpenAccount,
    PositionInfo,
    RiskState,
    RiskSubscribe,
    SetLimits,
    Subscribe,
    TradeHistory,
    TradeHistoryRequest,
    TradeRecord,
    Withdraw,
)
from clearing.risk import hash_token
from clearing.store import Store
from exchange.protocol import TRADE_EPOCH_BITS
from exchange.symbols import SymbolSpec

__all__ = ["ClearingHouse", "Outcome"]

# What makes a trade that trade: a re-delivery must match all of it.
_CONTENT_KEYS = (
    "symbol", "price", "qty", "buy_account", "sell_account", "buy_order_id", "sell_order_id",
    "aggressor_side", "ts",
)  # fmt: skip
_EPOCH_MASK = (1 << TRADE_EPOCH_BITS) - 1


def _content(t: Mapping[str, Any]) -> tuple:
    return (
        t["symbol"], t["price"], t["qty"], t["buy_account"], t["sell_account"],
        t.get("buy_order_id", 0), t.get("sell_order_id", 0), t.get("aggressor_side", "none"),
        t.get("ts", 0),
    )  # fmt: skip


def _stored_content(row: Mapping[str, Any]) -> tuple:
    return (
        row["symbol"], row["price"], row["qty"], row["buy_account"], row["sell_account"],
        row["buy_order_id"], row["sell_order_id"], row["aggressor"], row["ts"],
    )  # fmt: skip


def _conflict(
    trade: Mapping[str, Any], settled: Mapping[str, Any] | None, reason: str
) -> dict[str, Any]:
    """A refused trade, as recorded: what came, and what the id already stands for."""
    return {
        "trade_id": trade["trade_id"], "reason": reason,
        "received": dict(zip(_CONTENT_KEYS, _content(trade), strict=True)),
        "settled": None if settled is None else dict(zip(
            _CONTENT_KEYS,
            _stored_content(settled) if "aggressor" in settled else _content(settled),
            strict=True,
        )),
    }  # fmt: skip


def _starts_epoch(trade_id: int, expected: int) -> bool:
    """Is `trade_id` the first trade of an epoch later than `expected`'s?"""
    return (
        trade_id & _EPOCH_MASK == 1
        and trade_id >> TRADE_EPOCH_BITS > (expected - 1) >> TRADE_EPOCH_BITS
    )


@dataclass
class Outcome:
    """What a request produced: the reply, and whose balances changed."""

    reply: Any
    touched: set[str] = field(default_factory=set)
    revoked: str | None = None  # an account whose token was replaced
    subscribe: str | None = None  # "risk" or an account name: the sender subscribes


class ClearingHouse:
    def __init__(
        self,
        store: Store,
        symbols: list[SymbolSpec],
        admin_token: str,
        fees: FeeSchedule | None = None,
        cash_unit: Decimal = Decimal("0.01"),
        starting_cash: int = 0,
        starting_positions: Mapping[str, int] | None = None,
        default_limits: Limits | None = None,
    ) -> None:
        self.store = store
        self.specs = {s.symbol: s for s in symbols}
        self.multipliers = {
            s.symbol: multiplier(s.tick_size, s.lot_size, cash_unit) for s in symbols
        }
        self.fees = fees or FeeSchedule()
        self.ledger = Ledger(self.fees, self.multipliers)
        store.load(self.ledger)
        self._admin_hash = hash_token(admin_token)
        self.starting_cash = starting_cash
        self.starting_positions = dict(starting_positions or {})
        self.default_limits = default_limits or Limits()
        # Trades refused because their id was already taken by a different trade: a fault of
        # the exchange (ids must never repeat), counted and kept for the operator.
        self.conflicts = store.conflict_count()
        self.new_conflicts: list[dict[str, Any]] = []  # not yet reported by the process

    # ------------------------------------------------------------------ settlement
    def settle(
        self, trades: Iterable[Mapping[str, Any]], from_journal: bool = False
    ) -> set[str]:
        """Settle a contiguous run of trade captures in one transaction; returns touched accounts.

        Exact re-deliveries (ids already settled, same content) are skipped: settling is
        idempotent. A trade whose id is taken by a *different* trade is a fault, never a
        duplicate: it is refused, recorded (`conflicts`, the store's ``trade_conflicts``) and
        left in `new_conflicts` for the process to raise the alarm. A gap raises `OutOfOrder`
        before anything of the batch is settled (contiguity is checked first), so the ledger
        and the store never disagree.

        `from_journal`: the batch is a page of the exchange's journal asked for from
        ``settled_through + 1``, in journal order, so its first trade follows what is settled
        even across a jump to a new exchange epoch (`Ledger.follow`).
        """
        ledger = self.ledger
        settled = ledger.settled_through
        fresh: dict[int, Mapping[str, Any]] = {}
        dups: dict[int, list[Mapping[str, Any]]] = {}
        conflicts: list[dict[str, Any]] = []
        for t in trades:
            tid = t["trade_id"]
            if tid <= settled:
                dups.setdefault(tid, []).append(t)
                continue
            first = fresh.setdefault(tid, t)
            if first is not t and _content(first) != _content(t):
                conflicts.append(_conflict(t, first, "conflicting_in_batch"))
        if dups:
            conflicts.extend(self._check_duplicates(dups))
        batch = [fresh[i] for i in sorted(fresh)]  # duplicates within the batch collapse
        expected = settled + 1
        for t in batch:
            tid = t["trade_id"]
            if tid != expected and not (from_journal and _starts_epoch(tid, expected)):
                if conflicts:  # refused for good, whatever happens to the gap
                    self._record_conflicts(conflicts)
                raise OutOfOrder(expected, tid)
            expected = tid + 1
        if not batch and not conflicts:
            return set()
        changes: list[Change] = []
        try:
            for t in batch:
                if t["trade_id"] != ledger.settled_through + 1:
                    ledger.follow(t["trade_id"])
                out = ledger.settle(t)
                assert out is not None
                changes.extend(out)
            self.store.commit(ledger, changes, batch, conflicts=conflicts)
        except BaseException:
            self.reload()  # memory must never run ahead of the database
            raise
        self.conflicts += len(conflicts)
        self.new_conflicts.extend(conflicts)
        return {c.account for c in changes}

    def _record_conflicts(self, conflicts: list[dict[str, Any]]) -> None:
        self.store.commit(self.ledger, [], conflicts=conflicts)
        self.conflicts += len(conflicts)
        self.new_conflicts.extend(conflicts)

    def _check_duplicates(
        self, dups: Mapping[int, list[Mapping[str, Any]]]
    ) -> list[dict[str, Any]]:
        """Re-deliveries of settled ids: each must be the very trade settled under that id."""
        stored = self.store.trades_by_id(list(dups))
        conflicts = []
        for tid, copies in dups.items():
            row = stored.get(tid)
            for t in copies:
                if row is None:
                    # below the settled point, but never settled: an id the exchange's journal
                    # said did not exist (skipped by an epoch change) now names a trade
                    conflicts.append(_conflict(t, None, "unknown_below_settled"))
                elif _content(t) != _stored_content(row):
                    conflicts.append(_conflict(t, row, "conflicting_duplicate"))
        return conflicts

    def reload(self) -> None:
        """Rebuild the ledger from the store (after a failed write)."""
        self.ledger = Ledger(self.fees, self.multipliers)
        self.store.load(self.ledger)

    # ------------------------------------------------------------------ requests
    def handle(self, msg: Any, ts: int) -> Outcome:
        try:
            return self._handle(msg, ts)
        except LedgerError as exc:
            return Outcome(self._reject(msg, exc.reason, str(exc)))
        except BaseException:
            self.reload()  # a failed write: memory must not keep what the store did not
            raise

    def _reject(self, msg: Any, reason: str, text: str = "") -> ClearingReject:
        return ClearingReject(
            request_id=getattr(msg, "request_id", None), ref_type=getattr(msg, "type", None),
            reason=reason, text=text or reason,
        )  # fmt: skip

    def _is_admin(self, token: str) -> bool:
        return hmac.compare_digest(self._admin_hash, hash_token(token))

    def _owner_error(self, account: str, token: str) -> str | None:
        acct = self.ledger.accounts.get(account)
        if acct is None or account == FEE_ACCOUNT:
            return "unknown_account"
        if not acct.token_hash or not hmac.compare_digest(acct.token_hash, hash_token(token)):
            return "invalid_token"
        return None

    def _handle(self, msg: Any, ts: int) -> Outcome:
        ledger = self.ledger
        if isinstance(msg, OpenAccount | Deposit | Withdraw | SetLimits | ListAccounts
                      | RiskSubscribe):  # fmt: skip
            if not self._is_admin(msg.admin_token):
                return Outcome(self._reject(msg, "not_authorised", "admin token required"))
        elif isinstance(msg, BalanceRequest | Subscribe | TradeHistoryRequest):
            error = self._owner_error(msg.account, msg.token)
            if error is not None:
                return Outcome(self._reject(msg, error, f"{error}: {msg.account}"))
        else:
            return Outcome(self._reject(msg, "unexpected_message", f"{msg.type} is not a request"))

        if isinstance(msg, OpenAccount) and msg.account in ledger.accounts and (
            msg.if_exists == "rotate" and msg.account != FEE_ACCOUNT
        ):
            token = secrets.token_urlsafe(24)
            ledger.accounts[msg.account].token_hash = hash_token(token)
            self.store.commit(ledger, [], touched=[msg.account])
            return Outcome(AccountOpened(request_id=msg.request_id, account=msg.account,
                                         token=token), {msg.account}, revoked=msg.account)
        if isinstance(msg, OpenAccount):
            name = msg.account or f"acct-{len(ledger.accounts)}"
            while msg.account is None and name in ledger.accounts:
                name = f"acct-{len(ledger.accounts)}-{secrets.token_hex(2)}"
            token = secrets.token_urlsafe(24)
            changes = ledger.open_account(
                name,
                cash=self.starting_cash if msg.cash is None else msg.cash,
                positions=self.starting_positions if msg.positions is None else msg.positions,
                limits=msg.limits or self.default_limits,
                token_hash=hash_token(token),
                cost_prices={s: spec.reference_price for s, spec in self.specs.items()},
                ts=ts,
            )
            self.store.commit(ledger, changes, touched=[name])
            return Outcome(AccountOpened(request_id=msg.request_id, account=name, token=token),
                           {name})  # fmt: skip
        if isinstance(msg, Deposit | Withdraw):
            op = ledger.deposit if isinstance(msg, Deposit) else ledger.withdraw
            change = op(msg.account, msg.amount, ts)
            self.store.commit(ledger, [change])
            return Outcome(self.balance(ledger.accounts[msg.account], msg.request_id),
                           {msg.account})  # fmt: skip
        if isinstance(msg, SetLimits):
            ledger.set_limits(msg.account, msg.limits)
            self.store.commit(ledger, [], touched=[msg.account])
            return Outcome(Ack(request_id=msg.request_id), {msg.account})
        if isinstance(msg, ListAccounts):
            accounts = [  # the fee terms once per account would bloat a large list
                self.balance(a).model_copy(update={"fees": None, "multipliers": None})
                for n, a in ledger.accounts.items() if n != FEE_ACCOUNT
            ]
            accounts.sort(key=lambda b: b.pnl, reverse=True)
            return Outcome(AccountList(
                request_id=msg.request_id, accounts=accounts,
                settled_through=ledger.settled_through, trade_conflicts=self.conflicts,
            ))  # fmt: skip
        if isinstance(msg, RiskSubscribe):
            return Outcome(self.risk_state(None), subscribe="risk")
        if isinstance(msg, BalanceRequest):
            return Outcome(self.balance(ledger.accounts[msg.account], msg.request_id))
        if isinstance(msg, Subscribe):
            return Outcome(self.balance(ledger.accounts[msg.account], msg.request_id),
                           subscribe=msg.account)  # fmt: skip
        assert isinstance(msg, TradeHistoryRequest)
        rows = self.store.trades_of(msg.account, msg.after_trade_id, msg.limit)
        records = []
        for r in rows:
            side = "buy" if r["buy_account"] == msg.account else "sell"
            agg = r["aggressor"]
            records.append(TradeRecord(
                trade_id=r["trade_id"], ts=r["ts"], symbol=r["symbol"], side=side,
                price=r["price"], qty=r["qty"],
                fee=r["buy_fee"] if side == "buy" else r["sell_fee"],
                liquidity="auction" if agg == "none" else ("taker" if agg == side else "maker"),
            ))  # fmt: skip
        nxt = records[-1].trade_id if len(records) == msg.limit else None
        return Outcome(TradeHistory(
            request_id=msg.request_id, account=msg.account, trades=records, next_after=nxt,
        ))  # fmt: skip

    def check_withdraw(self, msg: Withdraw) -> ClearingReject | None:
        """Would `msg` be carried out (admin token, account, funds)? Changes nothing."""
        if not self._is_admin(msg.admin_token):
            return self._reject(msg, "not_authorised", "admin token required")
        acct = self.ledger.accounts.get(msg.account)
        if acct is None or msg.account == FEE_ACCOUNT:
            return self._reject(msg, "unknown_account", f"no account {msg.account!r}")
        deposits = acct.deposits - msg.amount
        credit = int((acct.limits.leverage - 1.0) * max(deposits, 0))
        if acct.cash - msg.amount < -credit:
            return self._reject(msg, "insufficient_funds",
                                f"{msg.account}: cash {acct.cash} cannot cover {msg.amount}")
        return None

    # ------------------------------------------------------------------ views
    def balance(self, acct: Account, request_id: str = "0") -> AccountBalance:
        ledger = self.ledger
        positions = [
            PositionInfo(
                symbol=s, qty=p.qty, avg_cost=p.avg_cost, realised=p.realised,
                unrealised=ledger.unrealised(acct, s), mark=ledger.marks.get(s),
            )
            for s, p in sorted(acct.positions.items())
        ]
        return AccountBalance(
            request_id=request_id, account=acct.account, cash=acct.cash, deposits=acct.deposits,
            fees_paid=acct.fees_paid, equity=ledger.equity(acct), pnl=ledger.pnl(acct),
            positions=positions, limits=acct.limits, settled_through=ledger.settled_through,
            fees=self.fees, multipliers=self.multipliers,
            margin_shortfall=ledger.margin_shortfall(acct),
        )  # fmt: skip

    def risk_state(self, names: Iterable[str] | None, released: Iterable[str] = ()) -> RiskState:
        """Settled state for the exchange's gate: every account (names None) or those named."""
        ledger = self.ledger
        full = names is None
        chosen = ledger.accounts.keys() if names is None else names
        states = []
        for name in chosen:
            acct = ledger.accounts.get(name)
            if acct is None or name == FEE_ACCOUNT:
                continue
            lim = acct.limits
            states.append(AccountState(
                account=name, token_hash=acct.token_hash, cash=acct.cash,
                positions={s: p.qty for s, p in acct.positions.items()},
                credit_limit=acct.credit_limit, short_limit=lim.short_limit,
                max_position=lim.max_position, max_order_notional=lim.max_order_notional,
                leverage=lim.leverage, short_margin=lim.short_margin,
            ))  # fmt: skip
        return RiskState(
            settled_through=ledger.settled_through, full=full, accounts=states,
            fees=self.fees if full else None, multipliers=self.multipliers if full else None,
            released=list(released), marks=dict(ledger.marks),
        )  # fmt: skip
