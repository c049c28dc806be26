"""Reliability of the running market: crashes, hostile input, hijacks, floods, restarts.

    python bench/reliability.py [--kills 10] [--fuzz 20000] [--quick] [--only kill,fuzz,...]

Real processes on loopback ports, as a user runs them (`deploy.launch`). Sections:

* kill: exchange + clearing under a steady order flow from several accounts; the exchange or
  the clearing house (alternately) is killed with SIGKILL at a random moment and restarted on
  the same ports, `--kills` times. Afterwards, with everything stopped gracefully and started
  once more: every order the exchange acknowledged is in its journal; every exchange trade is
  settled exactly once per side by clearing, and clearing settled nothing the exchange did not
  trade; positions and cash (with fees) are conserved.
* fuzz: random bytes, random msgpack values, mutated valid requests and frames of odd shapes to
  the gateway (before and after logon), the snapshot service and the clearing port; then both
  processes must still be running and answer a valid request.
* hijack: a connection that presents a logged-on session's routing id (while the owner is
  connected, and after it left) sends orders without logging on; an order accepted for the
  owner's account is a hijack.
* flood: `bench/flood.py`'s measurement (a well-behaved client's ack p99 unloaded vs during
  another account's 4-connection flood).
* restart: `bench/restart.py`'s measurement (restart seconds and peak memory vs journal size).

Everything printed is a count or a figure; the must-be-zero lines say so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

try:  # noqa: SIM105  (first: keeps bench/ off the import path, see _path.py)
    import _path  # noqa: F401
except ModuleNotFoundError:
    pass
import msgpack
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clearing.client import ClearingClient
from deploy.launch import (
    Market,
    start_clearing,
    start_exchange,
    start_market,
)

SYM = "AGR"
CASH = 10**12
SHARES = 10**7
BENCH = Path(__file__).resolve().parent


def _say(line: str) -> None:
    print(line, flush=True)


# ---------------------------------------------------------------------------- the order flow
class Flow(threading.Thread):
    """Order entry for a few accounts on raw DEALERs; survives restarts by logging on again.

    It keeps every acknowledgement it received: (account, client order id) -> order id.
    """

    def __init__(self, gateway: str, accounts: dict[str, str], window: int = 8) -> None:
        super().__init__(daemon=True)
        self.gateway = gateway
        self.accounts = accounts
        self.window = window
        self.acked: dict[tuple[str, str], int] = {}
        self.fills: Counter[str] = Counter()
        self.rejects: Counter[str] = Counter()
        self.stop_flag = threading.Event()
        self.acks_seen = threading.Condition()
        self.n_acks = 0

    def run(self) -> None:
        ctx = zmq.Context()
        socks: dict[str, zmq.Socket] = {}
        state: dict[str, dict[str, Any]] = {}
        rng = random.Random(7)
        packb, unpackb = msgpack.packb, msgpack.unpackb
        poller = zmq.Poller()
        for account in self.accounts:
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(self.gateway)
            socks[account] = s
            poller.register(s, zmq.POLLIN)
            state[account] = {"on": False, "out": 0, "n": 0, "last_rx": time.monotonic(),
                              "logon_at": 0.0, "pending": set()}  # fmt: skip
        run_tag = f"{os.getpid()}-{int(time.time())}"

        def logon(account: str) -> None:
            st = state[account]
            st["on"], st["out"], st["logon_at"] = False, 0, time.monotonic()
            st["pending"].clear()
            socks[account].send(packb({"type": "logon", "v": 1, "account": account,
                                       "token": self.accounts[account]}))  # fmt: skip

        for account in self.accounts:
            logon(account)
        while not self.stop_flag.is_set():
            now = time.monotonic()
            for account, s in socks.items():
                st = state[account]
                if not st["on"]:
                    if now - st["logon_at"] > 1.0:  # unanswered (process down): ask again
                        logon(account)
                    continue
                if st["out"] and now - st["last_rx"] > 1.0:
                    logon(account)  # silent for a second with orders out: the peer restarted
                    continue
                while st["out"] < self.window:
                    st["n"] += 1
                    side = "buy" if rng.random() < 0.5 else "sell"
                    off = rng.randint(-2, 3)
                    price = 10_000 - off if side == "buy" else 10_000 + off
                    s.send(packb({
                        "type": "new_order", "v": 1, "client_order_id": f"{run_tag}-{st['n']}",
                        "symbol": SYM, "side": side, "order_type": "limit",
                        "qty": rng.randint(1, 5), "price": price,
                        "time_in_force": "IOC" if rng.random() < 0.5 else "GTC",
                    }))  # fmt: skip
                    st["out"] += 1
                    st["pending"].add(f"{run_tag}-{st['n']}")
            for sock, _ in poller.poll(50):
                account = next(a for a, s in socks.items() if s is sock)
                st = state[account]
                while True:
                    try:
                        frame = sock.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    st["last_rx"] = time.monotonic()
                    msgs = unpackb(frame)
                    for m in msgs if isinstance(msgs, list) else [msgs]:
                        self._handle(account, st, m, logon)

    def _handle(self, account: str, st: dict[str, Any], m: dict, logon: Any) -> None:
        kind = m.get("type")
        if kind == "logon_reply":
            if m.get("accepted"):
                st["on"], st["out"] = True, 0
            else:
                self.rejects["logon:" + str(m.get("reason"))] += 1
        elif kind == "execution_report":
            et = m.get("exec_type")
            if et == "new" or (et == "trade" and (account, m["client_order_id"]) not in self.acked):
                self.acked[(account, m["client_order_id"])] = m["order_id"]
                with self.acks_seen:
                    self.n_acks += 1
                    self.acks_seen.notify_all()
            if et == "trade":
                self.fills[account] += 1
            if m["client_order_id"] in st["pending"]:  # the first answer to a request
                st["pending"].discard(m["client_order_id"])
                st["out"] = max(0, st["out"] - 1)
            if et == "rejected":
                self.rejects[str(m.get("reject_reason"))] += 1
        elif kind == "protocol_reject":
            self.rejects[str(m.get("reason"))] += 1
            if m.get("reason") in ("not_logged_on", "session_revoked"):
                logon(account)
            else:
                st["out"] = max(0, st["out"] - 1)

    def wait_acks(self, more: int, timeout: float = 120.0) -> bool:
        """Until `more` acknowledgements beyond the count now arrived (a deadline only stops a
        broken run)."""
        with self.acks_seen:
            target = self.n_acks + more
            return self.acks_seen.wait_for(lambda: self.n_acks >= target, timeout)


async def _open_accounts(clearing: str, admin: str, n: int) -> dict[str, str]:
    async with ClearingClient(clearing, admin_token=admin) as c:
        out = {}
        for i in range(n):
            opened = await c.open_account(f"rel{i}", cash=CASH, positions={SYM: SHARES})
            out[opened.account] = opened.token
        return out


async def _balances(clearing: str, accounts: dict[str, str]) -> dict[str, Any]:
    out = {}
    for account, token in accounts.items():
        async with ClearingClient(clearing, account=account, token=token) as c:
            bal = await c.balance()
            trades = await c.all_trades()
        out[account] = (bal, trades)
    return out


def _exchange_trades(snapshot: str, token: str) -> list[dict]:
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(snapshot)
    trades: list[dict] = []
    nxt = 1
    try:
        while True:
            s.send(
                msgpack.packb(
                    {
                        "type": "trade_replay_request",
                        "v": 1,
                        "from_trade_id": nxt,
                        "max_count": 1000,
                        "token": token,
                    }
                )
            )
            if not s.poll(30_000):
                raise TimeoutError("trade replay did not answer")
            (page,) = msgpack.unpackb(s.recv())
            if page.get("type") != "trade_replay":
                raise RuntimeError(f"trade replay refused: {page}")
            trades.extend(page["trades"])
            if not page["trades"] or page["trades"][-1]["trade_id"] >= page["end_trade_id"]:
                return trades
            nxt = page["trades"][-1]["trade_id"] + 1
    finally:
        s.close()


def _journalled_orders(journal_dir: Path) -> set[tuple[str, str]]:
    """(account, client order id) of every new order in the exchange's journal (every record
    from the first, whatever snapshot a restart used; read only), read in a separate process
    so this one holds no file handle the exchange might need."""
    code = (
        "import sys, json\n"
        "from exchange.journal import read_records\n"
        "from exchange.settings import ExchangeSettings\n"
        "path = ExchangeSettings(data_dir=sys.argv[1]).journal_path\n"
        "out = [[r[2], r[3]] for r in read_records(path) if r and r[0] == 'N']\n"
        "print(json.dumps(out))\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(journal_dir)], capture_output=True,
                         text=True, check=True)  # fmt: skip
    return {(a, c) for a, c in json.loads(res.stdout)}


def section_kill(kills: int, tmp: Path) -> dict[str, Any]:
    _say(f"== kill: {kills} SIGKILLs of the exchange and the clearing house under load")
    m = start_market(tmp)
    ports = {k: m.endpoints[k] for k in ("gateway", "feed", "snapshot", "dropcopy")}
    api = m.endpoints["clearing"]
    ex_env = {
        "AGORA_EXCHANGE_CLEARING": api, "AGORA_EXCHANGE_CLEARING_TOKEN": m.admin_token,
        "AGORA_EXCHANGE_CLEARING_LINK_SECRET": m.link_secret,
    }  # fmt: skip
    cl_env = {
        "AGORA_CLEARING_ADMIN_TOKEN": m.admin_token,
        "AGORA_CLEARING_LINK_SECRET": m.link_secret,
    }
    accounts = asyncio.run(_open_accounts(api, m.admin_token, 4))
    flow = Flow(m.endpoints["gateway"], accounts)
    flow.start()
    rng = random.Random(11)
    survived = 0
    try:
        if not flow.wait_acks(200):
            raise RuntimeError("the order flow never started")
        for k in range(kills):
            flow.wait_acks(rng.randint(50, 400))  # a random moment under load
            if k % 2 == 0:
                m.exchange.kill()
                m.exchange = start_exchange(tmp / "exchange", ports, **ex_env)
            else:
                m.clearing.kill()
                m.clearing = start_clearing(tmp / "clearing", ports, api=api, **cl_env)
            if flow.wait_acks(100):  # trading resumed after the restart
                survived += 1
            _say(f"   kill {k + 1}/{kills} ({'exchange' if k % 2 == 0 else 'clearing'}): "
                 f"{flow.n_acks:,} acks so far")  # fmt: skip
    finally:
        flow.stop_flag.set()
        flow.join(timeout=30)
    m.stop()  # graceful: journal flushed, clearing caught up and stopped
    # Once more, to read the settled state after every catch-up.
    m2 = _restart(tmp, ports, api, ex_env, cl_env)
    try:
        ex_trades = _exchange_trades(m2.endpoints["snapshot"], m.admin_token)
        _wait_settled(m2, api, accounts, max((t["trade_id"] for t in ex_trades), default=0))
        books = asyncio.run(_balances(api, accounts))
    finally:
        m2.stop()
    journalled = _journalled_orders(tmp / "exchange")
    lost = [key for key in flow.acked if key not in journalled]
    # every exchange trade settled once per side; nothing settled that was not traded
    settled = Counter()
    for account, (_, trades) in books.items():
        for t in trades:
            settled[(t.trade_id, account, t.side)] += 1
    expected = Counter()
    for t in ex_trades:
        if t["buy_account"] in accounts:
            expected[(t["trade_id"], t["buy_account"], "buy")] += 1
        if t["sell_account"] in accounts:
            expected[(t["trade_id"], t["sell_account"], "sell")] += 1
    missing = sum((expected - settled).values())
    doubled = sum(n - 1 for n in settled.values() if n > 1)
    extra = sum(1 for key in settled if key not in expected)
    pos = sum(
        next((p.qty for p in bal.positions if p.symbol == SYM), 0) for bal, _ in books.values()
    )
    cash = sum(bal.cash + bal.fees_paid for bal, _ in books.values())
    deposits = sum(bal.deposits for bal, _ in books.values())
    out = {
        "kills": kills, "kills_survived": survived, "acked_orders": len(flow.acked),
        "acked_orders_lost": len(lost), "exchange_trades": len(ex_trades),
        "trades_unsettled": missing, "trades_settled_twice": doubled,
        "settled_not_traded": extra,
        "shares_conserved": pos == SHARES * len(accounts),
        "cash_conserved": cash == deposits, "rejects": dict(flow.rejects),
    }  # fmt: skip
    _say(f"   kills survived            {survived} of {kills}")
    _say(f"   acknowledged orders       {len(flow.acked):,}; lost: {len(lost)} (must be 0)")
    _say(f"   exchange trades           {len(ex_trades):,}; unsettled: {missing}, settled "
         f"twice: {doubled}, settled but not traded: {extra} (all must be 0)")  # fmt: skip
    _say(f"   shares conserved          {out['shares_conserved']} ({pos:,} of "
         f"{SHARES * len(accounts):,})")  # fmt: skip
    _say(f"   cash conserved (w/ fees)  {out['cash_conserved']}")
    return out


def _restart(tmp: Path, ports: dict, api: str, ex_env: dict, cl_env: dict) -> Market:
    clearing = start_clearing(tmp / "clearing", ports, api=api, **cl_env)
    exchange = start_exchange(tmp / "exchange", ports, **ex_env)
    endpoints = dict(exchange.ready)
    endpoints["clearing"] = clearing.ready["api"]
    return Market(exchange, clearing, cl_env["AGORA_CLEARING_ADMIN_TOKEN"], endpoints)


def _wait_settled(m: Market, api: str, accounts: dict[str, str], last_id: int) -> None:
    """Until clearing reports it settled through the exchange's last trade id (ids carry the
    exchange's epoch: they are not a count)."""
    account, token = next(iter(accounts.items()))

    async def through() -> int:
        async with ClearingClient(api, account=account, token=token) as c:
            return (await c.balance()).settled_through

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if asyncio.run(through()) >= last_id:
            return
        time.sleep(0.2)  # polling a status; the deadline only stops a broken run
    raise TimeoutError("clearing did not catch up with the exchange")


