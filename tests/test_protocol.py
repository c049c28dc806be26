"""Wire protocol tests: models, their invariants, and a codec that hostile bytes cannot break.

Strategies generate only *valid* messages, so a round-trip failure is a codec or model bug, never
a test artefact. The fuzz tests assert the codec's one promise to a process: whatever arrives,
`decode` returns a message or raises a `ProtocolError`, nothing else.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from exchange.protocol import (
    MAX_BATCH_COUNT,
    MAX_MESSAGE_SIZE,
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    Bar,
    BookDelta,
    BookSnapshot,
    CancelOrder,
    CancelReject,
    ExecutionReport,
    Goodbye,
    Heartbeat,
    InvalidMessage,
    Logon,
    LogonReply,
    MalformedMessage,
    MarketStatus,
    MassCancel,
    MassCancelReport,
    Message,
    MessageTooLarge,
    NewOrder,
    OpenOrders,
    OpenOrdersRequest,
    OrderInfo,
    ProtocolError,
    ProtocolReject,
    ReplaceOrder,
    ResendReply,
    ResendRequest,
    SnapshotRequest,
    SymbolControl,
    TapeReplay,
    TapeRequest,
    TopOfBook,
    Trade,
    TradeCapture,
    TradeReplay,
    TradeReplayRequest,
    UnknownMessageType,
    UnsupportedVersion,
    decode,
    decode_batch,
    encode,
    encode_batch,
)

I64_MAX = 2**63 - 1

# --------------------------------------------------------------------------------------------
# Strategies: valid field values, then valid messages
# --------------------------------------------------------------------------------------------

positive = st.integers(1, I64_MAX)
non_negative = st.integers(0, I64_MAX)
timestamps = non_negative
symbols = st.text(min_size=1, max_size=32)
ids = st.text(min_size=1, max_size=64)
entry_accounts = st.text(max_size=64)
texts = st.text(max_size=40)
reasons = st.text(min_size=1, max_size=64)
sides = st.sampled_from(["buy", "sell"])
aggressors = st.sampled_from(["buy", "sell", "none"])
order_types = st.sampled_from(["limit", "market"])
# Below 2**62 each, so that cum_qty + leaves_qty still fits in 64 bits.
halves = st.integers(0, 2**62 - 1)


@st.composite
def new_orders(draw: st.DrawFn) -> NewOrder:
    order_type = draw(order_types)
    return NewOrder(
        client_order_id=draw(ids),
        symbol=draw(symbols),
        side=draw(sides),
        order_type=order_type,
        qty=draw(positive),
        price=draw(positive) if order_type == "limit" else None,
        time_in_force=draw(st.sampled_from(["GTC", "DAY", "IOC", "FOK"])),
        post_only=draw(st.booleans()),
        stp=draw(st.sampled_from(["cancel_newest", "cancel_oldest", "cancel_both"])),
        account=draw(entry_accounts),
        ts=draw(timestamps),
    )


targets = st.one_of(
    st.tuples(positive, st.none()),
    st.tuples(st.none(), ids),
)


@st.composite
def cancel_orders(draw: st.DrawFn) -> CancelOrder:
    order_id, orig = draw(targets)
    return CancelOrder(
        client_order_id=draw(ids),
        symbol=draw(symbols),
        order_id=order_id,
        orig_client_order_id=orig,
        account=draw(entry_accounts),
        ts=draw(timestamps),
    )


@st.composite
def replace_orders(draw: st.DrawFn) -> ReplaceOrder:
    order_id, orig = draw(targets)
    return ReplaceOrder(
        client_order_id=draw(ids),
        symbol=draw(symbols),
        order_id=order_id,
        orig_client_order_id=orig,
        qty=draw(positive),
        price=draw(st.none() | positive),
        account=draw(entry_accounts),
        ts=draw(timestamps),
    )


mass_cancels = st.builds(
    MassCancel,
    client_order_id=ids,
    symbol=st.none() | symbols,
    account=entry_accounts,
    ts=timestamps,
)

EXEC_STATUS = {
    "new": ["new"],
    "trade": ["partially_filled", "filled"],
    "canceled": ["canceled"],
    "replaced": ["replaced"],
    "rejected": ["rejected"],
    "expired": ["expired"],
}


@st.composite
def execution_reports(draw: st.DrawFn) -> ExecutionReport:
    exec_type = draw(st.sampled_from(sorted(EXEC_STATUS)))
    is_trade = exec_type == "trade"
    cum_qty, leaves_qty = draw(halves), draw(halves)
    return ExecutionReport(
        order_id=draw(non_negative),
        client_order_id=draw(ids),
        account=draw(ids),
        symbol=draw(symbols),
        side=draw(sides),
        exec_type=exec_type,
        order_status=draw(st.sampled_from(EXEC_STATUS[exec_type])),
        order_type=draw(order_types),
        price=draw(st.none() | positive),
        qty=cum_qty + leaves_qty,
        cum_qty=cum_qty,
        leaves_qty=leaves_qty,
        cancelled_qty=draw(non_negative),
        last_qty=draw(positive) if is_trade else 0,
        last_price=draw(positive) if is_trade else draw(st.none() | positive),
        avg_price=draw(st.floats(0, 1e15, allow_nan=False, allow_infinity=False)),
        trade_id=draw(positive) if is_trade else None,
        reject_reason=draw(reasons) if exec_type == "rejected" else None,
        text=draw(texts),
        liquidity=draw(st.sampled_from([None, "maker", "taker", "auction"])),
        seq=draw(non_negative),
        ts=draw(timestamps),
    )


cancel_rejects = st.builds(
    CancelReject,
    client_order_id=ids,
    orig_client_order_id=st.none() | ids,
    order_id=st.none() | positive,
    symbol=st.none() | symbols,
    account=ids,
    response_to=st.sampled_from(["cancel", "replace", "mass_cancel"]),
    reject_reason=reasons,
    text=texts,
    ts=timestamps,
)
protocol_rejects = st.builds(
    ProtocolReject,
    reason=reasons,
    text=texts,
    ref_type=st.none() | st.text(max_size=64),
    ts=timestamps,
)
trades = st.builds(
    Trade,
    symbol=symbols,
    trade_id=positive,
    seq=non_negative,
    price=positive,
    qty=positive,
    aggressor_side=aggressors,
    ts=timestamps,
)
trade_captures = st.builds(
    TradeCapture,
    trade_id=positive,
    seq=non_negative,
    symbol=symbols,
    price=positive,
    qty=positive,
    buy_account=ids,
    sell_account=ids,
    buy_order_id=positive,
    sell_order_id=positive,
    aggressor_side=aggressors,
    ts=timestamps,
)
book_sides = st.one_of(st.tuples(st.none(), st.just(0)), st.tuples(positive, positive))


@st.composite
def tops_of_book(draw: st.DrawFn) -> TopOfBook:
    (bid_price, bid_qty), (ask_price, ask_qty) = draw(book_sides), draw(book_sides)
    return TopOfBook(
        symbol=draw(symbols),
        seq=draw(non_negative),
        bid_price=bid_price,
        bid_qty=bid_qty,
        ask_price=ask_price,
        ask_qty=ask_qty,
        last_price=draw(st.none() | positive),
        ts=draw(timestamps),
    )


@st.composite
def book_deltas(draw: st.DrawFn) -> BookDelta:
    qty, count = draw(st.one_of(st.just((0, 0)), st.tuples(positive, positive)))
    return BookDelta(
        symbol=draw(symbols),
        seq=draw(non_negative),
        side=draw(sides),
        price=draw(positive),
        qty=qty,
        count=count,
        ts=draw(timestamps),
    )


levels = st.lists(
    st.tuples(positive, positive, st.integers(1, 10_000)),
    unique_by=lambda level: level[0],
    max_size=20,
)
book_snapshots = st.builds(
    BookSnapshot,
    symbol=symbols,
    seq=non_negative,
    bids=levels.map(lambda side: sorted(side, reverse=True)),
    asks=levels.map(sorted),
    ts=timestamps,
)


@st.composite
def market_statuses(draw: st.DrawFn) -> MarketStatus:
    band = draw(st.lists(st.none() | positive, min_size=2, max_size=2))
    if None not in band:
        band.sort()
    return MarketStatus(
        symbol=draw(symbols),
        seq=draw(non_negative),
        phase=draw(st.sampled_from(["pre_open", "auction", "continuous", "halted", "closed"])),
        reason=draw(texts),
        band_low=band[0],
        band_high=band[1],
        halt_until=draw(st.none() | timestamps),
        ts=draw(timestamps),
    )


heartbeats = st.builds(Heartbeat, seq=non_negative, ts=timestamps)

logons = st.builds(Logon, account=ids, token=st.text(max_size=40), ts=timestamps)
logon_replies = st.builds(
    LogonReply,
    account=ids,
    accepted=st.booleans(),
    reason=st.none() | reasons,
    text=texts,
    symbols=st.lists(symbols, max_size=3),
    ts=timestamps,
)
open_orders_requests = st.builds(
    OpenOrdersRequest, request_id=ids, symbol=st.none() | symbols, ts=timestamps
)


@st.composite
def order_infos(draw: st.DrawFn) -> OrderInfo:
    order_type = draw(order_types)
    cum, leaves = draw(halves), draw(halves)
    return OrderInfo(
        order_id=draw(positive),
        client_order_id=draw(ids),
        symbol=draw(symbols),
        side=draw(sides),
        order_type=order_type,
        price=draw(positive) if order_type == "limit" else None,
        qty=cum + leaves,
        cum_qty=cum,
        leaves_qty=leaves,
        avg_price=draw(st.floats(0, 1e12)),
    )


open_orders = st.builds(
    OpenOrders, request_id=ids, orders=st.lists(order_infos(), max_size=5), ts=timestamps
)
snapshot_requests = st.builds(
    SnapshotRequest, symbol=symbols, depth=st.none() | st.integers(1, 100_000), ts=timestamps
)
symbol_controls = st.builds(
    SymbolControl, symbol=symbols, action=st.sampled_from(["halt", "resume"]),
    token=st.text(max_size=256), reason=st.text(max_size=64), ts=timestamps,
)  # fmt: skip
trade_replay_requests = st.builds(
    TradeReplayRequest,
    from_trade_id=positive,
    max_count=st.integers(1, 1000),
    token=st.text(max_size=40),
    ts=timestamps,
)
trade_replays = st.builds(
    TradeReplay,
    trades=st.lists(trade_captures, max_size=5),
    end_trade_id=non_negative,
    ts=timestamps,
)

resend_requests = st.builds(
    ResendRequest, request_id=ids, from_seq=positive, max_count=st.integers(1, 100),
    ts=timestamps,
)  # fmt: skip
resend_replies = st.builds(
    ResendReply, request_id=ids, from_seq=positive, next_seq=positive, last_seq=non_negative,
    first_seq=non_negative, complete=st.booleans(), ts=timestamps,
)  # fmt: skip
tape_requests = st.builds(
    TapeRequest, symbol=symbols, from_seq=positive, max_count=st.integers(1, 300), ts=timestamps
)
tape_replays = st.builds(
    TapeReplay, symbol=symbols, from_seq=positive, trades=st.lists(trades, max_size=5),
    last_seq=non_negative, first_seq=non_negative, complete=st.booleans(), ts=timestamps,
)  # fmt: skip


@st.composite
def bars(draw: st.DrawFn) -> Bar:
    prices = sorted(draw(st.lists(positive, min_size=4, max_size=4)))
    low, high = prices[0], prices[-1]
    open_, close = draw(st.permutations(prices[1:3]))
    return Bar(
        symbol=draw(symbols),
        seq=draw(non_negative),
        start_ts=draw(timestamps),
        interval_ns=draw(positive),
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=draw(positive),
        trades=draw(positive),
        ts=draw(timestamps),
    )


mass_cancel_reports = st.builds(
    MassCancelReport,
    client_order_id=ids,
    symbol=st.none() | symbols,
    cancelled=non_negative,
    ts=timestamps,
)
goodbyes = st.builds(Goodbye, reason=texts, ts=timestamps)

STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "new_order": new_orders(),
    "cancel_order": cancel_orders(),
    "replace_order": replace_orders(),
    "mass_cancel": mass_cancels,
    "execution_report": execution_reports(),
    "cancel_reject": cancel_rejects,
    "protocol_reject": protocol_rejects,
    "trade": trades,
    "trade_capture": trade_captures,
    "top_of_book": tops_of_book(),
    "book_delta": book_deltas(),
    "book_snapshot": book_snapshots,
    "market_status": market_statuses(),
    "heartbeat": heartbeats,
    "logon": logons,
    "logon_reply": logon_replies,
    "open_orders_request": open_orders_requests,
    "open_orders": open_orders,
    "snapshot_request": snapshot_requests,
    "symbol_control": symbol_controls,
    "trade_replay_request": trade_replay_requests,
    "trade_replay": trade_replays,
    "resend_request": resend_requests,
    "resend_reply": resend_replies,
    "tape_request": tape_requests,
    "tape_replay": tape_replays,
    "bar": bars(),
    "mass_cancel_report": mass_cancel_reports,
    "goodbye": goodbyes,
}
messages = st.one_of(*STRATEGIES.values())


def limit_order(**changes: Any) -> dict[str, Any]:
    """A valid new order as a wire dict, with `changes` applied (to break it on purpose)."""
    fields = NewOrder(
        client_order_id="c1", symbol="ACME", side="buy", order_type="limit", qty=5, price=100
    ).model_dump()
    fields.update(changes)
    return fields


def report(**changes: Any) -> dict[str, Any]:
    """A valid partial-fill execution report as a wire dict, with `changes` applied."""
    fields: dict[str, Any] = {
        "order_id": 7,
        "client_order_id": "c1",
        "account": "alice",
        "symbol": "ACME",
        "side": "buy",
        "exec_type": "trade",
        "order_status": "partially_filled",
        "order_type": "limit",
        "price": 100,
        "qty": 10,
        "cum_qty": 4,
        "leaves_qty": 6,
        "last_qty": 4,
        "last_price": 100,
        "avg_price": 100.0,
        "trade_id": 1,
        "liquidity": "maker",
        "seq": 3,
    }
    fields.update(changes)
    return fields


def packed(fields: Any) -> bytes:
    return msgpack.packb(fields, use_bin_type=True)


# --------------------------------------------------------------------------------------------
# Models and registry
# --------------------------------------------------------------------------------------------


def test_every_message_type_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(MESSAGE_TYPES)


@pytest.mark.parametrize("tag", sorted(MESSAGE_TYPES))
def test_registry_tags_and_defaults(tag: str) -> None:
    model = MESSAGE_TYPES[tag]
    assert model.model_fields["type"].default == tag
    assert model.model_fields["v"].default == PROTOCOL_VERSION == 1
    assert model.model_fields["ts"].default == 0
    assert model.model_config["strict"] and model.model_config["frozen"]
    assert model.model_config["extra"] == "forbid"


def test_models_are_frozen() -> None:
    beat = Heartbeat(seq=1)
    with pytest.raises(ValidationError):
        beat.seq = 2  # type: ignore[misc]
    assert beat.seq == 1


def test_constructor_refuses_coercion() -> None:
    with pytest.raises(ValidationError, match="qty"):
        NewOrder.model_validate(limit_order(qty="5"))
    with pytest.raises(ValidationError, match="extra"):
        NewOrder.model_validate(limit_order(colour="red"))


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", sorted(STRATEGIES))
@given(data=st.data())
def test_round_trip_every_type(tag: str, data: st.DataObject) -> None:
    msg = data.draw(STRATEGIES[tag])
    decoded = decode(encode(msg))
    assert type(decoded) is type(msg)
    assert decoded == msg


@given(msg=messages)
def test_discriminated_union_picks_the_right_model(msg: BaseModel) -> None:
    parsed = TypeAdapter(Message).validate_python(msg.model_dump())
    assert type(parsed) is type(msg)
    assert parsed == msg


@given(batch=st.lists(messages, max_size=8))
def test_batch_round_trip(batch: list[BaseModel]) -> None:
    assert decode_batch(encode_batch(batch)) == batch


def test_longest_strings_round_trip() -> None:
    # 4-byte UTF-8 characters at every maximum length: the unpack limits must leave room.
    wide = "\U0001f600"
    msg = ExecutionReport.model_validate(
        report(client_order_id=wide * 64, account=wide * 64, symbol=wide * 32, text=wide * 1024)
    )
    assert decode(encode(msg)) == msg


def test_snapshot_levels_come_back_as_tuples() -> None:
    snap = BookSnapshot(symbol="ACME", seq=9, bids=[(101, 5, 2), (100, 1, 1)], asks=[(102, 3, 1)])
    decoded = decode(encode(snap))
    assert isinstance(decoded, BookSnapshot)
    assert decoded.bids == [(101, 5, 2), (100, 1, 1)]
    assert all(type(level) is tuple for level in decoded.bids + decoded.asks)


def test_snapshot_levels_stay_strict() -> None:
    # Accepting lists for tuples must not loosen the ints inside them.
    fields = BookSnapshot(symbol="ACME", seq=1).model_dump() | {"bids": [["101", 5, 2]]}
    with pytest.raises(InvalidMessage, match="bids"):
        decode(packed(fields))


# --------------------------------------------------------------------------------------------
# Model invariants
# --------------------------------------------------------------------------------------------


@given(msg=execution_reports(), delta=st.integers(-5, 5).filter(bool))
def test_report_qty_must_equal_cum_plus_leaves(msg: ExecutionReport, delta: int) -> None:
    fields = msg.model_dump() | {"qty": msg.qty + delta}
    if fields["qty"] < 0:
        fields["qty"] = msg.qty + abs(delta)
    with pytest.raises(ValidationError, match="cum_qty"):
        ExecutionReport.model_validate(fields)
    with pytest.raises(InvalidMessage, match="cum_qty"):
        decode(packed(fields))


def test_cancelled_report_keeps_qty_equal_to_filled() -> None:
    cancelled = ExecutionReport.model_validate(
        report(
            exec_type="canceled",
            order_status="canceled",
            qty=4,
            leaves_qty=0,
            cancelled_qty=6,
            last_qty=0,
        )
    )
    assert cancelled.qty == cancelled.cum_qty + cancelled.leaves_qty == 4
    assert cancelled.cancelled_qty == 6


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"last_qty": 0}, "last_qty"),  # a trade without a fill
        ({"exec_type": "new", "order_status": "new"}, "last_qty"),  # a fill without a trade
        ({"last_price": None}, "last_price"),
        ({"trade_id": None}, "trade_id"),
        ({"reject_reason": "unknown_symbol"}, "reject_reason"),  # not a rejection
        ({"avg_price": float("nan")}, "avg_price"),
        ({"avg_price": -1.0}, "avg_price"),
    ],
)
def test_report_invariants(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ExecutionReport.model_validate(report(**changes))


def test_rejected_report_requires_a_reason() -> None:
    rejected = {
        "exec_type": "rejected",
        "order_status": "rejected",
        "order_id": 0,
        "qty": 0,
        "cum_qty": 0,
        "leaves_qty": 0,
        "last_qty": 0,
        "trade_id": None,
        "last_price": None,
    }
    with pytest.raises(ValidationError, match="reject_reason"):
        ExecutionReport.model_validate(report(**rejected))
    ok = ExecutionReport.model_validate(report(**rejected, reject_reason="price_off_tick"))
    assert ok.reject_reason == "price_off_tick"


def test_limit_needs_a_price_and_market_refuses_one() -> None:
    with pytest.raises(ValidationError, match="limit order requires a price"):
        NewOrder.model_validate(limit_order(price=None))
    with pytest.raises(ValidationError, match="market order must not have a price"):
        NewOrder.model_validate(limit_order(order_type="market"))
    market = NewOrder.model_validate(limit_order(order_type="market", price=None))
    assert market.price is None
    with pytest.raises(InvalidMessage, match="limit order requires a price"):
        decode(packed(limit_order(price=None)))


@pytest.mark.parametrize("model", [CancelOrder, ReplaceOrder])
def test_cancel_and_replace_need_exactly_one_target(model: type[BaseModel]) -> None:
    base: dict[str, Any] = {"client_order_id": "c2", "symbol": "ACME"}
    if model is ReplaceOrder:
        base["qty"] = 3
    for target in ({}, {"order_id": 7, "orig_client_order_id": "c1"}):
        with pytest.raises(ValidationError, match="exactly one"):
            model.model_validate(base | target)
    by_id = model.model_validate(base | {"order_id": 7})
    by_clid = model.model_validate(base | {"orig_client_order_id": "c1"})
    assert (by_id.order_id, by_clid.orig_client_order_id) == (7, "c1")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("model", "fields", "message"),
    [
        (BookDelta, {"side": "buy", "price": 5, "qty": 0, "count": 2}, "both be 0"),
        (BookDelta, {"side": "buy", "price": 5, "qty": 3, "count": 0}, "both be 0"),
        (TopOfBook, {"bid_price": None, "bid_qty": 5}, "bid_qty"),
        (TopOfBook, {"ask_price": 10, "ask_qty": 0}, "ask_qty"),
        (BookSnapshot, {"bids": [(100, 1, 1), (101, 1, 1)]}, "descending"),
        (BookSnapshot, {"bids": [(100, 1, 1), (100, 2, 1)]}, "descending"),
        (BookSnapshot, {"asks": [(101, 1, 1), (101, 2, 1)]}, "ascending"),
        (BookSnapshot, {"bids": [(100, 0, 1)]}, "greater than 0"),
        (MarketStatus, {"phase": "halted", "band_low": 10, "band_high": 9}, "band_low"),
    ],
)
def test_market_data_invariants(
    model: type[BaseModel], fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        model.model_validate({"symbol": "ACME", "seq": 1, **fields})


# --------------------------------------------------------------------------------------------
# Decoding hostile input
# --------------------------------------------------------------------------------------------


def decode_or_protocol_error(data: Any, *, batch: bool = False) -> None:
    """Decoding may succeed or raise ProtocolError; any other exception fails the test."""
    try:
        result = decode_batch(data) if batch else [decode(data)]
    except ProtocolError as exc:
        assert exc.reason in {cls.reason for cls in ERROR_REASONS}
        return
    assert all(type(msg) in MESSAGE_TYPES.values() for msg in result)


ERROR_REASONS = {
    MessageTooLarge: "message_too_large",
    MalformedMessage: "malformed",
    UnknownMessageType: "unknown_type",
    UnsupportedVersion: "unsupported_version",
    InvalidMessage: "invalid_message",
}


def test_error_reasons_are_stable() -> None:
    for cls, reason in ERROR_REASONS.items():
        assert issubclass(cls, ProtocolError)
        assert cls.reason == reason
        assert cls("x").to_reject(ts=5) == ProtocolReject(reason=reason, text="x", ts=5)


@given(data=st.binary(max_size=512))
def test_random_bytes_only_raise_protocol_errors(data: bytes) -> None:
    decode_or_protocol_error(data)
    decode_or_protocol_error(data, batch=True)


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=10)
    | st.binary(max_size=10)
    | st.sampled_from([*MESSAGE_TYPES, "buy", "limit", PROTOCOL_VERSION]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["type", "v", "qty", "price", "bids"])
            | st.integers(-(2**63), 2**64 - 1),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@given(value=msgpack_values)
def test_random_msgpack_values_only_raise_protocol_errors(value: Any) -> None:
    decode_or_protocol_error(msgpack.packb(value, use_bin_type=True))


@given(msg=messages, data=st.data())
def test_mutated_messages_only_raise_protocol_errors(msg: BaseModel, data: st.DataObject) -> None:
    raw = bytearray(encode(msg))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] = data.draw(st.integers(0, 255))
    decode_or_protocol_error(bytes(raw))
    decode_or_protocol_error(bytes(raw[:index]))


WRONG_VALUES: dict[str, list[Any]] = {
    "qty": ["5", 1.5, True, -1, [1]],
    "price": ["100", 1.5, False, 0, {"ticks": 1}],
    "side": ["BUY", "b", 1, b"buy"],
    "symbol": [5, "", "X" * 33, b"ACME"],
    "seq": ["1", 1.0, -1, True],
    "ts": ["0", 0.5, -1, 2**64 - 1],
}


@given(msg=messages, key=st.sampled_from(sorted(WRONG_VALUES)))
def test_wrong_field_types_are_invalid(msg: BaseModel, key: str) -> None:
    # A wrong value for a field the message has, or any value for one it lacks, is invalid.
    for value in WRONG_VALUES[key]:
        with pytest.raises(InvalidMessage) as caught:
            decode(packed(msg.model_dump() | {key: value}))
        assert caught.value.ref_type == msg.type  # type: ignore[attr-defined]
        assert key in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"qty": "5"}, "qty"),
        ({"qty": 5.0}, "qty"),
        ({"qty": True}, "qty"),
        ({"qty": 0}, "qty"),
        ({"price": 1.5}, "price"),
        ({"price": -1}, "price"),
        ({"price": 2**63}, "price"),
        ({"side": "BUY"}, "side"),
        ({"symbol": ""}, "symbol"),
        ({"symbol": "X" * 33}, "symbol"),
        ({"client_order_id": b"c1"}, "client_order_id"),
        ({"post_only": 1}, "post_only"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_fields_are_named(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidMessage) as caught:
        decode(packed(limit_order(**changes)))
    assert f"{field}:" in str(caught.value)
    assert caught.value.reason == "invalid_message"
    assert caught.value.ref_type == "new_order"


def test_summary_lists_several_fields() -> None:
    with pytest.raises(InvalidMessage) as caught:
        decode(packed(limit_order(qty="5", side="BUY")))
    assert "qty:" in str(caught.value)
    assert "side:" in str(caught.value)


def test_unknown_type() -> None:
    with pytest.raises(UnknownMessageType) as caught:
        decode(packed({"type": "launch_missiles", "v": 1}))
    assert caught.value.reason == "unknown_type"
    assert caught.value.ref_type == "launch_missiles"


@pytest.mark.parametrize(
    "fields",
    [
        {"v": 1},  # no type
        {"type": 5, "v": 1},
        {"type": None, "v": 1},
        {"type": ["heartbeat"], "v": 1},
    ],
)
def test_missing_or_non_string_type_is_malformed(fields: dict[str, Any]) -> None:
    with pytest.raises(MalformedMessage):
        decode(packed(fields))


@pytest.mark.parametrize("version", [0, 2, -1, True, "1", 1.0, None, "missing"])
def test_version_mismatch(version: Any) -> None:
    fields = Heartbeat(seq=1).model_dump()
    if version == "missing":
        del fields["v"]
    else:
        fields["v"] = version
    with pytest.raises(UnsupportedVersion) as caught:
        decode(packed(fields))
    assert caught.value.ref_type == "heartbeat"


def test_oversized_payload_is_refused_before_unpacking() -> None:
    # Not even msgpack: the size check must come first.
    with pytest.raises(MessageTooLarge):
        decode(b"\xc1" * (MAX_MESSAGE_SIZE + 1))
    beat = encode(Heartbeat())
    assert decode(beat, max_size=len(beat)) == Heartbeat()
    with pytest.raises(MessageTooLarge):
        decode(beat, max_size=len(beat) - 1)


def test_encode_refuses_a_frame_the_receiver_would_refuse() -> None:
    deep = BookSnapshot(
        symbol="ACME", seq=1, bids=[(I64_MAX - i, I64_MAX, 10_000) for i in range(3000)]
    )
    with pytest.raises(MessageTooLarge):
        encode(deep)
    assert decode(encode(deep, max_size=1 << 20), max_size=1 << 20) == deep


def test_encode_refuses_non_wire_models() -> None:
    class Impostor(BaseModel):
        type: str = "heartbeat"
        v: int = 1

    with pytest.raises(TypeError):
        encode(Impostor())


@pytest.mark.parametrize(
    "data",
    [
        encode(Heartbeat()) + b"\x00",  # trailing garbage
        encode(Heartbeat()) + encode(Heartbeat()),  # two messages in one frame
        encode(Heartbeat())[:-1],  # truncated
        b"",
        b"\xc1",  # never-used msgpack byte
        b"\x81\xa4type\xa9heartbea",  # string cut short
        b"\x81\xa4type\xa2\xff\xfe",  # invalid UTF-8
    ],
)
def test_malformed_frames(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode(data)


def test_non_string_keys_duplicate_keys_and_extensions_are_malformed() -> None:
    key, value = msgpack.packb("type"), msgpack.packb("heartbeat")
    version = msgpack.packb("v") + msgpack.packb(1)
    cases = [
        packed({1: "heartbeat"}),
        packed({b"type": "heartbeat", "v": 1}),  # bin key
        b"\x83" + key + value + key + value + version,  # duplicate key
        packed({"type": "heartbeat", "v": 1, "seq": msgpack.ExtType(1, b"x")}),
        packed({"type": "heartbeat", "v": 1, "ts": msgpack.Timestamp(1)}),
    ]
    for data in cases:
        with pytest.raises(MalformedMessage):
            decode(data)
    assert decode(b"\x82" + key + value + version) == Heartbeat()  # the same bytes, no duplicate


@pytest.mark.parametrize(
    "bomb",
    [
        b"\x91" * 60_000 + b"\xc0",  # arrays nested 60k deep
        b"\x81\xa1a" * 20_000 + b"\xc0",  # maps nested 20k deep
        b"\xdd\xff\xff\xff\xff",  # an array claiming 4 billion items
        b"\xdf\xff\xff\xff\xff",  # a map claiming 4 billion pairs
        b"\xdb\xff\xff\xff\xff",  # a string claiming 4 GiB
    ],
)
def test_bombs_are_malformed(bomb: bytes) -> None:
    assert len(bomb) <= MAX_MESSAGE_SIZE
    with pytest.raises(MalformedMessage):
        decode(bomb)


def test_deep_nesting_inside_a_field_is_refused() -> None:
    nested: Any = 1
    for _ in range(200):
        nested = [nested]
    with pytest.raises(InvalidMessage, match="bids"):
        decode(packed(BookSnapshot(symbol="ACME", seq=1).model_dump() | {"bids": nested}))


def test_decode_refuses_non_bytes() -> None:
    with pytest.raises(MalformedMessage):
        decode("not bytes")


# --------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------


def test_batch_must_be_an_array() -> None:
    with pytest.raises(MalformedMessage, match="array"):
        decode_batch(encode(Heartbeat()))


def test_batch_count_limit() -> None:
    beats = [Heartbeat(seq=i) for i in range(MAX_BATCH_COUNT + 1)]
    with pytest.raises(MessageTooLarge):
        encode_batch(beats)
    data = encode_batch(beats, max_count=len(beats))
    with pytest.raises(MessageTooLarge):
        decode_batch(data)
    assert decode_batch(data, max_count=len(beats)) == beats


def test_one_bad_message_rejects_the_batch() -> None:
    good = Heartbeat().model_dump()
    data = packed([good, good | {"seq": -1}])
    with pytest.raises(InvalidMessage, match="message 1") as caught:
        decode_batch(data)
    assert caught.value.ref_type == "heartbeat"
    with pytest.raises(UnknownMessageType, match="message 0"):
        decode_batch(packed([{"type": "nope", "v": 1}]))


def test_reject_for_a_protocol_error_round_trips() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(packed(limit_order(qty="5")))
    reject = caught.value.to_reject(ts=42)
    assert reject.reason == "invalid_message"
    assert reject.ref_type == "new_order"
    assert "qty" in reject.text
    assert decode(encode(reject)) == reject


# --------------------------------------------------------------------------------------------
# Session and service messages
# --------------------------------------------------------------------------------------------


def _bar(**changes: Any) -> dict[str, Any]:
    fields = {
        "type": "bar", "v": 1, "symbol": "ACME", "seq": 1, "start_ts": 0, "interval_ns": 10,
        "open": 100, "high": 105, "low": 99, "close": 101, "volume": 7, "trades": 3,
    }  # fmt: skip
    fields.update(changes)
    return fields


@pytest.mark.parametrize(
    "changes",
    [{"high": 100, "close": 101}, {"low": 102}, {"open": 106}, {"volume": 0}, {"trades": 0}],
)
def test_bar_must_be_consistent(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidMessage):
        decode(packed(_bar(**changes)))


def test_bar_round_trip() -> None:
    bar = decode(packed(_bar()))
    assert isinstance(bar, Bar) and decode(encode(bar)) == bar


def test_nested_messages_round_trip_and_validate_their_elements() -> None:
    info = OrderInfo(
        order_id=1, client_order_id="c", symbol="ACME", side="buy", order_type="limit",
        price=100, qty=5, cum_qty=2, leaves_qty=3, avg_price=100.0,
    )  # fmt: skip
    listing = OpenOrders(request_id="r", orders=[info, info])
    assert decode(encode(listing)) == listing
    bad = listing.model_dump()
    bad["orders"][1]["side"] = "hold"
    with pytest.raises(InvalidMessage, match=r"orders\.1\.side"):
        decode(packed(bad))
    capture = TradeCapture(
        trade_id=3, seq=1, symbol="ACME", price=100, qty=1, buy_account="a", sell_account="b",
        buy_order_id=1, sell_order_id=2, aggressor_side="buy",
    )  # fmt: skip
    page = TradeReplay(trades=[capture], end_trade_id=3)
    assert decode(encode(page)) == page
    wrong = page.model_dump()
    wrong["trades"][0]["qty"] = 0
    with pytest.raises(InvalidMessage):
        decode(packed(wrong))


def test_logon_needs_an_account() -> None:
    with pytest.raises(InvalidMessage):
        decode(packed({"type": "logon", "v": 1, "account": ""}))


@pytest.mark.parametrize(
    ("open_", "high", "low", "close"),
    [
        (100, 100, 100, 100),  # a bar of one trade: every price the same
        (99, 105, 99, 105),  # opened at the low, closed at the high
        (105, 105, 99, 99),  # and the other way round
    ],
)
def test_bar_bounds_are_inclusive(open_: int, high: int, low: int, close: int) -> None:
    bar = decode(packed(_bar(open=open_, high=high, low=low, close=close)))
    assert isinstance(bar, Bar)
    assert (bar.open, bar.high, bar.low, bar.close) == (open_, high, low, close)


def test_bar_with_high_and_low_swapped_names_the_rule() -> None:
    with pytest.raises(InvalidMessage, match="low <= open, close <= high"):
        decode(packed(_bar(high=99, low=105, open=100, close=100)))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"order_id": 0}, "order_id"),  # exchange ids start at 1
        ({"qty": "5"}, "qty"),  # strictness reaches into the nested model...
        ({"price": 100.0}, "price"),
        ({"colour": "red"}, "colour"),  # ...and so does extra="forbid"
    ],
)
def test_open_orders_elements_are_strict(changes: dict[str, Any], field: str) -> None:
    info = {
        "order_id": 1, "client_order_id": "c", "symbol": "ACME", "side": "buy",
        "order_type": "limit", "price": 100, "qty": 5, "cum_qty": 2, "leaves_qty": 3,
    }  # fmt: skip
    fields = OpenOrders(request_id="r").model_dump() | {"orders": [info | changes]}
    with pytest.raises(InvalidMessage) as caught:
        decode(packed(fields))
    assert f"orders.0.{field}" in str(caught.value)
    assert caught.value.ref_type == "open_orders"


def test_trade_replay_elements_come_back_as_captures() -> None:
    capture = TradeCapture(
        trade_id=3, seq=1, symbol="ACME", price=100, qty=1, buy_account="a", sell_account="b",
        buy_order_id=1, sell_order_id=2, aggressor_side="buy",
    )  # fmt: skip
    page = decode(encode(TradeReplay(trades=[capture, capture], end_trade_id=9)))
    assert isinstance(page, TradeReplay)
    assert [type(trade) for trade in page.trades] == [TradeCapture, TradeCapture]
    empty = TradeReplay(end_trade_id=0)  # an exchange with no trades yet
    assert decode(encode(empty)) == empty


@pytest.mark.parametrize(
    ("model", "fields", "field"),
    [
        (TradeReplayRequest, {"from_trade_id": 0}, "from_trade_id"),  # trade ids start at 1
        (TradeReplayRequest, {"from_trade_id": 1, "max_count": 1001}, "max_count"),
        (SnapshotRequest, {"symbol": "ACME", "depth": 0}, "depth"),
        (OpenOrdersRequest, {"request_id": ""}, "request_id"),
        (Logon, {"account": "a", "token": "x" * 257}, "token"),
    ],
)
def test_service_request_bounds(model: type[BaseModel], fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        model.model_validate(fields)


# --------------------------------------------------------------------------------------------
# numpy integers are integers; numpy floats and bools are not
# --------------------------------------------------------------------------------------------

np = pytest.importorskip("numpy")

NUMPY_INTS = [np.int64, np.int32, np.int16, np.int8, np.uint64, np.uint32, np.uint16, np.uint8]


@pytest.mark.parametrize("kind", NUMPY_INTS, ids=lambda k: k.__name__)
def test_numpy_integers_are_taken_as_ints(kind: Any) -> None:
    order = NewOrder(client_order_id="c1", symbol="ACME", side="buy", order_type="limit",
                     qty=kind(7), price=kind(100))  # fmt: skip
    assert (order.qty, order.price) == (7, 100)
    assert type(order.qty) is int and type(order.price) is int
    back = decode(encode(order))
    assert back == order and type(back.qty) is int
    replace = ReplaceOrder(client_order_id="r1", symbol="ACME", order_id=kind(3), qty=kind(9),
                           price=kind(101))  # fmt: skip
    assert (replace.order_id, replace.qty, replace.price) == (3, 9, 101)
    cancel = CancelOrder(client_order_id="x1", symbol="ACME", order_id=kind(3))
    assert cancel.order_id == 3 and type(cancel.order_id) is int
    validated = NewOrder.model_validate(limit_order(qty=kind(7), price=kind(100)))
    assert (validated.qty, validated.price) == (7, 100) and type(validated.qty) is int


@pytest.mark.parametrize(
    "bad", [np.float64(5.0), np.float32(5.0), np.bool_(True), True, 5.0, "5"],
    ids=lambda b: type(b).__name__,
)
def test_numpy_floats_and_bools_are_still_refused(bad: Any) -> None:
    with pytest.raises(ValidationError, match="qty") as info:
        NewOrder(client_order_id="c1", symbol="ACME", side="buy", order_type="limit", qty=bad,
                 price=100)  # fmt: skip
    assert "valid integer" in str(info.value)
    with pytest.raises(ValidationError, match="price"):
        NewOrder(client_order_id="c1", symbol="ACME", side="buy", order_type="limit", qty=5,
                 price=bad)  # fmt: skip
    with pytest.raises(InvalidMessage, match="qty"):  # on the wire too (msgpack packs floats)
        decode(packed(limit_order(qty=float(bad)) if not isinstance(bad, str) else
                      limit_order(qty=bad)))  # fmt: skip


def test_numpy_integer_bounds_still_apply() -> None:
    with pytest.raises(ValidationError, match="qty"):
        NewOrder(client_order_id="c1", symbol="ACME", side="buy", order_type="limit",
                 qty=np.int64(0), price=100)  # fmt: skip
    with pytest.raises(ValidationError, match="qty"):
        NewOrder(client_order_id="c1", symbol="ACME", side="buy", order_type="limit",
                 qty=np.uint64(2**64 - 1), price=100)  # fmt: skip


def test_trade_epoch_bits_match_the_engine() -> None:
    from exchange.engine import EPOCH_BITS
    from exchange.protocol import TRADE_EPOCH_BITS

    assert EPOCH_BITS == TRADE_EPOCH_BITS


# --------------------------------------------------------------------------------------------
# A cancel or replace names its order's symbol
# --------------------------------------------------------------------------------------------


def _two_symbol_engine() -> Any:
    from exchange.engine import Engine
    from exchange.symbols import SymbolSpec

    engine = Engine([SymbolSpec(symbol="S"), SymbolSpec(symbol="T")])
    [acc, *_] = engine.submit("S", "buy", "limit", 5, 9_990, "alice", "a1", "GTC", 1)
    return engine, acc[3]


@pytest.mark.parametrize("by", ["order_id", "client_order_id"])
def test_cancel_or_replace_naming_another_symbol_is_refused(by: str) -> None:
    from exchange.reports import Reporter, execute

    engine, oid = _two_symbol_engine()
    target: dict[str, Any] = {"order_id": oid} if by == "order_id" else {
        "orig_client_order_id": "a1"}  # fmt: skip
    reporter = Reporter()
    reporter.translate_raw(engine.submit("T", "sell", "limit", 1, 10_100, "bob", "b1", "GTC", 2))
    for msg in (CancelOrder(client_order_id="x1", symbol="T", **target),
                ReplaceOrder(client_order_id="r1", symbol="T", qty=9, **target)):  # fmt: skip
        events = execute(engine, msg, 3, "alice")
        assert [(e[0], e[7]) for e in events] == [("rejected", "symbol_mismatch")]
        [(_owner, reject)] = reporter.translate_raw(events, msg).private
        assert reject["reject_reason"] == "symbol_mismatch"
        assert reject["text"] == "symbol_mismatch: the order is in S, not T"
        assert CancelReject.model_validate(reject).symbol == "S"
    assert engine.order(oid).leaves == 5  # untouched
    assert engine.depth("S") == ([(9_990, 5, 1)], [])
    # someone else naming it (any symbol) hears nothing about it: not a symbol_mismatch
    for symbol in ("S", "T"):
        events = execute(engine, CancelOrder(client_order_id="x2", symbol=symbol, **target),
                         4, "mallory")  # fmt: skip
        assert events[0][0] == "rejected" and events[0][7] != "symbol_mismatch"
    # the right symbol works
    events = execute(engine, ReplaceOrder(client_order_id="r2", symbol="S", qty=4, **target),
                     5, "alice")  # fmt: skip
    assert events[0][0] == "replaced"
    events = execute(engine, CancelOrder(client_order_id="x3", symbol="S", **target), 6, "alice")
    assert events[0][0] == "cancelled" and engine.depth("S") == ([], [])


def test_the_engine_without_a_symbol_checks_nothing() -> None:
    engine, oid = _two_symbol_engine()  # (the simulator's calls name no symbol)
    assert engine.cancel("alice", oid, None, 2)[0][0] == "cancelled"


async def test_symbol_mismatch_and_numpy_quantities_on_a_real_exchange(tmp_path: Any) -> None:
    from agents.client import ExchangeClient
    from deploy.launch import start_exchange

    np_ = pytest.importorskip("numpy")
    symbols = '[{"symbol": "AGR"}, {"symbol": "BGR"}]'
    proc = start_exchange(tmp_path / "ex", AGORA_EXCHANGE_SYMBOLS=symbols)
    try:
        async with ExchangeClient("alice", gateway=proc.ready["gateway"]) as alice:
            ack = await alice.create_order("AGR", "buy", "limit", np_.int64(5), np_.uint16(9_990))
            assert ack.exec_type == "new" and (ack.qty, ack.price) == (5, 9_990)
            refused = await alice.cancel_order(ack.order_id, "BGR")
            assert refused.type == "cancel_reject" and refused.reject_reason == "symbol_mismatch"
            refused = await alice.edit_order(ack.order_id, "BGR", amount=3)
            assert refused.type == "cancel_reject" and refused.reject_reason == "symbol_mismatch"
            done = await alice.cancel_order(ack.order_id, "AGR")
            assert done.exec_type == "canceled" and done.cancelled_qty == 5
    finally:
        proc.stop()
