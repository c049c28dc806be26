"""The clearing house's account protocol (`clearing.protocol`): every message round-trips, and
`decode` answers any input with a message or a `ClearingProtocolError`, nothing else."""

from __future__ import annotations

import typing
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from clearing import protocol as P
from clearing.fees import FeeSchedule
from clearing.ledger import Limits
from clearing.protocol import MAX_SIZE, ClearingProtocolError, decode, encode

BALANCE = P.AccountBalance(
    request_id="r1", account="alice", cash=-12, deposits=100, fees_paid=3, equity=88, pnl=-15,
    positions=[P.PositionInfo(symbol="AGR", qty=-4, avg_cost=101.25, realised=7,
                              unrealised=-2, mark=99),
               P.PositionInfo(symbol="BIG", qty=0, avg_cost=0.0, realised=0, unrealised=0,
                              mark=None)],
    limits=Limits(leverage=2.5, short_limit=4, max_position=10, max_order_notional=10**6),
    settled_through=42,
)  # fmt: skip

EXAMPLES: list[BaseModel] = [
    P.OpenAccount(admin_token="adm", request_id="1"),
    P.OpenAccount(admin_token="adm", request_id="2", account="a.b-c_d:e@f", cash=0,
                  positions={"AGR": 5, "BIG": 0}, limits=Limits(short_limit=2)),
    P.AccountOpened(request_id="3", account="alice", token="s3cr3t"),
    P.Deposit(admin_token="adm", account="alice", amount=2**62),
    P.Withdraw(admin_token="adm", account="alice", amount=1, request_id="w"),
    P.SetLimits(admin_token="adm", account="alice", limits=Limits(leverage=3.0)),
    P.ListAccounts(admin_token="adm"),
    P.RiskSubscribe(admin_token="adm", request_id="rs"),
    P.BalanceRequest(account="alice", token="t"),
    P.Subscribe(account="alice", token="t", request_id="s"),
    P.TradeHistoryRequest(account="alice", token="t", after_trade_id=7, limit=1000),
    BALANCE,
    P.AccountUpdate(balance=BALANCE),
    P.AccountList(request_id="l", accounts=[BALANCE, BALANCE.model_copy(update={"pnl": 1})],
                  settled_through=42),
    P.AccountList(request_id="l", accounts=[], settled_through=0),
    P.TradeHistory(request_id="h", account="alice", next_after=9, trades=[
        P.TradeRecord(trade_id=9, ts=123, symbol="AGR", side="buy", price=100, qty=2, fee=-1,
                      liquidity="maker"),
        P.TradeRecord(trade_id=8, ts=12, symbol="AGR", side="sell", price=99, qty=1, fee=0,
                      liquidity="auction"),
    ]),
    P.TradeHistory(request_id="h", account="alice", next_after=None, trades=[]),
    P.RiskState(settled_through=5, full=True, accounts=[
        P.AccountState(account="alice", token_hash="ab" * 32, cash=5, positions={"AGR": -1},
                       credit_limit=0, short_limit=1, max_position=None,
                       max_order_notional=77),
    ], fees=FeeSchedule(maker_bps=-1.5, taker_bps=2.0), multipliers={"AGR": 1, "BIG": 500}),
    P.RiskState(settled_through=6, full=False, accounts=[]),
    P.ClearingReject(request_id="x", ref_type="deposit", reason="unknown_account", text="no"),
    P.ClearingReject(reason="malformed"),
    P.Ack(request_id="ack"),
    P.Heartbeat(settled_through=0),
    P.HoldRequest(hold_id="w1", account="alice", amount=500),
    P.HoldReply(hold_id="w1", ok=False, reason="insufficient_funds"),
]

MESSAGE_CLASSES = typing.get_args(typing.get_args(P.ClearingMessage)[0])


def test_examples_cover_every_message_type() -> None:
    assert {type(m) for m in EXAMPLES} == set(MESSAGE_CLASSES)
    assert len(MESSAGE_CLASSES) == 20


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: m.type)
def test_round_trip(msg: BaseModel) -> None:
    data = encode(msg)
    assert isinstance(data, bytes)
    back = decode(data)
    assert type(back) is type(msg)
    assert back == msg
    assert encode(back) == data
    assert msgpack.unpackb(data)["type"] == msg.type
    assert msgpack.unpackb(data)["v"] == 1


def test_token_is_not_echoed_elsewhere() -> None:
    # Sanity: the wire form of a request is exactly its fields, nothing added.
    raw = msgpack.unpackb(encode(P.BalanceRequest(account="a", token="t", request_id="9")))
    assert raw == {"v": 1, "request_id": "9", "account": "a", "token": "t",
                   "type": "balance_request"}  # fmt: skip


# ---------------------------------------------------------------------------------- refusals


def reason_of(data: bytes) -> ClearingProtocolError:
    with pytest.raises(ClearingProtocolError) as exc:
        decode(data)
    assert isinstance(exc.value, ValueError)
    return exc.value


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never used in msgpack
        b"\x92\x01",  # truncated array
        b"\x81\xa4type",  # truncated map
        pack({"type": "ack", "request_id": "x"}) + b"\x00",  # trailing bytes
        pack([1, 2, 3]),
        pack("deposit"),
        pack(None),
        pack({"kind": "deposit"}),
        pack({"type": 5}),
        pack({"type": None}),
        pack({"type": b"ack", "request_id": "x"}),
        pack({1: "x", "type": "ack"}),  # non-string key
    ],
)
def test_malformed(data: bytes) -> None:
    assert reason_of(data).reason == "malformed"