# ---------------------------------------------------------------------------- fuzz
def _mutations(rng: random.Random) -> bytes | list[bytes]:
    base = {
        "type": rng.choice(
            [
                "new_order",
                "cancel_order",
                "replace_order",
                "mass_cancel",
                "logon",
                "open_orders_request",
                "snapshot_request",
                "trade_replay_request",
                "open_account",
                "balance_request",
                "hold_reply",
                "risk_subscribe",
                "x" * rng.randint(0, 300),
            ]
        ),
        "v": rng.choice([1, 0, 2, -1, 2**64 - 1, "1", None]),
        "client_order_id": rng.choice(["a", "", "x" * 5000, 5, None, b"\xff\xfe"]),
        "symbol": rng.choice([SYM, "ZZZ", "", None, 3, "A" * 100]),
        "side": rng.choice(["buy", "sell", "hold", 1, None]),
        "order_type": rng.choice(["limit", "market", "stop", None]),
        "qty": rng.choice([1, 0, -1, 2**63, -(2**63), 1.5, "7", True, None]),
        "price": rng.choice([10_000, 0, -5, 2**63, 1e308, float("nan"), "p", None]),
        "account": rng.choice(["rel0", "admin", "", None]),
        "token": rng.choice(["", "x", None, 7]),
        "request_id": rng.choice(["1", 1, None]),
    }
    for key in rng.sample(list(base), rng.randint(0, 5)):
        del base[key]
    kind = rng.randrange(6)
    if kind == 0:
        return rng.randbytes(rng.randint(0, 200))
    if kind == 1:
        return msgpack.packb(base)
    if kind == 2:
        return msgpack.packb([base] * rng.randint(0, 30))
    if kind == 3:
        good = bytearray(msgpack.packb(base))
        for _ in range(rng.randint(1, 4)):
            if good:
                good[rng.randrange(len(good))] = rng.randrange(256)
        return bytes(good)
    if kind == 4:  # frames of odd shapes
        return [rng.randbytes(rng.randint(0, 20)) for _ in range(rng.randint(0, 4))]
    return msgpack.packb(rng.choice([None, 1, "s", [], {}, [[[[]]]], {"type": None}]))


