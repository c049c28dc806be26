"""`agora up`: a whole market as local child processes, with a live status panel.

The services are `deploy.services.services(market, plan)`, the same list docker compose gets.
Each starts in order and is waited for (its ``AGORA_READY`` line); logs go to files under
``<data>/logs`` so no child ever blocks on a pipe. Children run in their own session, so a
Ctrl-C in the terminal reaches only `agora up`, which then stops them in reverse order:
agents first (they cancel their orders and reconcile with clearing), the recorder (it flushes
its Parquet files), then the fundamental source, the exchange and clearing. On Linux each child
also gets SIGTERM if `agora up` itself dies, so nothing is left running.

A crashed service is restarted (up to `max_restarts` times) with the same settings: the
exchange replays its journal, clearing reloads its database, a runner takes its accounts back.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import zmq
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from agents.config import MarketConfig
from deploy.launch import Proc, free_endpoint
from deploy.services import DEFAULT_PORTS, Plan, Service, services

__all__ = ["Up", "free_ports"]


def free_ports() -> dict[str, int]:
    return {role: int(free_endpoint().rsplit(":", 1)[1]) for role in DEFAULT_PORTS}


def _die_with_parent() -> None:  # pragma: no cover (runs in the child)
    """Linux: SIGTERM this child when its parent (agora up) dies, even by kill -9."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _Child(Proc):
    """A service process in its own session (Ctrl-C in the terminal does not reach it)."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        super().__init__(
            args, env, log_path=log_path, start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )  # fmt: skip


@dataclass
class _Running:
    service: Service
    proc: _Child
    restarts: int = 0
    failed: str = ""


@dataclass
class _Tape:
    """Trades seen on the feed: counts, volume, last price, a rate over the last seconds."""

    trades: int = 0
    volume: int = 0
    last: dict[str, int] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)

    def rate(self, now: float, window: float = 5.0) -> float:
        self.times = [t for t in self.times if now - t <= window]
        return len(self.times) / window


class Up:
    def __init__(
        self,
        market: MarketConfig,
        data_dir: Path,
        ports: dict[str, int] | None = None,
        admin_token: str = "",
        max_restarts: int = 3,
        console: Console | None = None,
    ) -> None:
        import secrets

        self.market = market
        check_market(market)
        self.data_dir = data_dir.resolve()
        token_file = self.data_dir / "admin.token"
        if not admin_token and token_file.exists():
            admin_token = token_file.read_text().strip()
        self.admin_token = admin_token or secrets.token_urlsafe(24)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never 0644
        with os.fdopen(fd, "w") as fh:
            fh.write(self.admin_token + "\n")
        self.plan = Plan(ports=ports or dict(DEFAULT_PORTS), data_dir=str(self.data_dir),
                         admin_token=self.admin_token)  # fmt: skip
        self.services = services(market, self.plan)
        self.max_restarts = max_restarts
        self.running: list[_Running] = []
        self.console = console or Console(stderr=True)
        self.tape = _Tape()
        self.started = time.monotonic()

    @property
    def endpoints(self) -> dict[str, str]:
        return {role: self.plan.connect("exchange", role) for role in DEFAULT_PORTS} | {
            "clearing": self.plan.connect("clearing", "clearing"),
            "fundamental": self.plan.connect("fundamental", "fundamental"),
        }

    # ------------------------------------------------------------------ start / stop
    def _spawn(self, svc: Service) -> _Child:
        env = {**os.environ, **svc.env}
        argv = [sys.executable, *svc.argv[1:]]
        return _Child(argv, env, self.data_dir / "logs" / f"{svc.name}.log")

    def start(self) -> None:
        for svc in self.services:
            self.console.log(f"starting {svc.name}")
            try:
                proc = self._spawn(svc)
            except RuntimeError as exc:  # it exited before it was ready: say why, in its words
                last = [line for line in str(exc).splitlines() if line.strip()]
                why = escape(last[-1] if last else str(exc))
                self.console.print(f"[red]{svc.name} did not start:[/] {why}", soft_wrap=True)
                raise SystemExit(2) from None
            self.running.append(_Running(svc, proc))

    def check(self) -> None:
        """Restart (or give up on) crashed services."""
        for r in self.running:
            code = r.proc.returncode
            if code is None or r.failed:
                continue
            tail = r.proc.stop()[-2000:]
            if r.restarts >= self.max_restarts:
                r.failed = f"exited {code}"
                self.console.log(f"[red]{r.service.name} exited {code}; giving up[/]\n{tail}")
                continue
            r.restarts += 1
            self.console.log(f"[yellow]{r.service.name} exited {code}; restarting[/]")
            try:
                r.proc = self._spawn(r.service)
            except RuntimeError as exc:
                r.failed = str(exc)[:200]

    def stop(self) -> dict[str, Any]:
        """Stop everything in reverse order; returns the final summary."""
        results: dict[str, Any] = {}
        summary: dict[str, Any] = {}
        for r in reversed(self.running):
            if r.service.name == "clearing":
                summary["accounts"] = self._leaderboard()
            sig = signal.SIGINT if r.service.module == "agents" else signal.SIGTERM
            r.proc.stop(sig, timeout=60)
            out = getattr(r.proc, "output", "")
            for line in out.splitlines():
                if line.startswith("AGORA_RESULT "):
                    results[r.service.name] = json.loads(line[len("AGORA_RESULT ") :])
        summary.update({
            "trades": self.tape.trades, "volume": self.tape.volume, "last": self.tape.last,
            "agents": {k: {x: v[x] for x in ("agents", "orders", "fills", "errors")}
                       | {"mismatches": len(v["mismatches"])} for k, v in results.items()},
            "restarts": {r.service.name: r.restarts for r in self.running if r.restarts},
        })  # fmt: skip
        return summary

    def _leaderboard(self) -> list[dict[str, Any]]:
        from clearing.client import request_sync
        from clearing.protocol import ListAccounts

        try:
            reply = request_sync(self.endpoints["clearing"],
                                 ListAccounts(admin_token=self.admin_token), timeout=5)  # fmt: skip
        except Exception as exc:
            self.console.log(f"no leaderboard: {exc}")
            return []
        return [{"account": b.account, "cash": b.cash, "pnl": b.pnl, "equity": b.equity,
                 "settled_through": b.settled_through} for b in reply.accounts]  # fmt: skip

    # ------------------------------------------------------------------ the panel
    def _follow_trades(self, sub: zmq.Socket) -> None:
        now = time.monotonic()
        for _ in range(10_000):
            try:
                _topic, payload = sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except ValueError:
                continue
            try:
                msgs = msgpack.unpackb(payload)
            except Exception:
                continue
            for m in msgs if isinstance(msgs, list) else ():
                if isinstance(m, dict) and m.get("type") == "trade":
                    self.tape.trades += 1
                    self.tape.volume += int(m.get("qty", 0))
                    self.tape.last[str(m.get("symbol"))] = int(m.get("price", 0))
                    self.tape.times.append(now)

    def panel(self) -> Group:
        agents = sum(int(r.proc.ready.get("agents", 0)) for r in self.running
                     if r.service.module == "agents" and r.proc.returncode is None)  # fmt: skip
        table = Table(title=f"{self.market.name}: {len(self.running)} services, "
                            f"{agents} agents connected")  # fmt: skip
        for col in ("service", "pid", "state", "restarts"):
            table.add_column(col)
        for r in self.running:
            state = "[red]" + r.failed if r.failed else (
                "[green]up" if r.proc.returncode is None else f"[yellow]exit {r.proc.returncode}"
            )
            table.add_row(r.service.name, str(r.proc.popen.pid), state, str(r.restarts))
        now = time.monotonic()
        prices = ", ".join(f"{s} {p / 100:,.2f}" for s, p in self.tape.last.items()) or "-"
        market = Table(title="market")
        for col in ("elapsed", "trades", "trades/s", "volume", "last price"):
            market.add_column(col, justify="right")
        market.add_row(f"{now - self.started:,.0f} s", f"{self.tape.trades:,}",
                       f"{self.tape.rate(now):,.0f}", f"{self.tape.volume:,}", prices)  # fmt: skip
        return Group(table, market)

    def run(self, duration: float = 0.0) -> dict[str, Any]:
        """Start, show the panel until Ctrl-C (or `duration`), stop; returns the summary."""
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        stop_requested = False

        def on_term(_sig: int, _frame: Any) -> None:
            nonlocal stop_requested
            stop_requested = True

        old = signal.signal(signal.SIGTERM, on_term)
        try:
            self.start()
            sub.connect(self.endpoints["feed"])
            for spec in self.market.symbols:
                sub.setsockopt(zmq.SUBSCRIBE, f"{spec.symbol}|trades".encode())
            print("AGORA_READY " + json.dumps({
                "endpoints": self.endpoints, "admin_token": self.admin_token,
                "pids": {r.service.name: r.proc.popen.pid for r in self.running},
            }), flush=True)  # fmt: skip
            poller = zmq.Poller()
            poller.register(sub, zmq.POLLIN)
            with Live(self.panel(), console=self.console, refresh_per_second=4) as live:
                while not stop_requested and (not duration or
                                              time.monotonic() - self.started < duration):
                    if poller.poll(250):
                        self._follow_trades(sub)
                    self.check()
                    live.update(self.panel())
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, old)
            self.console.log("stopping...")
            with contextlib.suppress(KeyboardInterrupt):
                self._follow_trades(sub)
            summary = self.stop()
            sub.close()
            ctx.term()
        self._print_summary(summary)
        return summary

    def _print_summary(self, summary: dict[str, Any]) -> None:
        table = Table(title=f"{summary['trades']:,} trades, volume {summary['volume']:,} lots")
        for col in ("#", "account", "equity", "PnL"):
            table.add_column(col, justify="left" if col == "account" else "right")
        for i, a in enumerate(summary.get("accounts", [])[:15], 1):
            table.add_row(str(i), a["account"], f"{a['equity'] / 100:,.2f}",
                          f"{a['pnl'] / 100:,.2f}")  # fmt: skip
        self.console.print(table)
        print("AGORA_SUMMARY " + json.dumps(summary), flush=True)


def check_market(market: MarketConfig) -> None:
    """Refuse a market whose populations would fail in their runners (before starting any)."""
    from agents.strategies import load_strategy

    for pop in market.populations:
        try:
            cls = load_strategy(pop.strategy)
            cls.Params.model_validate(pop.params)
        except Exception as exc:
            raise ValueError(f"population {pop.name!r} ({pop.strategy}): {exc}") from None


def fresh(data_dir: Path) -> None:
    """Forget a previous market in `data_dir` (journal, database, recordings, logs)."""
    if data_dir.exists():
        shutil.rmtree(data_dir)
