"""Sessions belong to their credentials and their connection; floods are contained.

Real exchange and clearing processes on 127.0.0.1 with free ports. Where a test must know the
exchange has noticed something it cannot answer (a dropped connection, a dropped frame), it
waits for the exchange's own Prometheus counters, never for a stretch of wall time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st
from probes import dealer, metric, wait_until
from wire import TIMEOUT_MS, WireClient

from clearing.client import ClearingClient, ClearingError
from clearing.protocol import HoldReply, RiskSubscribe, Subscribe
from clearing.protocol import decode as clearing_decode
from clearing.protocol import encode as clearing_encode
from deploy.launch import Market, Proc, free_endpoint, start_exchange, start_market
from exchange.protocol import CancelOrder, Logon, NewOrder, OpenOrdersRequest, encode

SYM = "AGR"
WAIT_S = 30.0  # generous: only a broken run waits this long


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def _port() -> str:
    return free_endpoint().rsplit(":", 1)[1]


def exchange_with(tmp_path: Path, **env: str) -> Proc:
    return start_exchange(tmp_path / "ex", AGORA_EXCHANGE_METRICS_PORT=_port(), **env)








def recv_all(sock: zmq.Socket, timeout_ms: int = 0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while sock.poll(timeout_ms):
        out.extend(msgpack.unpackb(sock.recv()))
        timeout_ms = 0
    return out


def wait_msgs(sock: zmq.Socket, pred: Callable[[list[dict]], bool]) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while not pred(got):
        if not sock.poll(TIMEOUT_MS):
            raise TimeoutError(f"no reply; so far {got[-3:]}")
        got.extend(msgpack.unpackb(sock.recv()))
    return got


def first(sock: zmq.Socket, pred: Callable[[dict], bool]) -> dict[str, Any]:
    """The first message matching `pred` (earlier ones are discarded)."""
    return next(m for m in wait_msgs(sock, lambda g: any(pred(m) for m in g)) if pred(m))


def limit(clid: str, side: str = "buy", price: int = 9_500, qty: int = 1) -> NewOrder:
    return NewOrder(client_order_id=clid, symbol=SYM, side=side, order_type="limit",
                    qty=qty, price=price)  # fmt: skip


def open_accounts(market: Market, *names: str) -> dict[str, str]:
    async def go() -> dict[str, str]:
        admin = ClearingClient(market.endpoints["clearing"], admin_token=market.admin_token)
        try:
            return {
                n: (await admin.open_account(n, cash=10_000_000, positions={SYM: 100})).token
                for n in names
            }
        finally:
            await admin.close()

    return asyncio.run(go())


def logon(sock: zmq.Socket, account: str, token: str = "", new: bool = False) -> dict[str, Any]:
    """Log on; a `new` account is retried while it is on its way to the exchange's gate."""
    deadline = time.monotonic() + WAIT_S
    while True:
        sock.send(encode(Logon(account=account, token=token)))
        reply = first(sock, lambda m: m["type"] == "logon_reply")
        retry = {"clearing_unavailable", "invalid_credentials"} if new else set()
        if reply["accepted"] or reply["reason"] not in retry:
            return reply
        if time.monotonic() > deadline:
            return reply
        time.sleep(0.1)  # backoff between logon attempts (the gate learns of new accounts)


@pytest.fixture
def market(tmp_path: Path) -> Iterator[Market]:
    m = start_market(tmp_path, exchange_env={"AGORA_EXCHANGE_METRICS_PORT": _port()})
    try:
        yield m
    finally:
        m.stop()


# ------------------------------------------------------------------ routing-id takeover