def section_fuzz(n: int, tmp: Path) -> dict[str, Any]:
    _say(f"== fuzz: {n:,} hostile frames to the gateway, snapshot service and clearing port")
    m = start_market(tmp)
    accounts = asyncio.run(_open_accounts(m.endpoints["clearing"], m.admin_token, 1))
    account, token = next(iter(accounts.items()))
    ctx = zmq.Context()
    targets = []
    for name in ("gateway", "snapshot", "clearing"):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 0)
        s.connect(m.endpoints[name])
        targets.append(s)
    logged = ctx.socket(zmq.DEALER)
    logged.setsockopt(zmq.LINGER, 0)
    logged.connect(m.endpoints["gateway"])
    logged.send(msgpack.packb({"type": "logon", "v": 1, "account": account, "token": token}))
    targets.append(logged)
    rng = random.Random(5)
    sent = 0
    for i in range(n):
        s = targets[i % len(targets)]
        frame = _mutations(rng)
        try:
            if isinstance(frame, list):
                if frame:
                    s.send_multipart(frame)
            else:
                s.send(frame)
            sent += 1
        except zmq.ZMQError:
            pass
        if i % 500 == 0:  # drain answers so no queue fills up
            for t in targets:
                while t.poll(0):
                    t.recv_multipart()
    crashes = sum(1 for p in (m.exchange, m.clearing) if p.returncode is not None)
    alive = _still_answers(m, account, token) if not crashes else False
    m.stop()
    ctx.destroy(linger=0)
    _say(f"   fuzzed frames sent        {sent:,}")
    _say(f"   process crashes           {crashes} (must be 0)")
    _say(f"   still answering           {alive} (a logon from another address)")
    return {"fuzzed_frames": sent, "crashes": crashes, "answers_after": alive}


