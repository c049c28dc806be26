"""Stress scenarios on the live market, real processes on 127.0.0.1: the admin's request is
refused without the admin token (with the reason) and accepted with it, and then the event
happens: F jumps on the fair-value feed, the market makers' quotes leave the book and come
back, a sell program's agent trades. Every wait is for the event, with a generous deadline."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgpack
import pytest
import zmq

from agents.stress.live import CONTROL_TOPIC, request
from deploy.launch import Proc, client_env, free_endpoint, start_fundamental, start_market
from tests.dropcopy import DropCopy

ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 120.0  # a safety net against a hang, never a synchronisation
TOKEN = "stress-admin-token-for-tests"


def _fundamental(interval: str = "0.05") -> Proc:
    return start_fundamental(
        AGORA_FUNDAMENTAL_INTERVAL_S=interval,
        AGORA_FUNDAMENTAL_MODEL=json.dumps({"symbols": {"AGR": "100.00"}, "scale": 0.0,
                                            "step_s": 0.05, "seed": 1}),
        AGORA_FUNDAMENTAL_CONTROL_BIND=free_endpoint(),
        AGORA_FUNDAMENTAL_ADMIN_TOKEN=TOKEN,
    )


class _Sub:
    """A SUB socket on the fair-value feed: values and control events."""

    def __init__(self, endpoint: str) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)
        self.values: list[float] = []
        self.events: list[dict] = []

    def wait(self, pred: Callable[[_Sub], bool]) -> bool:
        deadline = time.monotonic() + WAIT_S
        while not pred(self):
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000)):
                return False
            topic, payload = self.sock.recv_multipart()
            data = msgpack.unpackb(payload, raw=False)
            if topic == CONTROL_TOPIC:
                self.events.append(data)
            else:
                self.values.append(data["value"])
        return True

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


def _agora(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deploy.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=WAIT_S)  # fmt: skip


def test_a_shock_needs_the_admin_token_and_moves_F(tmp_path: Path) -> None:
    proc = _fundamental()
    control = proc.ready["control"]
    sub = _Sub(proc.ready["fundamental"])
    try:
        assert sub.wait(lambda s: len(s.values) >= 3)  # subscribed: values flow
        refused = request(control, "", name="fundamental-shock", params={"at_s": 0.1})
        assert refused == {"type": "scenario_refused",
                           "reason": "admin token required: missing or wrong"}  # fmt: skip
        wrong = request(control, TOKEN + "x", name="fundamental-shock", params={"at_s": 0.1})
        assert wrong["type"] == "scenario_refused" and "admin token" in wrong["reason"]
        bad = request(control, TOKEN, name="fundamental-shock", params={"pct": -200})
        assert bad["type"] == "scenario_refused" and "pct" in bad["reason"]
        # the command line: no token at all is one line, status 2
        env = client_env({}, "")
        env.pop("AGORA_ADMIN_TOKEN", None)
        env.update({"AGORA_FUNDAMENTAL_CONTROL": control, "AGORA_DATA_DIR": str(tmp_path)})
        p = _agora("admin", "scenario", "fundamental-shock", env=env)
        assert p.returncode == 2 and "no admin token" in p.stderr and "Traceback" not in p.stderr
        p = _agora("admin", "scenario", "fundamental-shock", "--admin-token", "nope", env=env)
        assert p.returncode == 2 and "refused: admin token required" in p.stderr
        before = sub.values[-1]
        assert before == pytest.approx(100.0)  # scale 0: F stays put until the shock
        p = _agora("admin", "scenario", "fundamental-shock", "--param", "pct=-10", "--at",
                   "0.2", "--admin-token", TOKEN, env=env)  # fmt: skip
        assert p.returncode == 0, p.stderr
        assert "accepted" in p.stdout and TOKEN not in p.stdout + p.stderr
        assert sub.wait(lambda s: s.values[-1] < 95.0)
        assert sub.values[-1] == pytest.approx(90.0)
        assert sub.wait(lambda s: bool(s.events))
        event = sub.events[0]
        assert event["name"] == "fundamental-shock" and "admin_token" not in event
        assert TOKEN not in proc.stop()
    finally:
        sub.close()
        if proc.returncode is None:
            proc.kill()


MAKERS = """
seed = 5
[[symbols]]
symbol = "AGR"
reference_price = 10000
band_bps = 1000

