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
from exchange.symbols import SymbolSpec

__all__ = ["ClearingHouse", "Outcome"]


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

    # ------------------------------------------------------------------ settlement
    def settle(self, trades: Iterable[Mapping[str, Any]]) -> set[str]:
        """Settle a contiguous run of trade captures in one transaction; returns touched accounts.

        Duplicates (ids already settled) are skipped; a gap raises `OutOfOrder` before anything
        of the batch is settled (contiguity is checked first), so the ledger and the store never
        disagree.
        """
        ledger = self.ledger
        fresh = {t["trade_id"]: t for t in trades if t["trade_id"] > ledger.settled_through}
        batch = [fresh[i] for i in sorted(fresh)]  # duplicates within the batch collapse
        expected = ledger.settled_through + 1
        for t in batch:
            if t["trade_id"] != expected:
                raise OutOfOrder(expected, t["trade_id"])
            expected += 1
        if not batch:
            return set()
        changes: list[Change] = []
        try:
            for t in batch:
                out = ledger.settle(t)
                assert out is not None
                changes.extend(out)
            self.store.commit(ledger, changes, batch)
        except BaseException:
            self.reload()  # memory must never run ahead of the database
            raise
        return {c.account for c in changes}

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
                settled_through=ledger.settled_through,
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
                leverage=lim.leverage,
            ))  # fmt: skip
        return RiskState(
            settled_through=ledger.settled_through, full=full, accounts=states,
            fees=self.fees if full else None, multipliers=self.multipliers if full else None,
            released=list(released),
        )  # fmt: skip