def _still_answers(m: Market, account: str, token: str) -> bool:
    """A logon from another address (127.0.0.2) is answered: the fuzzer's own address is
    deep in debt with its per-address budgets, as it should be."""
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    host_port = m.endpoints["gateway"].removeprefix("tcp://")
    s.connect(f"tcp://127.0.0.2:0;{host_port}")
    try:
        s.send(msgpack.packb({"type": "logon", "v": 1, "account": account, "token": token}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not s.poll(1000):
                continue
            for msg in msgpack.unpackb(s.recv()):
                if msg.get("type") == "logon_reply":
                    return bool(msg.get("accepted"))
        return False
    finally:
        s.close()


# ---------------------------------------------------------------------------- hijack
def section_hijack(attempts: int, tmp: Path) -> dict[str, Any]:
    _say(f"== hijack: {attempts} routing-id takeover attempts on logged-on sessions")
    m = start_market(tmp)
    accounts = asyncio.run(_open_accounts(m.endpoints["clearing"], m.admin_token, 1))
    account, token = next(iter(accounts.items()))
    ctx = zmq.Context()
    accepted = 0
    gw = m.endpoints["gateway"]
    for i in range(attempts):
        rid = f"victim-{i}".encode()
        victim = ctx.socket(zmq.DEALER)
        victim.setsockopt(zmq.LINGER, 0)
        victim.setsockopt(zmq.ROUTING_ID, rid)
        victim.connect(gw)
        victim.send(msgpack.packb({"type": "logon", "v": 1, "account": account,
                                   "token": token}))  # fmt: skip
        _wait_type(victim, "logon_reply")
        after_leave = i % 2 == 1
        if after_leave:  # the owner has gone; its session must have gone with it
            victim.close()
        attacker = ctx.socket(zmq.DEALER)
        attacker.setsockopt(zmq.LINGER, 0)
        attacker.setsockopt(zmq.ROUTING_ID, rid)
        attacker.connect(gw)
        clid = f"hijack-{i}"
        attacker.send(msgpack.packb({
            "type": "new_order", "v": 1, "client_order_id": clid, "symbol": SYM,
            "side": "buy", "order_type": "limit", "qty": 1, "price": 9_000,
        }))  # fmt: skip
        # An answer to the attacker, or (refused at the transport) none; either way the
        # truth is the victim account's open orders, asked on a fresh, honest session.
        attacker.poll(2000)
        if _has_open_order(ctx, gw, account, token, clid):
            accepted += 1
        attacker.close()
        if not after_leave:
            victim.close()
    # The clearing port: the exchange's risk link (every account's state, and the answers to
    # withdrawal holds) subscribed to by a connection that does not hold the link secret.
    link_taken = 0
    for i in range(attempts):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(m.endpoints["clearing"])
        secret = m.admin_token if i % 2 == 0 else f"guess-{i}"  # the admin's token is not it
        s.send(msgpack.packb({"type": "risk_subscribe", "v": 1, "request_id": f"r{i}",
                              "admin_token": secret, "gate": True}))  # fmt: skip
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and s.poll(500):
            msg = msgpack.unpackb(s.recv())
            if isinstance(msg, dict) and msg.get("type") == "risk_state":
                link_taken += 1
                break
            if isinstance(msg, dict) and msg.get("type") in ("clearing_reject", "reject"):
                break
        s.close()
    m.stop()
    ctx.destroy(linger=0)
    _say(f"   hijack attempts accepted  {accepted} of {attempts} (must be 0)")
    _say(f"   risk link subscriptions without the link secret accepted: {link_taken} of "
         f"{attempts} (must be 0)")  # fmt: skip
    return {"hijack_attempts": attempts, "hijacks_accepted": accepted,
            "link_attempts": attempts, "link_accepted": link_taken}  # fmt: skip


def _wait_type(s: zmq.Socket, kind: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if s.poll(1000):
            for msg in msgpack.unpackb(s.recv()):
                if msg.get("type") == kind:
                    return msg
    raise TimeoutError(f"no {kind}")


def _has_open_order(ctx: zmq.Context, gw: str, account: str, token: str, clid: str) -> bool:
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(gw)
    try:
        s.send(msgpack.packb({"type": "logon", "v": 1, "account": account, "token": token}))
        _wait_type(s, "logon_reply")
        s.send(msgpack.packb({"type": "open_orders_request", "v": 1, "request_id": "q"}))
        reply = _wait_type(s, "open_orders")
        return any(o.get("client_order_id") == clid for o in reply["orders"])
    finally:
        s.close()


# ---------------------------------------------------------------------------- delegated
def section_script(name: str, args: list[str]) -> dict[str, Any]:
    script = BENCH / f"{name}.py"
    _say(f"== {name}: python bench/{name}.py {' '.join(args)}")
    if not script.exists():
        _say(f"   (bench/{name}.py is not here)")
        return {}
    res = subprocess.run([sys.executable, str(script), *args], text=True, capture_output=True)
    for line in res.stdout.splitlines():
        _say("   " + line)
    if res.returncode:
        _say(f"   exited {res.returncode}: {res.stderr.strip().splitlines()[-1:]}")
    return {"exit": res.returncode}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--fuzz", type=int, default=20_000)
    ap.add_argument("--hijacks", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    ap.add_argument("--only", default="kill,fuzz,hijack,flood,restart")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    a = ap.parse_args()
    if a.quick:
        a.kills, a.fuzz, a.hijacks = 2, 2_000, 4
    only = set(a.only.split(","))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if "kill" in only:
            results["kill"] = section_kill(a.kills, root / "kill")
        if "fuzz" in only:
            results["fuzz"] = section_fuzz(a.fuzz, root / "fuzz")
        if "hijack" in only:
            results["hijack"] = section_hijack(a.hijacks, root / "hijack")
    if "flood" in only:
        results["flood"] = section_script("flood", ["--rounds", "1"] if a.quick else [])
    if "restart" in only:
        results["restart"] = section_script("restart", ["--quick"] if a.quick else [])
    if a.json:
        print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
