"""The wire messages: what processes and outside clients say to each other.

These models *are* the contract between processes (ARCHITECTURE.md), so they are deliberately
unforgiving: unknown fields are refused (``extra="forbid"``), types are not coerced
(``strict=True``: ``"5"`` is not a quantity, ``1.5`` is not a price) and instances are immutable
(``frozen=True``) so a message cannot change between being journalled and being sent. Field names
and meanings follow FIX, in snake_case.

Every model carries a ``type`` tag (the discriminator of :data:`Message`) and the protocol
version ``v``. Prices are integer ticks, quantities integer lots, timestamps integer nanoseconds.
Integers are bounded to the signed 64-bit range so any msgpack implementation, in any language,
can read every message we can write.
"""

from __future__ import annotations

from itertools import pairwise
from numbers import Integral
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "MESSAGE_TYPES",
    "PROTOCOL_VERSION",
    "TRADE_EPOCH_BITS",
    "Bar",
    "BookDelta",
    "BookSnapshot",
    "CancelOrder",
    "CancelReject",
    "ExecutionReport",
    "Goodbye",
    "Heartbeat",
    "Logon",
    "LogonReply",
    "MarketStatus",
    "MassCancel",
    "MassCancelReport",
    "Message",
    "NewOrder",
    "OpenOrders",
    "OpenOrdersRequest",
    "OrderInfo",
    "ProtocolReject",
    "ReplaceOrder",
    "ResendReply",
    "ResendRequest",
    "SnapshotRequest",
    "SymbolControl",
    "TapeReplay",
    "TapeRequest",
    "TopOfBook",
    "Trade",
    "TradeCapture",
    "TradeReplay",
    "TradeReplayRequest",
]

PROTOCOL_VERSION: Final = 1

TRADE_EPOCH_BITS: Final = 32
"""A trade id is ``epoch << TRADE_EPOCH_BITS | n``: the exchange's incarnation (epoch) and a
count from 1 within it. Ids only increase; within an epoch they are contiguous, and the first
trade of a later epoch has ``n == 1`` (what comes between is told by the journal's replay)."""

_I64_MAX: Final = 2**63 - 1

# Shared field types. Each bound is part of the contract, so it is declared exactly once.
Price = Annotated[int, Field(gt=0, le=_I64_MAX)]  # ticks
Qty = Annotated[int, Field(gt=0, le=_I64_MAX)]  # lots, in a request: must be positive
NonNegInt = Annotated[int, Field(ge=0, le=_I64_MAX)]  # fills, remainders, counts, seq numbers
Id = Annotated[int, Field(gt=0, le=_I64_MAX)]  # exchange-assigned order and trade ids start at 1
Timestamp = Annotated[int, Field(ge=0, le=_I64_MAX)]  # nanoseconds
Symbol = Annotated[str, Field(min_length=1, max_length=32)]
Account = Annotated[str, Field(min_length=1, max_length=64)]
ClientOrderId = Annotated[str, Field(min_length=1, max_length=64)]
# On order entry the account is stamped by the gateway from the session, never trusted from the
# client, so "" (not yet stamped) is legal there.
EntryAccount = Annotated[str, Field(max_length=64)]
Reason = Annotated[str, Field(min_length=1, max_length=64)]  # a machine-readable reason code
Text = Annotated[str, Field(max_length=1024)]  # free text for humans

Side = Literal["buy", "sell"]
AggressorSide = Literal["buy", "sell", "none"]  # "none": an auction uncross has no aggressor
OrderType = Literal["limit", "market"]
Count = Annotated[int, Field(gt=0, le=_I64_MAX)]  # orders at a price level
Level = tuple[Price, Qty, Count]  # (price, total qty, number of orders) of one price level


def _plain_int(value: Any) -> Any:
    """A numpy (or any other registered) integer as the int it is; anything else unchanged.

    Strict validation then refuses what is not an integer: floats (numpy's too: np.float64 is
    a float), bools (np.bool_ is not an `Integral`), strings.
    """
    if value.__class__ is int or value.__class__ is bool or not isinstance(value, Integral):
        return value
    return int(value)