[clearing]
starting_cash = 50_000_000
starting_positions = { AGR = 200 }

[[populations]]
name = "mm"
strategy = "fixed_spread_mm"
count = 2
params = { size = 5, max_inventory = 400, half_spread_ticks = 2, requote_interval_ns = 100_000_000 }

[[populations]]
name = "noise"
strategy = "noise"
count = 4
"""


class _Top:
    """The top of book of AGR from the exchange's feed (sync)."""

    def __init__(self, endpoint: str) -> None:
        from exchange.protocol import decode_batch

        self.decode = decode_batch
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)
        self.bid: int | None = None
        self.ask: int | None = None

    def wait(self, pred: Callable[[_Top], bool]) -> bool:
        deadline = time.monotonic() + WAIT_S
        while not pred(self):
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000)):
                return False
            frames = self.sock.recv_multipart()
            try:
                msgs = self.decode(frames[-1])
            except Exception:
                continue
            for m in msgs:
                if m.type == "top_of_book":
                    self.bid, self.ask = m.bid_price, m.ask_price
        return True

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


def test_withdrawal_empties_the_book_and_a_sell_program_trades(tmp_path: Path) -> None:
    config = tmp_path / "makers.toml"
    config.write_text(MAKERS)
    market = start_market(tmp_path, admin_token=TOKEN)
    fundamental = _fundamental("0.1")
    ep = market.endpoints
    env = client_env({**ep, "fundamental": fundamental.ready["fundamental"]}, TOKEN)
    top = _Top(ep["feed"])
    drop = DropCopy(ep["dropcopy"])
    runner = None
    try:
        runner = Proc([sys.executable, "-m", "agents", "run", "--config", str(config),
                       "--json-logs"], env)  # fmt: skip
        control = fundamental.ready["control"]
        assert top.wait(lambda t: t.bid is not None and t.ask is not None)  # makers quote
        reply = request(control, TOKEN, name="liquidity-withdrawal",
                        params={"at_s": 0.1, "duration_s": 3.0})  # fmt: skip
        assert reply["type"] == "scenario_accepted", reply
        # the makers pull both quotes (noise traders only send market orders): empty book ...
        assert top.wait(lambda t: t.bid is None and t.ask is None)
        # ... and quote again once the withdrawal is over
        assert top.wait(lambda t: t.bid is not None and t.ask is not None)
        reply = request(control, TOKEN, name="sell-program", host="mm",
                        params={"at_s": 0.1, "qty": 8, "horizon_s": 1.0, "slices": 4})  # fmt: skip
        assert reply["type"] == "scenario_accepted", reply
        assert drop.wait(lambda d: d.populations["stress"] >= 1)  # the seller's agent traded
        err = runner.stop(timeout=150)
        assert TOKEN not in err
    finally:
        top.close()
        drop.close()
        if runner is not None and runner.returncode is None:
            runner.kill()
        fundamental.stop()
        market.stop()
    line = next(x for x in runner.output.splitlines() if x.startswith("AGORA_RESULT "))
    result = json.loads(line[len("AGORA_RESULT "):])
    seller = next(r for r in result["pnl"] if r["agent"].startswith("stress-seller"))
    assert seller["fills"] >= 1 and seller["errors"] == 0
    assert result["mismatches"] == []


def test_bad_requests_are_refused_and_the_process_keeps_answering() -> None:
    proc = _fundamental()
    control = proc.ready["control"]
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(control)
    try:
        for payload in (b"\xc1garbage", msgpack.packb([1, 2]),
                        msgpack.packb({"type": "scenario", "admin_token": TOKEN, "parts": [1]}),
                        msgpack.packb({"type": "scenario", "admin_token": TOKEN,
                                       "parts": [{"kind": "fat_finger", "symbol": "XYZ"}]})):
            sock.send_multipart([b"", payload])
            assert sock.poll(int(WAIT_S * 1000))
            reply = msgpack.unpackb(sock.recv_multipart()[-1], raw=False)
            assert reply["type"] == "scenario_refused" and reply["reason"], reply
        ok = request(control, TOKEN, name="fundamental-shock", params={"at_s": 0.1})
        assert ok["type"] == "scenario_accepted" and ok["id"] == 1
        assert proc.returncode is None
    finally:
        sock.close()
        ctx.term()
        proc.stop()