def test_gateway_routing_id_takeover_gets_nothing_and_acts_for_no_one(
    market: Market, ctx: zmq.Context
) -> None:
    gw = market.endpoints["gateway"]
    tokens = open_accounts(market, "victim")
    victim = dealer(ctx, gw, b"victim-id")
    assert logon(victim, "victim", tokens["victim"], new=True)["accepted"]
    victim.send(encode(limit("v1")))
    ack = first(victim, lambda m: m.get("exec_type") == "new")

    # While the victim is connected: the same routing id, no token.
    attacker = dealer(ctx, gw, b"victim-id")
    attacker.send(encode(CancelOrder(client_order_id="x1", symbol=SYM, order_id=ack["order_id"])))
    attacker.send(encode(limit("evil-1")))
    # The victim still gets its own answers (a takeover would have rerouted them).
    victim.send(encode(OpenOrdersRequest(request_id="r1")))
    orders = first(victim, lambda m: m["type"] == "open_orders")["orders"]
    assert [o["client_order_id"] for o in orders] == ["v1"]
    assert recv_all(attacker) == []
    attacker.close()

    # After the victim disconnects: the id is free, but the session died with its connection.
    victim.close()
    exchange = market.exchange
    wait_until(lambda: metric(exchange, "agora_exchange_sessions") == 0, "session not ended")
    late = dealer(ctx, gw, b"victim-id")
    late.send(encode(CancelOrder(client_order_id="x2", symbol=SYM, order_id=ack["order_id"])))
    late.send(encode(limit("evil-2")))
    got = wait_msgs(late, lambda g: len(g) >= 2)
    assert [(m["type"], m["reason"]) for m in got] == [("protocol_reject", "not_logged_on")] * 2

    again = dealer(ctx, gw)
    assert logon(again, "victim", tokens["victim"])["accepted"]
    again.send(encode(OpenOrdersRequest(request_id="r2")))
    orders = first(again, lambda m: m["type"] == "open_orders")["orders"]
    assert [o["client_order_id"] for o in orders] == ["v1"]  # nothing done in its name
    again.close()
    wait_until(lambda: metric(exchange, "agora_exchange_sessions") == 0, "session not ended")

    # A fill of the victim's resting order, while nobody is logged on as the victim: the
    # connection holding its old routing id hears nothing of it.
    tokens |= open_accounts(market, "seller")
    seller = dealer(ctx, gw)
    assert logon(seller, "seller", tokens["seller"], new=True)["accepted"]
    seller.send(encode(limit("s1", side="sell", price=9_500)))
    first(seller, lambda m: m.get("exec_type") == "trade")  # fills are sent together
    assert recv_all(late, 500) == []


def test_clearing_risk_link_cannot_be_captured(market: Market, ctx: zmq.Context) -> None:
    api = market.endpoints["clearing"]
    tokens = open_accounts(market, "saver")
    attacker = dealer(ctx, api)
    # The admin token no longer opens the risk stream, and a guess does not either.
    for secret in (market.admin_token, "guess"):
        attacker.send(clearing_encode(RiskSubscribe(admin_token=secret, gate=True)))
        attacker.poll(TIMEOUT_MS)
        reply = clearing_decode(attacker.recv())
        assert (reply.type, reply.reason) == ("clearing_reject", "not_authorised")
    # A hold reply from a connection that did not prove the link secret is ignored.
    attacker.send(clearing_encode(HoldReply(hold_id="w1-00", ok=True)))

    async def withdraw() -> int:
        admin = ClearingClient(api, admin_token=market.admin_token)
        try:
            return (await admin.withdraw("saver", 1_000)).cash
        finally:
            await admin.close()

    # The real link (it proved the secret) still holds the withdrawal; the attacker hears
    # neither the hold request nor any risk state.
    assert asyncio.run(withdraw()) == 10_000_000 - 1_000
    assert recv_all(attacker) == []

    # An owner's subscription ends with its connection: a later connection with the same
    # routing id hears none of the account's updates.
    owner = dealer(ctx, api, b"saver-updates")
    owner.send(clearing_encode(Subscribe(account="saver", token=tokens["saver"])))
    assert owner.poll(TIMEOUT_MS) and clearing_decode(owner.recv()).type == "account_balance"
    owner.close()
    # A connection presenting the id before clearing has let go of the old one is refused by
    # libzmq (and never answered): try again on a fresh connection until one is answered.
    deadline = time.monotonic() + WAIT_S
    while True:
        late = dealer(ctx, api, b"saver-updates")
        late.send(clearing_encode(Subscribe(account="nobody", token="x")))
        if late.poll(1000):
            assert clearing_decode(late.recv()).reason == "invalid_credentials"
            break
        late.close()
        assert time.monotonic() < deadline, "no connection with the id was ever answered"

    async def deposit() -> None:
        admin = ClearingClient(api, admin_token=market.admin_token)
        try:
            await admin.deposit("saver", 5)  # updates are pushed before this is answered
        finally:
            await admin.close()

    asyncio.run(deposit())
    heard = []
    while late.poll(500):
        heard.append(clearing_decode(late.recv()).type)
    assert "account_update" not in heard and "account_balance" not in heard, heard