class _Wire(BaseModel):
    """Base of every wire message: the strictness policy lives here and only here."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    v: int = PROTOCOL_VERSION
    ts: Timestamp = 0

    def __init__(self, /, **data: Any) -> None:
        # Built in Python (the SDK, a strategy), a quantity is often a numpy integer: take it
        # as the integer it is. Pydantic calls a custom __init__ from `model_validate` too, so
        # this covers every way of building a model; on the codec's path (msgpack gives plain
        # ints and strs) it is one pass of class checks (bench/reports.py: no measurable cost).
        for key, value in data.items():
            if value.__class__ is not int and value.__class__ is not str and value is not None:
                data[key] = _plain_int(value)
        super().__init__(**data)


def _exactly_one_target(order_id: int | None, orig_client_order_id: str | None) -> None:
    """Cancel/replace name their target once: two ids that disagree would be ambiguous."""
    if (order_id is None) == (orig_client_order_id is None):
        raise ValueError("exactly one of order_id and orig_client_order_id is required")


# --------------------------------------------------------------------------------------------
# Order entry: client -> exchange
# --------------------------------------------------------------------------------------------


class NewOrder(_Wire):
    """Submit an order (FIX NewOrderSingle)."""

    type: Literal["new_order"] = "new_order"
    client_order_id: ClientOrderId
    symbol: Symbol
    side: Side
    order_type: OrderType
    qty: Qty
    price: Price | None = None
    time_in_force: Literal["GTC", "DAY", "IOC", "FOK"] = "GTC"
    post_only: bool = False
    stp: Literal["cancel_newest", "cancel_oldest", "cancel_both"] = "cancel_newest"
    account: EntryAccount = ""

    @model_validator(mode="after")
    def _price_matches_order_type(self) -> Self:
        # Refused here rather than by the engine: it is a malformed request, not a market event.
        if self.order_type == "limit" and self.price is None:
            raise ValueError("a limit order requires a price")
        if self.order_type == "market" and self.price is not None:
            raise ValueError("a market order must not have a price")
        return self


class CancelOrder(_Wire):
    """Cancel one order (FIX OrderCancelRequest); `client_order_id` identifies this request."""

    type: Literal["cancel_order"] = "cancel_order"
    client_order_id: ClientOrderId
    symbol: Symbol
    order_id: Id | None = None
    orig_client_order_id: ClientOrderId | None = None
    account: EntryAccount = ""

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        _exactly_one_target(self.order_id, self.orig_client_order_id)
        return self


class ReplaceOrder(_Wire):
    """Amend an order (FIX OrderCancelReplaceRequest).

    `qty` is the new *total* order quantity, fills included, as in FIX; `price=None` keeps the
    current price. Only a pure quantity decrease keeps time priority (the engine decides).
    """

    type: Literal["replace_order"] = "replace_order"
    client_order_id: ClientOrderId
    symbol: Symbol
    order_id: Id | None = None
    orig_client_order_id: ClientOrderId | None = None
    qty: Qty
    price: Price | None = None
    account: EntryAccount = ""

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        _exactly_one_target(self.order_id, self.orig_client_order_id)
        return self


class MassCancel(_Wire):
    """Cancel the account's orders in `symbol`, or everywhere when it is None (the kill switch)."""

    type: Literal["mass_cancel"] = "mass_cancel"
    client_order_id: ClientOrderId
    symbol: Symbol | None = None
    account: EntryAccount = ""


# --------------------------------------------------------------------------------------------
# Exchange -> client (private)
# --------------------------------------------------------------------------------------------


