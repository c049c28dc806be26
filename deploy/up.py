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

With the `web` extra installed it also starts the web dashboard (`dashboard`; its URL is
printed; ``web=False`` skips it), and with ``metrics`` every service serves Prometheus
metrics on its own port (`deploy.services.METRICS_PORTS`).

The terminal is for people: a status panel with prices in currency, then the leaderboard
(ranked by trading PnL, `deploy.leaderboard`). Machine output goes to files in the data
directory (``summary.json``; ``agora.env`` with the addresses, ``market.json``, and
``admin.token``, owner-only, which is never printed) and, with ``json_out``, to stdout as one
JSON object per line (``{"event": "ready", ...}``, ``{"event": "summary", ...}``), without
the token.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack
import zmq
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from agents import market_dir, units
from agents.config import MarketConfig
from deploy import leaderboard
from deploy.launch import Proc, free_endpoint
from deploy.services import DEFAULT_PORTS, WEB_PORT, Plan, Service, metrics_ports, services

__all__ = ["Up", "extra_ports", "free_ports", "ports_in_use", "web_installed"]


def free_ports() -> dict[str, int]:
    return {role: int(free_endpoint().rsplit(":", 1)[1]) for role in DEFAULT_PORTS}


def web_installed() -> bool:
    """Is the dashboard's web stack (the `web` extra) importable here?"""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("starlette", "uvicorn"))


def extra_ports(market: MarketConfig, web: bool, metrics: bool, free: bool) -> dict[str, int]:
    """The dashboard's port (``"dashboard"``) and each service's metrics port
    (``"metrics:<service>"``): the defaults, or free ones."""
    wanted = ({"dashboard": WEB_PORT} if web else {}) | (
        {f"metrics:{k}": v for k, v in metrics_ports(market).items()} if metrics else {})
    if free:
        return {k: int(free_endpoint().rsplit(":", 1)[1]) for k in wanted}
    return wanted