# ------------------------------------------------------------------ sessions end


def test_session_ends_with_a_silent_peer_and_with_a_disconnect(
    tmp_path: Path, ctx: zmq.Context
) -> None:
    ex = exchange_with(tmp_path, AGORA_EXCHANGE_PEER_HEARTBEAT_S="0.2",
                       AGORA_EXCHANGE_PEER_TIMEOUT_S="1.0")  # fmt: skip
    try:
        gw = ex.ready["gateway"]
        # A peer in another process that stops answering (SIGSTOP): no FIN, just silence.
        script = (
            "import sys, zmq\nfrom exchange.protocol import Logon, encode\n"
            "s = zmq.Context().socket(zmq.DEALER); s.connect(sys.argv[1])\n"
            "s.send(encode(Logon(account='sleepy'))); s.recv(); print('ok', flush=True)\n"
            "import time\nwhile True: time.sleep(1)\n"
        )
        child = subprocess.Popen([sys.executable, "-c", script, gw], stdout=subprocess.PIPE)
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == b"ok"
            assert metric(ex, "agora_exchange_sessions") == 1
            os.kill(child.pid, signal.SIGSTOP)
            wait_until(lambda: metric(ex, "agora_exchange_sessions") == 0, "heartbeat timeout")
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        alice = WireClient(ctx, gw, "alice")
        assert metric(ex, "agora_exchange_sessions") == 1
        alice.close()
        wait_until(lambda: metric(ex, "agora_exchange_sessions") == 0, "disconnect")
    finally:
        ex.stop()


def test_session_cap_refuses_new_sessions_with_a_reason(tmp_path: Path, ctx: zmq.Context) -> None:
    ex = exchange_with(tmp_path, AGORA_EXCHANGE_MAX_SESSIONS_PER_ACCOUNT="2")
    try:
        gw = ex.ready["gateway"]
        first, _second = WireClient(ctx, gw, "capped"), WireClient(ctx, gw, "capped")
        third = dealer(ctx, gw)
        reply = logon(third, "capped")
        assert (reply["accepted"], reply["reason"]) == (False, "too_many_sessions")
        first.close()  # a slot frees when a session's connection ends
        wait_until(lambda: metric(ex, "agora_exchange_sessions") == 1, "disconnect")
        assert logon(third, "capped")["accepted"]
    finally:
        ex.stop()


# ------------------------------------------------------------------ logons


def test_failed_logons_say_nothing_and_are_throttled(tmp_path: Path, ctx: zmq.Context) -> None:
    m = start_market(tmp_path, exchange_env={
        "AGORA_EXCHANGE_METRICS_PORT": _port(), "AGORA_EXCHANGE_LOGON_FAILURE_BURST": "3",
        "AGORA_EXCHANGE_LOGON_FAILURE_RATE": "0.0001",
    })  # fmt: skip
    try:
        gw = m.endpoints["gateway"]
        tokens = open_accounts(m, "alice")
        sock = dealer(ctx, gw)
        assert logon(sock, "alice", tokens["alice"], new=True)["accepted"]  # the gate knows her
        wrong = logon(dealer(ctx, gw), "alice", "not-the-token")
        unknown = logon(dealer(ctx, gw), "nobody", "not-the-token")
        for r in (wrong, unknown):
            del r["ts"], r["account"]
        assert wrong == unknown == {"type": "logon_reply", "v": 1, "accepted": False,
                                    "reason": "invalid_credentials",
                                    "text": "unknown account or wrong token"}  # fmt: skip
        # Three failures for alice (the one above and two more), then even her token waits.
        for _ in range(2):
            assert logon(dealer(ctx, gw), "alice", "nope")["reason"] == "invalid_credentials"
        assert logon(dealer(ctx, gw), "alice", "nope")["reason"] == "logon_throttled"
        assert logon(dealer(ctx, gw), "alice", tokens["alice"])["reason"] == "logon_throttled"
        # ... and the same for a name nobody has: no difference to learn from.
        for _ in range(3):
            logon(dealer(ctx, gw), "nobody", "nope")
        assert logon(dealer(ctx, gw), "nobody", "nope")["reason"] == "logon_throttled"
    finally:
        m.stop()