class ExecutionReport(_Wire):
    """Every change to an order, told to its owner (FIX ExecutionReport).

    Unlike FIX, `qty` is the quantity still *in force*, so ``qty == cum_qty + leaves_qty`` holds
    for every report and a client can check its books with one line. When an order is cancelled
    or expires, the removed part moves from `leaves_qty` to `cancelled_qty` and `qty` shrinks
    to `cum_qty`. `order_id` is 0 when the order was rejected before an id was assigned.
    `avg_price` (ticks, a float because an average need not be whole) is the only float on the
    wire.
    """

    type: Literal["execution_report"] = "execution_report"
    order_id: NonNegInt
    client_order_id: ClientOrderId
    account: Account
    symbol: Symbol
    side: Side
    exec_type: Literal["new", "trade", "canceled", "replaced", "rejected", "expired"]
    order_status: Literal[
        "new", "partially_filled", "filled", "canceled", "replaced", "rejected", "expired"
    ]
    order_type: OrderType
    price: Price | None = None
    qty: NonNegInt
    cum_qty: NonNegInt
    leaves_qty: NonNegInt
    cancelled_qty: NonNegInt = 0
    last_qty: NonNegInt = 0
    last_price: Price | None = None
    avg_price: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    trade_id: Id | None = None
    reject_reason: Reason | None = None
    text: Text = ""
    liquidity: Literal["maker", "taker", "auction"] | None = None
    seq: NonNegInt
    # The report's number among its account's reports (1, 2, 3 ...; 0: not sequenced, e.g. a
    # gateway's own reject). A client that sees a gap, or logs on again, asks for the missing
    # ones with a `ResendRequest`.
    account_seq: NonNegInt = 0

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.qty != self.cum_qty + self.leaves_qty:
            raise ValueError("qty must equal cum_qty + leaves_qty")
        is_trade = self.exec_type == "trade"
        if (self.last_qty > 0) != is_trade:
            raise ValueError("last_qty must be > 0 exactly when exec_type is 'trade'")
        if is_trade and (self.last_price is None or self.trade_id is None):
            raise ValueError("a trade report requires last_price and trade_id")
        if (self.reject_reason is not None) != (self.exec_type == "rejected"):
            raise ValueError("reject_reason must be set exactly when exec_type is 'rejected'")
        return self


class CancelReject(_Wire):
    """A cancel, replace or mass cancel was refused; the order is unchanged (FIX OrderCancelReject).

    `symbol` is None only when a mass cancel across all symbols is refused.
    """

    type: Literal["cancel_reject"] = "cancel_reject"
    client_order_id: ClientOrderId
    orig_client_order_id: ClientOrderId | None = None
    order_id: Id | None = None
    symbol: Symbol | None
    account: Account
    response_to: Literal["cancel", "replace", "mass_cancel"]
    reject_reason: Reason
    text: Text = ""


class ProtocolReject(_Wire):
    """Session-level reject: the input could not be decoded or validated (FIX Reject).

    It answers bytes, not an order, so it names no order; `ref_type` is the offending message's
    type tag when it could be read.
    """

    type: Literal["protocol_reject"] = "protocol_reject"
    reason: Reason
    text: Text = ""
    ref_type: Annotated[str, Field(max_length=64)] | None = None


# --------------------------------------------------------------------------------------------
# Market data: exchange -> anyone (TradeCapture: exchange -> clearing only)
# --------------------------------------------------------------------------------------------


class Trade(_Wire):
    """A public trade print. It names no accounts: who traded is private."""

    type: Literal["trade"] = "trade"
    symbol: Symbol
    trade_id: Id
    seq: NonNegInt
    price: Price
    qty: Qty
    aggressor_side: AggressorSide


class TradeCapture(_Wire):
    """The private drop copy of a trade for clearing; `trade_id` is the settlement key."""

    type: Literal["trade_capture"] = "trade_capture"
    trade_id: Id
    seq: NonNegInt
    symbol: Symbol
    price: Price
    qty: Qty
    buy_account: Account
    sell_account: Account
    buy_order_id: Id
    sell_order_id: Id
    aggressor_side: AggressorSide