@pytest.mark.parametrize("kind", ["", "nope", "new_order", "ACK", "x" * 500])
def test_unknown_type(kind: str) -> None:
    err = reason_of(pack({"type": kind, "request_id": "1"}))
    assert err.reason == "unknown_type"
    assert err.ref_type == kind[:64]


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "deposit", "admin_token": "a", "account": "x", "amount": "5"},  # str for int
        {"type": "deposit", "admin_token": "a", "account": "x", "amount": 5.0},  # strict: float
        {"type": "deposit", "admin_token": "a", "account": "x", "amount": 0},
        {"type": "deposit", "admin_token": "a", "account": "x", "amount": 2**62 + 1},
        {"type": "deposit", "admin_token": "a", "account": "x", "amount": True},
        {"type": "deposit", "admin_token": "a", "account": "x"},  # missing
        {"type": "deposit", "admin_token": "a", "account": "bad name", "amount": 1},
        {"type": "deposit", "admin_token": "a", "account": "", "amount": 1},
        {"type": "deposit", "admin_token": "a", "account": "x" * 65, "amount": 1},
        {"type": "deposit", "admin_token": 7, "account": "x", "amount": 1},
        {"type": "deposit", "admin_token": "a", "account": "x", "amount": 1, "extra": 1},
        {"type": "ack", "request_id": ""},
        {"type": "ack", "request_id": "x" * 65},
        {"type": "ack", "request_id": 5},
        {"type": "ack", "request_id": "1", "v": "1"},
        {"type": "balance_request", "account": "a", "token": "t" * 257},
        {"type": "trade_history_request", "account": "a", "token": "t", "limit": 0},
        {"type": "trade_history_request", "account": "a", "token": "t", "limit": 1001},
        {"type": "trade_history_request", "account": "a", "token": "t", "after_trade_id": -1},
        {"type": "open_account", "admin_token": "a", "cash": -1},
        {"type": "open_account", "admin_token": "a", "positions": {"AGR": -1}},
        {"type": "open_account", "admin_token": "a", "positions": ["AGR"]},
        {"type": "open_account", "admin_token": "a", "limits": {"leverage": 0.5}},
        {"type": "open_account", "admin_token": "a", "limits": {"bogus": 1}},
        {"type": "set_limits", "admin_token": "a", "account": "x", "limits": "none"},
        {"type": "heartbeat", "settled_through": [1]},
        {"type": "heartbeat"},
        {"type": "risk_state", "settled_through": 1, "full": True, "accounts": [{}]},
        {"type": "risk_state", "settled_through": 1, "full": "yes", "accounts": []},
        {"type": "account_opened", "request_id": "1", "account": "a", "token": b"t"},
    ],
)
def test_invalid_field(obj: dict) -> None:
    err = reason_of(pack(obj))
    assert err.reason == "invalid_field", str(err)
    assert err.ref_type == obj["type"]
    assert str(err)  # a readable text
    assert len(str(err)) <= 1024


def test_oversized() -> None:
    data = pack({"type": "ack", "request_id": "x", "pad": "p" * MAX_SIZE})
    assert len(data) > MAX_SIZE
    assert reason_of(data).reason == "oversized"
    assert reason_of(b"\x00" * (MAX_SIZE + 1)).reason == "oversized"
    # Exactly at the limit is not oversized (it is judged on its content).
    assert reason_of(b"\xc1" * MAX_SIZE).reason == "malformed"


def test_models_are_strict_and_closed() -> None:
    with pytest.raises(ValidationError):
        P.Deposit(admin_token="a", account="x", amount="5")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        P.Ack(request_id="x", other=1)  # type: ignore[call-arg]


# ---------------------------------------------------------------------------------- fuzz

TYPES = sorted(m.model_fields["type"].default for m in MESSAGE_CLASSES)
FIELDS = sorted({f for m in MESSAGE_CLASSES for f in m.model_fields} | {"x", ""})

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=True),
    st.text(max_size=20), st.binary(max_size=20), st.sampled_from(TYPES),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(FIELDS)), inner,
                        max_size=4),
    ),
    max_leaves=12,
)
messages = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(TYPES), st.text(max_size=10), scalars)},
    optional={f: values for f in FIELDS if f != "type"},
)


def decode_or_protocol_error(data: bytes) -> Any:
    try:
        msg = decode(data)
    except ClearingProtocolError as exc:
        assert exc.reason in {"malformed", "unknown_type", "invalid_field", "oversized"}
        return exc
    assert isinstance(msg, MESSAGE_CLASSES)
    return msg


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data: bytes) -> None:
    out = decode_or_protocol_error(data)
    assert isinstance(out, ClearingProtocolError | BaseModel)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_fuzz_random_maps(obj: dict) -> None:
    out = decode_or_protocol_error(pack(obj))
    if isinstance(out, BaseModel):
        # Whatever decodes is a valid message that encodes and decodes to itself.
        assert decode(encode(out)) == out


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(EXAMPLES), st.data())
def test_fuzz_mutated_examples(msg: BaseModel, data: st.DataObject) -> None:
    raw = msgpack.unpackb(encode(msg))
    key = data.draw(st.sampled_from(sorted(raw)))
    raw[key] = data.draw(values)
    out = decode_or_protocol_error(pack(raw))
    if isinstance(out, ClearingProtocolError) and key != "type":
        assert out.reason == "invalid_field"


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(EXAMPLES), st.data())
def test_fuzz_truncated_examples(msg: BaseModel, data: st.DataObject) -> None:
    wire = encode(msg)
    cut = data.draw(st.integers(0, len(wire) - 1))
    out = decode_or_protocol_error(wire[:cut])
    assert isinstance(out, ClearingProtocolError)