def test_traffic_before_logon_is_limited_per_address(tmp_path: Path, ctx: zmq.Context) -> None:
    ex = exchange_with(tmp_path, AGORA_EXCHANGE_ANONYMOUS_BURST="20",
                       AGORA_EXCHANGE_ANONYMOUS_RATE_LIMIT="0.0001")  # fmt: skip
    try:
        gw = ex.ready["gateway"]
        socks = [dealer(ctx, gw) for _ in range(3)]  # one address, several connections
        for i in range(30):
            for s in socks:
                s.send(encode(limit(f"x{i}")))
        # 20 answered (not_logged_on), each connection told once it is over, the rest dropped
        wait_until(
            lambda: (
                metric(ex, "agora_exchange_dropped_total", 'reason="not_logged_on_rate"')
                == 90 - 20 - 3
            ),
            "drops not counted",
        )
        replies = [m for s in socks for m in recv_all(s, 1000)]
        reasons = sorted(m["reason"] for m in replies)
        assert reasons == ["not_logged_on"] * 20 + ["rate_limited"] * 3
        # A logon still gets through (a successful logon costs nothing) once there is budget:
        # here there is none left, so it is dropped and counted, not answered.
    finally:
        ex.stop()


# ------------------------------------------------------------------ floods


def test_flood_over_four_connections_gets_one_account_budget(
    tmp_path: Path, ctx: zmq.Context
) -> None:
    ex = exchange_with(tmp_path, AGORA_EXCHANGE_RATE_LIMIT="0.0001",
                       AGORA_EXCHANGE_RATE_BURST="50")  # fmt: skip
    try:
        gw = ex.ready["gateway"]
        floods = [dealer(ctx, gw) for _ in range(4)]
        for s in floods:
            assert logon(s, "flood")["accepted"]
        for i in range(100):
            for k, s in enumerate(floods):
                s.send(encode(limit(f"f{k}-{i}")))
        # Acknowledgements reach every session of the account; rejects only the sender.
        # Past the burst, each refused request is a debt; a burst in debt, frames are refused
        # unread: each connection is told so (at most every 0.1 s), the rest are counted drops.
        def flooding_drops() -> float:
            return metric(ex, "agora_exchange_dropped_total", 'reason="flooding"')

        acked: set[str] = set()
        refused = unread = 0
        deadline = time.monotonic() + WAIT_S
        while (len(acked) + refused + unread + flooding_drops() < 400
               and time.monotonic() < deadline):  # fmt: skip
            for s in floods:
                for m in recv_all(s, 10):
                    if m.get("exec_type") == "new":
                        acked.add(m["client_order_id"])
                    elif m.get("reject_reason") == "rate_limited":
                        refused += 1
                    elif (m.get("reason"), m.get("ref_type")) == ("rate_limited", "frame"):
                        unread += 1
        assert (len(acked), refused) == (50, 50)
        assert unread + flooding_drops() == 300
        assert 4 <= unread < 300  # every connection told at least once, not once a frame
        # Another account is not slowed by it.
        calm = WireClient(ctx, gw, "calm")
        calm.send(limit("c1"))
        assert calm.wait_for_order("c1", "new").leaves_qty == 1
    finally:
        ex.stop()


def test_many_accounts_behind_one_address_share_its_ceiling(
    tmp_path: Path, ctx: zmq.Context
) -> None:
    ex = exchange_with(tmp_path, AGORA_EXCHANGE_ADDRESS_RATE_LIMIT="0.0001",
                       AGORA_EXCHANGE_ADDRESS_BURST="30")  # fmt: skip
    try:
        gw = ex.ready["gateway"]
        socks = [dealer(ctx, gw) for _ in range(2)]
        for k, s in enumerate(socks):
            assert logon(s, f"acct-{k}")["accepted"]
        for i in range(20):
            for k, s in enumerate(socks):
                s.send(encode(limit(f"a{k}-{i}")))
        got = [m for s in socks for m in wait_msgs(s, lambda g: len(g) >= 20)]
        accepted = sum(1 for m in got if m.get("exec_type") == "new")
        refused = sum(1 for m in got if (m.get("reason"), m.get("ref_type")) == (
            "rate_limited", "frame"))  # fmt: skip
        assert (accepted, refused) == (30, 10)
    finally:
        ex.stop()


