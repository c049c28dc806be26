"""The clearing house's account API: messages on its ROUTER socket (default tcp://127.0.0.1:5559).

Same conventions as the exchange protocol (`exchange.protocol`): msgpack maps with a ``type``
tag and a version, validated strictly by pydantic; every request carries a `request_id` that the
answer echoes; every refusal is a `ClearingReject` with a machine-readable reason.

Who may do what:

* admin (the admin token): open accounts, deposit, withdraw, set limits, list all accounts, and
  subscribe to risk state (the exchange's pre-trade gate does that);
* an account's owner (account + its token): its balances, positions, PnL, trade history, and a
  subscription to its own updates. Nobody reads another account's records.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgpack
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from clearing.fees import FeeSchedule
from clearing.ledger import Limits

__all__ = [
    "AccountBalance",
    "AccountList",
    "AccountOpened",
    "AccountState",
    "AccountUpdate",
    "Ack",
    "BalanceRequest",
    "ClearingMessage",
    "ClearingReject",
    "Deposit",
    "Heartbeat",
    "HoldReply",
    "HoldRequest",
    "ListAccounts",
    "OpenAccount",
    "PositionInfo",
    "RiskState",
    "RiskSubscribe",
    "SetLimits",
    "Subscribe",
    "TradeHistory",
    "TradeHistoryRequest",
    "TradeRecord",
    "Withdraw",
    "decode",
    "encode",
]

MAX_SIZE = 4 * 1024 * 1024

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:@-]+$")]
Token = Annotated[str, Field(max_length=256)]
RequestId = Annotated[str, Field(min_length=1, max_length=64)]
Amount = Annotated[int, Field(gt=0, le=2**62)]


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    v: int = 1


class _Request(_Msg):
    request_id: RequestId = "0"


class _Admin(_Request):
    admin_token: Token


class _Owner(_Request):
    account: Name
    token: Token


class OpenAccount(_Admin):
    """Open an account; `account` None lets clearing name it. Cash/positions default to the
    clearing's starting allocation."""

    type: Literal["open_account"] = "open_account"
    account: Name | None = None
    cash: Annotated[int, Field(ge=0, le=2**62)] | None = None
    positions: dict[str, Annotated[int, Field(ge=0)]] | None = None
    limits: Limits | None = None
    if_exists: Literal["error", "rotate"] = Field(
        "error",
        description="an existing account: refuse, or issue it a new token (its balances "
        "stay; a restarted agent runner takes its accounts back this way)",
    )


class AccountOpened(_Msg):
    type: Literal["account_opened"] = "account_opened"
    request_id: RequestId
    account: Name
    token: Token  # the account's secret: shown once, stored only as a hash


class Deposit(_Admin):
    type: Literal["deposit"] = "deposit"
    account: Name
    amount: Amount


class Withdraw(_Admin):
    type: Literal["withdraw"] = "withdraw"
    account: Name
    amount: Amount


class SetLimits(_Admin):
    type: Literal["set_limits"] = "set_limits"
    account: Name
    limits: Limits


class ListAccounts(_Admin):
    type: Literal["list_accounts"] = "list_accounts"


class RiskSubscribe(_Admin):
    """The exchange's gate: send every account's `AccountState` now and on every change."""

    type: Literal["risk_subscribe"] = "risk_subscribe"
    gate: bool = False  # True: a pre-trade gate, which must also answer `HoldRequest`s


class HoldRequest(_Msg):
    """Clearing -> the exchange's gate: set `amount` of `account`'s cash aside for a withdrawal.

    A withdrawal must not take cash that open orders or fills not yet settled already count
    on; only the gate knows those, so it holds the amount (or refuses) before clearing pays
    out. The hold is released by the `RiskState` that carries the withdrawal (`released`).
    """

    type: Literal["hold_request"] = "hold_request"
    hold_id: RequestId
    account: Name
    amount: Amount


class HoldReply(_Msg):
    type: Literal["hold_reply"] = "hold_reply"
    hold_id: RequestId
    ok: bool
    reason: str | None = None


class BalanceRequest(_Owner):
    type: Literal["balance_request"] = "balance_request"


class Subscribe(_Owner):
    """Push this account's `AccountUpdate` on every change (and one now)."""

    type: Literal["subscribe"] = "subscribe"


class TradeHistoryRequest(_Owner):
    type: Literal["trade_history_request"] = "trade_history_request"
    after_trade_id: Annotated[int, Field(ge=0)] = 0
    limit: Annotated[int, Field(gt=0, le=1000)] = 100


class PositionInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbol: str
    qty: int
    avg_cost: float
    realised: int
    unrealised: int
    mark: int | None