class TopOfBook(_Wire):
    """Best bid and ask; a missing side has price None and qty 0."""

    type: Literal["top_of_book"] = "top_of_book"
    symbol: Symbol
    seq: NonNegInt
    bid_price: Price | None = None
    bid_qty: NonNegInt = 0
    ask_price: Price | None = None
    ask_qty: NonNegInt = 0
    last_price: Price | None = None

    @model_validator(mode="after")
    def _empty_side_has_no_qty(self) -> Self:
        if (self.bid_price is None) != (self.bid_qty == 0):
            raise ValueError("bid_qty must be 0 exactly when bid_price is None")
        if (self.ask_price is None) != (self.ask_qty == 0):
            raise ValueError("ask_qty must be 0 exactly when ask_price is None")
        return self


class BookDelta(_Wire):
    """The new total of one price level (L2); qty 0 and count 0 mean the level is gone.

    A subscriber applies deltas with ``seq`` greater than its snapshot's, in order; a gap in
    ``seq`` means it must fetch a new snapshot.
    """

    type: Literal["book_delta"] = "book_delta"
    symbol: Symbol
    seq: NonNegInt
    side: Side
    price: Price
    qty: NonNegInt
    count: NonNegInt

    @model_validator(mode="after")
    def _removed_level_is_empty(self) -> Self:
        if (self.qty == 0) != (self.count == 0):
            raise ValueError("qty and count must both be 0 (level removed) or both positive")
        return self


class BookSnapshot(_Wire):
    """The full L2 book as of engine sequence number `seq`, best levels first.

    Levels are ``(price, qty, count)``. The book may be crossed during an auction, so only the
    ordering within each side is checked. `phase` and the band are the symbol's now, for a
    subscriber that joined after the last `MarketStatus` (None: not said).
    """

    type: Literal["book_snapshot"] = "book_snapshot"
    symbol: Symbol
    seq: NonNegInt
    bids: list[Level] = []
    asks: list[Level] = []
    phase: Literal["pre_open", "auction", "continuous", "halted", "closed"] | None = None
    band_low: Price | None = None
    band_high: Price | None = None

    @field_validator("bids", "asks", mode="before")
    @classmethod
    def _lists_as_tuples(cls, value: Any) -> Any:
        # msgpack has no tuple: a decoded level comes back as a list. Turn exactly that back
        # into a tuple; everything else still meets strict validation.
        if isinstance(value, list):
            return [tuple(level) if isinstance(level, list) else level for level in value]
        return value

    @model_validator(mode="after")
    def _best_first(self) -> Self:
        bid_prices = [price for price, _, _ in self.bids]
        ask_prices = [price for price, _, _ in self.asks]
        if any(a <= b for a, b in pairwise(bid_prices)):
            raise ValueError("bids must be in strictly descending price order")
        if any(a >= b for a, b in pairwise(ask_prices)):
            raise ValueError("asks must be in strictly ascending price order")
        return self


class MarketStatus(_Wire):
    """The trading phase of a symbol changed (open, auction, halt, close) and its price band."""

    type: Literal["market_status"] = "market_status"
    symbol: Symbol
    seq: NonNegInt
    phase: Literal["pre_open", "auction", "continuous", "halted", "closed"]
    reason: Text = ""
    band_low: Price | None = None
    band_high: Price | None = None
    halt_until: Timestamp | None = None  # ns; when the reopening auction is expected

    @model_validator(mode="after")
    def _band_ordered(self) -> Self:
        low, high = self.band_low, self.band_high
        if low is not None and high is not None and low > high:
            raise ValueError("band_low must not exceed band_high")
        return self


class Heartbeat(_Wire):
    """Liveness on an otherwise quiet stream; `seq` is the stream's last sequence number."""

    type: Literal["heartbeat"] = "heartbeat"
    seq: NonNegInt = 0


# --------------------------------------------------------------------------------------------
# Sessions and services: logon, open orders, snapshots, trade replay, bars, goodbye
# --------------------------------------------------------------------------------------------

Token = Annotated[str, Field(max_length=256)]
RequestId = Annotated[str, Field(min_length=1, max_length=64)]


class Logon(_Wire):
    """First message on an order-entry connection: binds the connection to an account.

    Every later request on the connection acts for that account (the gateway stamps it; an
    `account` field in a request is ignored). `token` is the account's secret where the
    exchange checks one.
    """

    type: Literal["logon"] = "logon"
    account: Account
    token: Token = ""