# ------------------------------------------------------------------ answers that tell nothing


def test_cancel_of_anothers_order_is_answered_as_unknown(tmp_path: Path, ctx: zmq.Context) -> None:
    ex = exchange_with(tmp_path)
    try:
        gw = ex.ready["gateway"]
        alice, bob = WireClient(ctx, gw, "alice"), WireClient(ctx, gw, "bob")
        alice.send(limit("a1"))
        oid = alice.wait_for_order("a1", "new").order_id
        answers = []
        for target in (oid, oid + 1000):
            bob.send(CancelOrder(client_order_id="b1", symbol=SYM, order_id=target))
            answers.append(bob.wait(lambda m: m.type == "cancel_reject").model_dump())
        for a in answers:
            del a["ts"], a["order_id"]  # the echoed request differs; nothing else may
        assert answers[0] == answers[1]
        assert answers[0]["reject_reason"] == "unknown_order"
    finally:
        ex.stop()


def test_unexpected_frame_shapes_are_answered(tmp_path: Path, ctx: zmq.Context) -> None:
    ex = exchange_with(tmp_path)
    try:
        gw = ex.ready["gateway"]
        for logged_on in (False, True):
            sock = dealer(ctx, gw)
            if logged_on:
                assert logon(sock, "alice")["accepted"]
            sock.send_multipart([encode(limit("m1")), b"extra"])
            sock.send(b"")
            got = wait_msgs(sock, lambda g: len(g) >= 2)
            assert [(m["type"], m["reason"]) for m in got] == [("protocol_reject", "malformed")] * 2
            assert "2 parts" in got[0]["text"] and "empty" in got[1]["text"]
    finally:
        ex.stop()


def test_rejected_commands_are_not_journalled(tmp_path: Path, ctx: zmq.Context) -> None:
    ex = exchange_with(tmp_path)
    try:
        client = WireClient(ctx, ex.ready["gateway"], "alice")
        client.send(limit("a1"))
        client.wait_for_order("a1", "new")  # journalled before it was acknowledged
        journal = tmp_path / "ex" / "exchange.journal"
        size = journal.stat().st_size
        assert size > 0
        for i in range(200):
            client.send(CancelOrder(client_order_id=f"c{i}", symbol=SYM, order_id=10_000 + i))
        for i in range(50):
            client.send(limit("a1"))  # duplicate client order id
            client.send(limit(f"far{i}", price=50_000))  # outside the band
        for i in range(200):
            client.wait(lambda m, i=i: m.type == "cancel_reject" and m.client_order_id == f"c{i}")
        for _ in range(100):
            client.wait(lambda m: m.type == "execution_report" and m.exec_type == "rejected")
        client.send(limit("a2"))
        client.wait_for_order("a2", "new")  # a later accepted order is journalled again
        grown = journal.stat().st_size
        client.send(CancelOrder(client_order_id="z", symbol=SYM, order_id=999_999))
        client.wait(lambda m: m.type == "cancel_reject" and m.client_order_id == "z")
        assert journal.stat().st_size == grown > size
    finally:
        ex.stop()
    # and a restart from that journal rebuilds the same book
    again = exchange_with(tmp_path)
    try:
        client = WireClient(ctx, again.ready["gateway"], "alice")
        client.send(OpenOrdersRequest(request_id="r"))
        orders = client.wait(lambda m: m.type == "open_orders").orders
        assert sorted(o.client_order_id for o in orders) == ["a1", "a2"]
    finally:
        again.stop()


