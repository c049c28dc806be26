"""The edge translation: a wire request in, execution reports and market data out."""

from __future__ import annotations

from exchange.engine import Engine
from exchange.protocol import (
    CancelOrder,
    CancelReject,
    ExecutionReport,
    MassCancel,
    NewOrder,
    ReplaceOrder,
    decode,
    encode,
)
from exchange.reports import Reporter, execute
from exchange.symbols import SymbolSpec


def _round_trip(engine: Engine, reporter: Reporter, msg, ts: int):
    """Encode, decode, execute, translate, and put every produced message through the codec."""
    request = decode(encode(msg))
    box = reporter.translate(execute(engine, request, ts), request)
    for _, m in box.private:
        assert decode(encode(m)) == m
    for m in [*box.public, *box.drop_copy]:
        assert decode(encode(m)) == m
    return box


def test_order_from_encode_to_trades_and_reports() -> None:
    engine, reporter = Engine([SymbolSpec(symbol="AGR")]), Reporter()
    sell = NewOrder(client_order_id="s1", symbol="AGR", side="sell", order_type="limit", qty=5,
                    price=10_000, account="alice")  # fmt: skip
    box = _round_trip(engine, reporter, sell, 1)
    assert [(a, r.exec_type, r.order_status, r.leaves_qty) for a, r in box.private] == [
        ("alice", "new", "new", 5)
    ]
    assert [(d.side, d.price, d.qty, d.count) for d in box.public] == [("sell", 10_000, 5, 1)]

    buy = NewOrder(client_order_id="b1", symbol="AGR", side="buy", order_type="limit", qty=3,
                   price=10_001, account="bob")  # fmt: skip
    box = _round_trip(engine, reporter, buy, 2)
    fills = [(a, r) for a, r in box.private if r.exec_type == "trade"]
    assert [
        (a, r.liquidity, r.last_qty, r.last_price, r.cum_qty, r.leaves_qty) for a, r in fills
    ] == [
        ("bob", "taker", 3, 10_000, 3, 0),
        ("alice", "maker", 3, 10_000, 3, 2),
    ]
    assert fills[0][1].order_status == "filled" and fills[1][1].order_status == "partially_filled"
    assert fills[0][1].avg_price == 10_000.0
    (capture,) = box.drop_copy
    assert (capture.buy_account, capture.sell_account, capture.qty) == ("bob", "alice", 3)
    assert [type(m).__name__ for m in box.public] == ["Trade", "BookDelta"]

    # Replace down keeps priority, then cancel: the cancel report says what was removed.
    amend = ReplaceOrder(client_order_id="s1-r", symbol="AGR", orig_client_order_id="s1", qty=4,
                         account="alice")  # fmt: skip
    ((_, replaced),) = _round_trip(engine, reporter, amend, 3).private
    assert (replaced.exec_type, replaced.qty, replaced.cum_qty, replaced.leaves_qty) == (
        "replaced", 4, 3, 1,
    )  # fmt: skip
    cancel = CancelOrder(client_order_id="s1-c", symbol="AGR", orig_client_order_id="s1",
                         account="alice")  # fmt: skip
    ((_, cancelled),) = _round_trip(engine, reporter, cancel, 4).private
    assert (cancelled.exec_type, cancelled.qty, cancelled.cum_qty, cancelled.leaves_qty) == (
        "canceled", 3, 3, 0,
    )  # fmt: skip
    assert cancelled.cancelled_qty == 1
    assert len(reporter) == 0  # nothing open, nothing remembered


def test_rejects_become_reports_with_reasons() -> None:
    engine, reporter = Engine([SymbolSpec(symbol="AGR", band_bps=100)]), Reporter()
    far = NewOrder(client_order_id="x", symbol="AGR", side="buy", order_type="limit", qty=1,
                   price=20_000, account="carol")  # fmt: skip
    ((_, report),) = _round_trip(engine, reporter, far, 1).private
    assert isinstance(report, ExecutionReport)
    assert (report.exec_type, report.reject_reason) == ("rejected", "price_outside_band")

    cancel = CancelOrder(client_order_id="c", symbol="AGR", order_id=999, account="carol")
    ((_, reject),) = _round_trip(engine, reporter, cancel, 2).private
    assert isinstance(reject, CancelReject)
    assert (reject.response_to, reject.reject_reason) == ("cancel", "unknown_order")

    kill = MassCancel(client_order_id="k", symbol="NOPE", account="carol")
    ((_, reject),) = _round_trip(engine, reporter, kill, 3).private
    assert (reject.response_to, reject.reject_reason) == ("mass_cancel", "unknown_symbol")