class LogonReply(_Wire):
    """The answer to a `Logon`: accepted, or refused with a reason."""

    type: Literal["logon_reply"] = "logon_reply"
    account: Account
    accepted: bool
    reason: Reason | None = None
    text: Text = ""
    symbols: list[Symbol] = []  # what this exchange lists
    # The account's newest `ExecutionReport.account_seq`: a client that saw less missed some
    # (it asks with a `ResendRequest`); one that saw more talks to an exchange that lost them.
    account_seq: NonNegInt = 0


class OpenOrdersRequest(_Wire):
    """Ask for the session account's open orders (FIX OrderMassStatusRequest)."""

    type: Literal["open_orders_request"] = "open_orders_request"
    request_id: RequestId
    symbol: Symbol | None = None


class OrderInfo(BaseModel):
    """One open order as the exchange sees it (an element of `OpenOrders`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    order_id: Id
    client_order_id: ClientOrderId
    symbol: Symbol
    side: Side
    order_type: OrderType
    price: Price | None = None
    qty: NonNegInt
    cum_qty: NonNegInt
    leaves_qty: NonNegInt
    avg_price: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)


class OpenOrders(_Wire):
    """The answer to an `OpenOrdersRequest`, oldest order first."""

    type: Literal["open_orders"] = "open_orders"
    request_id: RequestId
    orders: list[OrderInfo] = []


class SnapshotRequest(_Wire):
    """Snapshot service: the L2 book of `symbol` to `depth` levels (None: all)."""

    type: Literal["snapshot_request"] = "snapshot_request"
    symbol: Symbol
    depth: Annotated[int, Field(gt=0, le=100_000)] | None = None


class SymbolControl(_Wire):
    """Snapshot service, admin only: halt a symbol (matching stops, orders are collected for
    the reopening auction) or resume it (the reopening auction runs, then continuous trading).

    `token` must be the exchange's admin token; without it the answer is a `ProtocolReject`
    (``not_authorised``). Accepted, the answer is the `MarketStatus` the feed publishes.
    """

    type: Literal["symbol_control"] = "symbol_control"
    symbol: Symbol
    action: Literal["halt", "resume"]
    token: Token = ""
    reason: Annotated[str, Field(max_length=64)] = ""


class TradeReplayRequest(_Wire):
    """Snapshot service: trade captures with ``trade_id >= from_trade_id``, from the journal.

    The reply holds at most `max_count` trades (and never more than fit in a frame); ask again
    from ``last_trade_id + 1`` until `end_trade_id` is reached.
    """

    type: Literal["trade_replay_request"] = "trade_replay_request"
    from_trade_id: Id
    max_count: Annotated[int, Field(gt=0, le=1000)] = 200
    token: Token = ""


class TradeReplay(_Wire):
    """A page of trade captures; `end_trade_id` is the newest trade the exchange has."""

    type: Literal["trade_replay"] = "trade_replay"
    trades: list[TradeCapture] = []
    end_trade_id: NonNegInt


class ResendRequest(_Wire):
    """Order entry: send again this session account's execution reports from `from_seq` on
    (FIX ResendRequest, by ``ExecutionReport.account_seq``).

    The reports come as they first did (same `account_seq`, so a client drops those it has),
    at most `max_count`, then a `ResendReply` says where they ended.
    """

    type: Literal["resend_request"] = "resend_request"
    request_id: RequestId
    from_seq: Id
    max_count: Annotated[int, Field(gt=0, le=100)] = 100  # (100 reports fit in one frame)


class ResendReply(_Wire):
    """After the reports a `ResendRequest` asked for: `next_seq` is the first not sent (ask
    again from it while it is <= `last_seq`, the account's newest report). The exchange keeps
    a window of each account's reports: when `from_seq` is older than `first_seq` (the oldest
    kept), reports in between are gone (`complete` is False) and the client must reconcile
    with the clearing house's trade history."""

    type: Literal["resend_reply"] = "resend_reply"
    request_id: RequestId
    from_seq: Id
    next_seq: Id
    last_seq: NonNegInt
    first_seq: NonNegInt
    complete: bool