class AccountBalance(_Msg):
    """An account's balances and PnL (cash units; `pnl` = realised + unrealised - fees)."""

    type: Literal["account_balance"] = "account_balance"
    request_id: RequestId = "0"
    account: Name
    cash: int
    deposits: int
    fees_paid: int
    equity: int
    pnl: int
    positions: list[PositionInfo] = []
    limits: Limits = Limits()
    settled_through: int
    fees: FeeSchedule | None = None  # what the account pays: its own book-keeping agrees
    multipliers: dict[str, int] | None = None  # cash units per tick x lot, per symbol
    # equity it lacks for its maintenance margin on shorts at the marks: > 0 is a margin call
    margin_shortfall: int = 0


class AccountUpdate(_Msg):
    type: Literal["account_update"] = "account_update"
    balance: AccountBalance


class AccountList(_Msg):
    type: Literal["account_list"] = "account_list"
    request_id: RequestId
    accounts: list[AccountBalance]
    settled_through: int
    # Trades refused because their id already named a different settled trade (an exchange
    # fault: must stay 0; each one is in the store's trade_conflicts and the error log).
    trade_conflicts: int = 0


class TradeRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    trade_id: int
    ts: int
    symbol: str
    side: Literal["buy", "sell"]
    price: int
    qty: int
    fee: int
    liquidity: Literal["maker", "taker", "auction"]


class TradeHistory(_Msg):
    type: Literal["trade_history"] = "trade_history"
    request_id: RequestId
    account: Name
    trades: list[TradeRecord]
    next_after: int | None  # ask again from here; None: no more


class AccountState(BaseModel):
    """What the exchange's gate needs of one account (settled balances and rules)."""

    model_config = ConfigDict(extra="forbid")
    account: str
    token_hash: str
    cash: int
    positions: dict[str, int]
    credit_limit: int
    short_limit: int
    max_position: int | None
    max_order_notional: int | None
    leverage: float = 1.0
    short_margin: float = 0.0


class RiskState(_Msg):
    """Settled state as of trade `settled_through`: all accounts (`full`) or the changed ones."""

    type: Literal["risk_state"] = "risk_state"
    settled_through: int
    full: bool
    accounts: list[AccountState]
    fees: FeeSchedule | None = None  # on full states: the gate computes fees as clearing does
    multipliers: dict[str, int] | None = None
    released: list[str] = []  # withdrawal holds these balances now include (or abandoned)
    holds: list[str] | None = None  # on full states: the holds clearing still waits on
    seq: int = 0  # per clearing process, +1 per state sent: a gap means a lost update
    marks: dict[str, int] | None = None  # settled last prices (ticks): margin's marks


class ClearingReject(_Msg):
    type: Literal["clearing_reject"] = "clearing_reject"
    request_id: RequestId | None = None
    ref_type: str | None = None
    reason: str
    text: str = ""


class Ack(_Msg):
    """A carried-out admin operation that has nothing else to say (e.g. set_limits)."""

    type: Literal["ack"] = "ack"
    request_id: RequestId


class Heartbeat(_Msg):
    type: Literal["heartbeat"] = "heartbeat"
    settled_through: int


ClearingMessage = Annotated[
    OpenAccount | AccountOpened | Deposit | Withdraw | SetLimits | ListAccounts | RiskSubscribe
    | BalanceRequest | Subscribe | TradeHistoryRequest | AccountBalance | AccountUpdate
    | AccountList | TradeHistory | RiskState | ClearingReject | Ack | Heartbeat | HoldRequest
    | HoldReply,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(ClearingMessage)


class ClearingProtocolError(ValueError):
    def __init__(self, reason: str, text: str, ref_type: str | None = None) -> None:
        super().__init__(text)
        self.reason = reason
        self.ref_type = ref_type


def encode(msg: BaseModel) -> bytes:
    return msgpack.packb(msg.model_dump(mode="python"), use_bin_type=True)


def decode(data: bytes) -> Any:
    """Bytes to a message model; a `ClearingProtocolError` (never a crash) on bad input."""
    if len(data) > MAX_SIZE:
        raise ClearingProtocolError("oversized", f"{len(data)} bytes > {MAX_SIZE}")
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise ClearingProtocolError("malformed", f"not msgpack: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise ClearingProtocolError("malformed", "expected a map with a 'type' string")
    try:
        return _ADAPTER.validate_python(obj)
    except ValidationError as exc:
        kind = obj["type"][:64]
        first = exc.errors()[0]
        if first["type"] == "union_tag_invalid":
            raise ClearingProtocolError("unknown_type", f"unknown type {kind!r}", kind) from None
        where = ".".join(str(p) for p in first["loc"][1:])
        raise ClearingProtocolError(
            "invalid_field", f"{where}: {first['msg']}"[:1024], kind
        ) from None