def ports_in_use(ports: dict[str, int] | None = None) -> dict[str, int]:
    """The ports (default: the standard ones) that something on this machine already listens
    on, asked before anything starts: most often another `agora up`, which deserves one line
    saying so rather than the first service's failure halfway through the start."""
    import socket

    taken = {}
    for role, port in (ports or DEFAULT_PORTS).items():
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as ZeroMQ binds
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                taken[role] = port
    return taken


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
    lots: dict[str, int] = field(default_factory=dict)  # volume per symbol
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
        json_out: bool = False,
        extra: dict[str, int] | None = None,  # `extra_ports`: the dashboard and metrics
        sample_s: float = 5.0,
    ) -> None:
        import secrets

        self.market = market
        check_market(market)
        self.data_dir = data_dir.resolve()
        self.token_file = token_file = self.data_dir / market_dir.TOKEN_FILE
        if not admin_token and token_file.exists():
            admin_token = token_file.read_text().strip()
        self.admin_token = admin_token or secrets.token_urlsafe(24)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never 0644
        with os.fdopen(fd, "w") as fh:
            fh.write(self.admin_token + "\n")
        # The exchange's risk link proves its own secret to clearing, kept like the token.
        secret_file = self.data_dir / "link.secret"
        if not secret_file.exists():
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(24) + "\n")
        extra = extra or {}
        self.plan = Plan(ports=ports or dict(DEFAULT_PORTS), data_dir=str(self.data_dir),
                         admin_token=self.admin_token,
                         link_secret=secret_file.read_text().strip(),
                         web_port=extra.get("dashboard"),
                         metrics={k.split(":", 1)[1]: v for k, v in extra.items()
                                  if k.startswith("metrics:")})  # fmt: skip
        self.services = services(market, self.plan)
        self.max_restarts = max_restarts
        self.running: list[_Running] = []
        self.console = console or Console(stderr=True, log_path=False)
        self.json_out = json_out
        self.env_file = self.data_dir / market_dir.ENV_FILE
        self.summary_file = self.data_dir / "summary.json"
        self.specs = {s.symbol: s for s in market.symbols}
        self.tape = _Tape()
        self.scenario = ""  # the last stress scenario announced, for the panel
        self.started = time.monotonic()
        # every account's trading PnL from clearing every `sample_s`: the leaderboard's Sharpe
        # ratio and drawdown are measured on it (deploy.leaderboard.PnlHistory)
        self.history = leaderboard.PnlHistory(sample_s)
        self._sampling = threading.Event()  # set: stop sampling
        self._sampler: threading.Thread | None = None

    @property
    def endpoints(self) -> dict[str, str]:
        return {role: self.plan.connect("exchange", role) for role in DEFAULT_PORTS} | {
            "clearing": self.plan.connect("clearing", "clearing"),
            "fundamental": self.plan.connect("fundamental", "fundamental"),
            "fundamental_control": self.plan.connect("fundamental", "fundamental_control"),
        }

    def client_env(self) -> dict[str, str]:
        """What a client needs to find this market (no secret: the token's path, not it)."""
        ep = self.endpoints
        return {
            "AGORA_DATA_DIR": str(self.data_dir),
            "AGORA_GATEWAY": ep["gateway"], "AGORA_FEED": ep["feed"],
            "AGORA_SNAPSHOT": ep["snapshot"], "AGORA_CLEARING": ep["clearing"],
            "AGORA_FUNDAMENTAL": ep["fundamental"],
            "AGORA_FUNDAMENTAL_CONTROL": ep["fundamental_control"],
            "AGORA_SYMBOLS": json.dumps([s.model_dump(mode="json", exclude_defaults=True)
                                         for s in self.market.symbols], separators=(",", ":")),
            "AGORA_ADMIN_TOKEN_FILE": str(self.token_file),
        }  # fmt: skip

    def write_files(self) -> None:
        """``agora.env`` (source it in another terminal) and ``market.json`` (the leaderboard
        of `agora accounts` reads the starting allocations from it)."""
        market_dir.write_env_file(
            self.env_file, self.client_env(),
            comment=f"Agora market {self.market.name!r}, written by agora up.\n"
                    f"source {self.env_file} (addresses only; the admin token stays in "
                    f"{self.token_file.name}).",
        )  # fmt: skip
        (self.data_dir / "market.json").write_text(self.market.model_dump_json(indent=2))

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
        self.write_files()

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
        self.stop_sampling()
        results: dict[str, Any] = {}
        summary: dict[str, Any] = {"market": self.market.name}
        for r in reversed(self.running):
            if r.service.name == "clearing":
                rows = self._leaderboard()
                if rows:
                    self.history.add(time.time_ns(), rows)
                # the runners stopped first: their results say what each agent posted
                activity = {row.get("account", row.get("agent")): row
                            for res in results.values() for row in res.get("pnl", [])}
                leaderboard.with_metrics(rows, self.history, activity)
                summary["accounts"] = [row.as_dict() for row in rows]
                summary["strategies"] = leaderboard.by_strategy(rows, self.history, activity)
                summary["metrics_note"] = self.history.note
            sig = signal.SIGINT if r.service.module == "agents" else signal.SIGTERM
            r.proc.stop(sig, timeout=60)
            out = getattr(r.proc, "output", "")
            for line in out.splitlines():
                if line.startswith("AGORA_RESULT "):
                    results[r.service.name] = json.loads(line[len("AGORA_RESULT ") :])
        summary.update({
            "units": "prices in ticks, volume in lots, cash and PnL in cash units (0.01)",
            "trades": self.tape.trades, "volume": self.tape.volume, "last": self.tape.last,
            "agents": {k: {x: v[x] for x in ("agents", "orders", "fills", "errors")}
                       | {"mismatches": len(v["mismatches"])} for k, v in results.items()},
            "restarts": {r.service.name: r.restarts for r in self.running if r.restarts},
        })  # fmt: skip
        return summary

    def _leaderboard(self, timeout: float = 5, quiet: bool = False) -> list[leaderboard.Row]:
        from clearing.client import request_sync
        from clearing.protocol import ListAccounts

        try:
            reply = request_sync(self.endpoints["clearing"],
                                 ListAccounts(admin_token=self.admin_token),
                                 timeout=timeout)  # fmt: skip
        except Exception as exc:
            if not quiet:
                self.console.log(f"no leaderboard: {exc}")
            return []
        return leaderboard.rank(reply.accounts, self.market)

    def start_sampling(self) -> None:
        """Every `history.interval_s`, every account's PnL from clearing into `history`, in a
        thread of its own: a slow answer (a thousand accounts, a busy machine) never holds up
        the panel, and a clearing house that does not answer only costs that sample."""

        def loop() -> None:
            said = False
            while not self._sampling.wait(self.history.interval_s):
                if not any(r.service.name == "clearing" and r.proc.returncode is None
                           for r in self.running):  # fmt: skip
                    continue
                try:
                    rows = self._leaderboard(timeout=self.history.interval_s, quiet=said)
                except Exception as exc:  # a market file the split cannot use, say: once
                    rows = []
                    if not said:
                        self.console.log(f"no PnL sample: {exc}")
                said = said or not rows
                if rows and not self._sampling.is_set():
                    self.history.add(time.time_ns(), rows)

        self._sampler = threading.Thread(target=loop, name="pnl-sampler", daemon=True)
        self._sampler.start()

    def stop_sampling(self) -> None:
        self._sampling.set()
        if self._sampler is not None and self._sampler.ident is not None:  # it did start
            self._sampler.join(timeout=2 * self.history.interval_s + 5)

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
            if _topic == b"!scenario" and isinstance(msgs, dict):
                kinds = ", ".join(str(p.get("kind")) for p in msgs.get("parts", [])
                                  if isinstance(p, dict))  # fmt: skip
                self.scenario = (f"scenario {msgs.get('name')} ({kinds}) received at "
                                 f"{units.timestamp(time.time_ns())}")  # fmt: skip
                self.console.log(self.scenario)
                continue
            for m in msgs if isinstance(msgs, list) else ():
                if isinstance(m, dict) and m.get("type") == "trade":
                    self.tape.trades += 1
                    qty, symbol = int(m.get("qty", 0)), str(m.get("symbol"))
                    self.tape.volume += qty
                    self.tape.lots[symbol] = self.tape.lots.get(symbol, 0) + qty
                    self.tape.last[symbol] = int(m.get("price", 0))
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
        prices = ", ".join(f"{s} {units.price(self._spec(s), p)}"
                           for s, p in self.tape.last.items()) or "-"  # fmt: skip
        market = Table(title="market", caption=self.scenario or None)
        for col in ("running for", "trades", "trades/s", "volume (shares)", "last price"):
            market.add_column(col, justify="right")
        elapsed = int(now - self.started)
        market.add_row(f"{elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}",
                       f"{self.tape.trades:,}", f"{self.tape.rate(now):,.0f}",
                       self._shares(self.tape.lots), prices)  # fmt: skip
        return Group(table, market, *self._live_board())

    def _live_board(self, top: int = 5) -> list[Table]:
        """The best `top` accounts by trading PnL at the last sample, with the Sharpe ratio and
        drawdown of their sampled PnL (the fill ratio comes at stop, from the runners)."""
        h = self.history
        if len(h) < 2:
            return []
        last = sorted(((v, a) for a, v in h.last().items() if v == v), reverse=True)[:top]
        board = Table(title=f"leaderboard (trading PnL, sampled every {h.interval_s:g} s)")
        for col in ("account", "trading PnL", "Sharpe", "max drawdown"):
            board.add_column(col, justify="left" if col == "account" else "right")
        for value, account in last:
            ratio, depth = h.measure([account])
            board.add_row(account, units.money(value), "-" if ratio is None else f"{ratio:,.2f}",
                          "-" if depth is None else units.money(depth))  # fmt: skip
        return [board]

    def _shares(self, lots: dict[str, int]) -> str:
        total = sum((self._spec(s).lot_size * q for s, q in lots.items()), Decimal(0))
        return f"{int(total):,}" if total == total.to_integral_value() else f"{total:,}"

    def _spec(self, symbol: str) -> Any:
        return self.specs.get(symbol) or units.spec_for(symbol, None)

    def _announce(self) -> None:
        """Where things are: for the person at the terminal (and, with --json, programs)."""
        here = Path.cwd()

        def rel(p: Path) -> str:
            return str(p.relative_to(here)) if p.is_relative_to(here) else str(p)

        ep = self.endpoints
        default = self.data_dir.resolve() == (here / "var").resolve()  # the commands' default
        where = "from here" if default else f"with --data-dir {rel(self.data_dir)}"
        self.console.print(
            f"[bold]{self.market.name}[/] is starting in {rel(self.data_dir)}/\n"
            f"  other terminals:  [bold]source {rel(self.env_file)}[/]  (gateway "
            f"{ep['gateway']}, feed {ep['feed']}, clearing {ep['clearing']})\n"
            f"  admin token:      {rel(self.token_file)} (owner-only, never printed; agora "
            f"attach, accounts and open-account find it {where}, or anywhere after source "
            f"{rel(self.env_file)})\n"
            f"  recording:        {rel(self.data_dir / 'recorder')}/ (readable while it runs)\n"
            f"  logs:             {rel(self.data_dir / 'logs')}/<service>.log\n"
            + self._url_lines() +
            "  Ctrl-C stops the market and prints the leaderboard.",
            highlight=False, soft_wrap=True,
        )  # fmt: skip
        if self.json_out:
            print(json.dumps({
                "event": "ready", "market": self.market.name, "data_dir": str(self.data_dir),
                "endpoints": ep, "env_file": str(self.env_file),
                "admin_token_file": str(self.token_file), **self._urls(),
                "pids": {r.service.name: r.proc.popen.pid for r in self.running},
            }), flush=True)  # fmt: skip

    def _urls(self) -> dict[str, Any]:
        """The dashboard's address (from its ready line) and, with metrics, each service's."""
        out: dict[str, Any] = {}
        for r in self.running:
            if r.service.name == "dashboard" and r.proc.ready.get("dashboard"):
                out["dashboard"] = r.proc.ready["dashboard"]
        if self.plan.metrics:
            out["metrics"] = {name: self.plan.metrics_url(name) for name in self.plan.metrics}
        return out

    def _url_lines(self) -> str:
        urls = self._urls()
        lines = [f"  dashboard:        {urls['dashboard']}\n"] if "dashboard" in urls else []
        if "metrics" in urls:
            ports = ", ".join(f"{k} {v.rsplit(':', 1)[1].split('/')[0]}"
                              for k, v in urls["metrics"].items())  # fmt: skip
            lines.append(f"  metrics:          http://127.0.0.1:PORT/metrics ({ports})\n")
        return "".join(lines)

    def run(self, duration: float = 0.0) -> dict[str, Any]:
        """Start, show the panel until Ctrl-C (or `duration`), stop; returns the summary."""
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        stop_requested = False

        def on_stop(_sig: int, _frame: Any) -> None:
            nonlocal stop_requested
            stop_requested = True

        old = signal.signal(signal.SIGTERM, on_stop)
        # Ctrl-C (SIGINT) stops the market even where it was ignored when we started (a
        # background job of a non-interactive shell inherits SIG_IGN, and Python then installs
        # no KeyboardInterrupt handler of its own)
        old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            self.start()  # interruptible: a service that never gets ready must not hold Ctrl-C
            # from here Ctrl-C only asks the loop below to end: the sampler thread and the panel
            # are never left half started (a join of an unstarted thread would fail the stop)
            signal.signal(signal.SIGINT, on_stop)
            sub.connect(self.endpoints["feed"])
            for spec in self.market.symbols:
                sub.setsockopt(zmq.SUBSCRIBE, f"{spec.symbol}|trades".encode())
            # stress scenarios as the fair-value process announces them (agents.stress.live)
            sub.connect(self.endpoints["fundamental"])
            sub.setsockopt(zmq.SUBSCRIBE, b"!scenario")
            self._announce()
            self.start_sampling()
            poller = zmq.Poller()
            poller.register(sub, zmq.POLLIN)
            scenarios = bool(self.market.scenario)
            with Live(self.panel(), console=self.console, refresh_per_second=4) as live:
                while not stop_requested and (not duration or
                                              time.monotonic() - self.started < duration):
                    if poller.poll(250):
                        self._follow_trades(sub)
                    if scenarios and self.tape.trades:
                        scenarios = False
                        self._send_scenarios()
                    self.check()
                    live.update(self.panel())
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, old)
            signal.signal(signal.SIGINT, old_int)
            self.console.log("stopping...")
            with contextlib.suppress(KeyboardInterrupt):
                self._follow_trades(sub)
            summary = self.stop()
            sub.close()
            ctx.term()
        self._print_summary(summary)
        return summary

    def _send_scenarios(self) -> None:
        """The market file's [[scenario]] tables, sent once the market trades (every runner is
        listening by then); their ``at_s`` counts from now (`agents.stress.live`)."""
        from agents.stress.library import build
        from agents.stress.live import request

        comp = build(self.market.scenario)
        host = self.market.populations[0].name if self.market.populations else None
        try:
            reply = request(self.endpoints["fundamental_control"], self.admin_token,
                            name=comp.name, parts=comp.as_tables(), host=host)  # fmt: skip
        except TimeoutError as exc:
            reply = {"type": "scenario_refused", "reason": str(exc)}
        if reply.get("type") == "scenario_accepted":
            self.console.log(f"scenario {comp.name} on: " + ", ".join(
                f"{p['kind']} at +{p['at_s']:g} s" for p in reply["parts"]))  # fmt: skip
        else:
            self.console.log(f"scenario {comp.name} refused: {reply.get('reason')}")

    def _print_summary(self, summary: dict[str, Any]) -> None:
        rows = [leaderboard.Row(**a) for a in summary.get("accounts", [])]
        for table in leaderboard.tables(rows, self.market, classes_rows=summary.get("strategies"),
                                        note=summary.get("metrics_note")):  # fmt: skip
            self.console.print(table)
        last = ", ".join(f"{s} {units.price(self._spec(s), p)}" for s, p in summary["last"].items())
        self.console.print(f"{summary['trades']:,} trades, {self._shares(self.tape.lots)} shares"
                           + (f", last price {last}" if last else "") + ".", highlight=False)
        tmp = self.summary_file.with_name(f".{self.summary_file.name}.tmp")
        tmp.write_text(json.dumps(summary, indent=1))
        os.replace(tmp, self.summary_file)
        self.console.print(f"summary (JSON): {self.summary_file}", highlight=False)
        if self.json_out:
            print(json.dumps({"event": "summary", **summary}), flush=True)


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