class TapeRequest(_Wire):
    """Snapshot service, for anyone: the public trades of `symbol` from trades-stream sequence
    number `from_seq` on (the `seq` of `Trade` on topic ``"{symbol}|trades"``), to fill a gap
    or catch up after a restart. Public fields only: no accounts, no order ids."""

    type: Literal["tape_request"] = "tape_request"
    symbol: Symbol
    from_seq: Id
    max_count: Annotated[int, Field(gt=0, le=300)] = 300  # (300 prints fit in one frame)


class TapeReplay(_Wire):
    """A page of the public trade tape: `trades` in stream order; `last_seq` is the stream's
    newest; `first_seq` the oldest the exchange still keeps (0: none); if `from_seq` was older,
    the prints in between are gone (`complete` False)."""

    type: Literal["tape_replay"] = "tape_replay"
    symbol: Symbol
    from_seq: Id
    trades: list[Trade] = []
    last_seq: NonNegInt
    first_seq: NonNegInt
    complete: bool


class Bar(_Wire):
    """An OHLCV bar of one symbol's trades over [start_ts, start_ts + interval_ns)."""

    type: Literal["bar"] = "bar"
    symbol: Symbol
    seq: NonNegInt
    start_ts: Timestamp
    interval_ns: Annotated[int, Field(gt=0, le=_I64_MAX)]
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Qty
    trades: Count

    @model_validator(mode="after")
    def _ohlc_consistent(self) -> Self:
        if not (self.low <= min(self.open, self.close) <= max(self.open, self.close) <= self.high):
            raise ValueError("need low <= open, close <= high")
        return self


class MassCancelReport(_Wire):
    """The answer to a `MassCancel` that was carried out: how many orders it cancelled.

    The cancelled orders also get their own `canceled` execution reports, sent before this.
    """

    type: Literal["mass_cancel_report"] = "mass_cancel_report"
    client_order_id: ClientOrderId
    symbol: Symbol | None = None
    cancelled: NonNegInt


class Goodbye(_Wire):
    """The exchange is shutting down (sent on the feed and to connected sessions)."""

    type: Literal["goodbye"] = "goodbye"
    reason: Text = ""


Message = Annotated[
    NewOrder
    | CancelOrder
    | ReplaceOrder
    | MassCancel
    | ExecutionReport
    | CancelReject
    | ProtocolReject
    | Trade
    | TradeCapture
    | TopOfBook
    | BookDelta
    | BookSnapshot
    | MarketStatus
    | Heartbeat
    | Logon
    | LogonReply
    | OpenOrdersRequest
    | OpenOrders
    | SnapshotRequest
    | SymbolControl
    | TradeReplayRequest
    | TradeReplay
    | ResendRequest
    | ResendReply
    | TapeRequest
    | TapeReplay
    | Bar
    | MassCancelReport
    | Goodbye,
    Field(discriminator="type"),
]
"""Any wire message, discriminated by its ``type`` tag (usable as a pydantic field type)."""

MESSAGE_TYPES: dict[str, type[BaseModel]] = {
    model.model_fields["type"].default: model
    for model in (
        NewOrder,
        CancelOrder,
        ReplaceOrder,
        MassCancel,
        ExecutionReport,
        CancelReject,
        ProtocolReject,
        Trade,
        TradeCapture,
        TopOfBook,
        BookDelta,
        BookSnapshot,
        MarketStatus,
        Heartbeat,
        Logon,
        LogonReply,
        OpenOrdersRequest,
        OpenOrders,
        SnapshotRequest,
        SymbolControl,
        TradeReplayRequest,
        TradeReplay,
        ResendRequest,
        ResendReply,
        TapeRequest,
        TapeReplay,
        Bar,
        MassCancelReport,
        Goodbye,
    )
}
"""Type tag -> model class: the registry the codec decodes with."""