def test_settings_are_read_from_the_environment() -> None:
    from exchange.settings import ExchangeSettings

    env = {"AGORA_EXCHANGE_MAX_SESSIONS_PER_ACCOUNT": "3", "AGORA_EXCHANGE_PEER_TIMEOUT_S": "9"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        s = ExchangeSettings()
        assert (s.max_sessions_per_account, s.peer_timeout_s) == (3, 9.0)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ------------------------------------------------------------------ replay without rejects

_command = st.one_of(
    st.tuples(st.just("N"), st.sampled_from(["a", "b"]), st.integers(0, 6),
              st.sampled_from(["buy", "sell"]), st.integers(-1, 12),
              st.sampled_from([9_990, 10_000, 10_010, 50_000])),  # 50_000: outside the band
    st.tuples(st.just("X"), st.sampled_from(["a", "b"]), st.integers(0, 40)),
    st.tuples(st.just("R"), st.sampled_from(["a", "b"]), st.integers(0, 40), st.integers(-1, 12)),
    st.tuples(st.just("M"), st.sampled_from(["a", "b"])),
)  # fmt: skip


def _records(commands: list[tuple]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for ts, c in enumerate(commands, start=1):
        if c[0] == "N":
            _, acct, clid, side, qty, price = c
            out.append(["N", ts, acct, f"c{clid}", SYM, side, "limit", qty, price, "gtc",
                        False, "cancel_newest"])  # fmt: skip
        elif c[0] == "X":
            out.append(["X", ts, c[1], f"x{ts}", SYM, c[2], None])
        elif c[0] == "R":
            out.append(["R", ts, c[1], f"r{ts}", SYM, c[2], None, c[3], None])
        else:
            out.append(["M", ts, c[1], f"m{ts}", None])
    return out


def _state(engine: Any) -> tuple:
    orders = sorted(
        (o.order_id, o.account, o.client_order_id, o.side, o.price, o.qty, o.leaves)
        for o in engine._orders.values()
    )
    clids = {a: dict(m) for a, m in engine._clids.items() if m}
    market = engine.market(SYM)
    return (orders, clids, engine._next_order_id, engine._trade_id, market.phase,
            market.book.seq, engine.depth(SYM, 100))  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(_command, max_size=60))
def test_replay_without_rejected_commands_rebuilds_the_same_market(commands: list) -> None:
    """What the exchange journals (commands that changed state) replays to the same state
    as running every command, rejects included."""
    from exchange.engine import Engine
    from exchange.server import _run_record, changes_state
    from exchange.settings import default_symbols

    live, replayed = Engine(default_symbols()), Engine(default_symbols())
    journal = []
    for record in _records(commands):
        if changes_state(_run_record(live, record)):
            journal.append(record)
    for record in journal:
        _run_record(replayed, record)
    assert _state(replayed) == _state(live)


def test_clearing_owner_requests_say_nothing_and_are_throttled(tmp_path: Path) -> None:
    m = start_market(
        tmp_path,
        clearing_env={
            "AGORA_CLEARING_AUTH_FAILURE_BURST": "3",
            "AGORA_CLEARING_AUTH_FAILURE_RATE": "0.0001",
        },
    )
    try:
        api = m.endpoints["clearing"]
        tokens = open_accounts(m, "alice")

        async def balance(account: str, token: str) -> tuple[str, str]:
            client = ClearingClient(api, account=account, token=token)
            try:
                await client.balance()
                return ("ok", "")
            except ClearingError as exc:
                return (exc.reason, str(exc))
            finally:
                await client.close()

        async def go() -> None:
            wrong, unknown = await balance("alice", "nope"), await balance("nobody", "nope")
            assert wrong[0] == unknown[0] == "invalid_credentials"
            assert wrong[1].replace("alice", "X") == unknown[1].replace("nobody", "X")
            for _ in range(2):  # three failures in all for alice, then she waits
                assert (await balance("alice", "nope"))[0] == "invalid_credentials"
            assert (await balance("alice", "nope"))[0] == "throttled"
            assert (await balance("alice", tokens["alice"]))[0] == "throttled"

        asyncio.run(go())
    finally:
        m.stop()


def test_a_libzmq_without_srcfd_refuses_to_start_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from exchange.protocol import peers

    peers.check_srcfd()  # this libzmq names each frame's connection

    def missing() -> None:
        raise peers.SrcFdUnavailable("libzmq 9.9 gave SRCFD -1")

    monkeypatch.setattr(peers, "check_srcfd", missing)
    with pytest.raises(SystemExit) as exit_:
        peers.require_srcfd()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot bind sessions to connections" in err
