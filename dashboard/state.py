"""What the dashboard knows about the market, and the conflated updates it sends browsers.

Pure (no sockets, no clock of its own): the feed reader hands it raw feed messages (plain
dicts, as msgpack decodes them; decoding into models at 10,000 messages a second would cost
the core the dashboard must not take), and every 1/`update_hz` seconds `tick()` turns what
changed since the last tick into one update. However fast the feed runs, an update holds at
most: the price points of the seconds touched, the last `TAPE` trades, one top of book, one
status and one depth per symbol. That is the conflation: the browser's work is bounded by the
update rate, not by the market's.

Prices leave here as prices: a float for the charts (ticks x tick size) and a string with the
tick's decimals (`agents.units`) for tables, so the page never does tick arithmetic.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from agents import units
from exchange.symbols import SymbolSpec

__all__ = ["CANDLE_S", "TAPE", "MarketState", "SymbolView"]

TAPE = 40  # trades of the tape kept and sent at most per update
CANDLE_S = 5  # candle interval (s)
HISTORY_S = 3600  # price seconds (and candles) kept for a browser that connects late
FUNDAMENTAL_KEPT = 3600


@dataclass
class SymbolView:
    """One symbol as the dashboard shows it."""

    spec: SymbolSpec
    tick: float = 0.01
    trades: int = 0  # seen since the dashboard started
    volume: int = 0
    last: int | None = None
    # price line: second -> [close ticks, trades in it]; candles: start -> [o, h, l, c, volume]
    seconds: dict[int, list[int]] = field(default_factory=dict)
    candles: dict[int, list[int]] = field(default_factory=dict)
    tape: deque = field(default_factory=lambda: deque(maxlen=TAPE))
    tob: dict[str, Any] | None = None
    status: dict[str, Any] | None = None
    depth: dict[str, Any] | None = None
    fundamental: deque = field(default_factory=lambda: deque(maxlen=FUNDAMENTAL_KEPT))
    # what changed since the last tick
    dirty_seconds: set[int] = field(default_factory=set)
    dirty_candles: set[int] = field(default_factory=set)
    new_tape: int = 0
    dirty: set[str] = field(default_factory=set)  # "tob", "status", "depth"
    new_fundamental: int = 0

    def __post_init__(self) -> None:
        self.tick = float(self.spec.tick_size)

    def price(self, ticks: int | None) -> float | None:
        return None if ticks is None else round(ticks * self.tick, 10)

    def text(self, ticks: int | None) -> str:
        return units.price(self.spec, ticks)


class MarketState:
    """Every symbol's view; `on_feed` takes feed messages, `tick` gives the update."""

    def __init__(self, specs: list[SymbolSpec]) -> None:
        self.views = {s.symbol: SymbolView(s) for s in specs}
        self.messages = 0  # feed messages taken
        self.gaps = 0  # sequence gaps seen (messages lost between the exchange and here)
        self._seqs: dict[tuple[str, str], int] = {}

    def view(self, symbol: str) -> SymbolView:
        view = self.views.get(symbol)
        if view is None:  # a symbol the settings did not list: default spec (tick 0.01)
            view = self.views[symbol] = SymbolView(units.spec_for(symbol, None))
        return view

    # ------------------------------------------------------------------ input
    def on_feed(self, msgs: list[Any]) -> None:
        """One feed frame's messages (a msgpack array of maps)."""
        for m in msgs:
            if m.__class__ is not dict:
                continue
            kind = m.get("type")
            symbol = m.get("symbol")
            if symbol is None or kind == "heartbeat":
                continue
            self.messages += 1
            seq = m.get("seq")
            if seq.__class__ is int:
                key = (symbol, kind)
                last = self._seqs.get(key)
                if last is not None and seq > last + 1:
                    self.gaps += 1
                self._seqs[key] = seq
            if kind == "trade":
                self._trade(symbol, m)
            elif kind == "top_of_book":
                view = self.view(symbol)
                view.tob = m
                view.dirty.add("tob")
            elif kind == "market_status":
                view = self.view(symbol)
                view.status = m
                view.dirty.add("status")

    def _trade(self, symbol: str, m: dict[str, Any]) -> None:
        price, qty, ts = m.get("price"), m.get("qty"), m.get("ts")
        if price.__class__ is not int or qty.__class__ is not int or ts.__class__ is not int:
            return
        view = self.view(symbol)
        view.trades += 1
        view.volume += qty
        view.last = price
        second = ts // 1_000_000_000
        point = view.seconds.get(second)
        if point is None:
            view.seconds[second] = [price, 1]
            if len(view.seconds) > HISTORY_S:
                del view.seconds[min(view.seconds)]
        else:
            point[0] = price
            point[1] += 1
        view.dirty_seconds.add(second)
        start = second - second % CANDLE_S
        candle = view.candles.get(start)
        if candle is None:
            view.candles[start] = [price, price, price, price, qty]
            if len(view.candles) > HISTORY_S // CANDLE_S:
                del view.candles[min(view.candles)]
        else:
            if price > candle[1]:
                candle[1] = price
            if price < candle[2]:
                candle[2] = price
            candle[3] = price
            candle[4] += qty
        view.dirty_candles.add(start)
        view.tape.append((ts, price, qty, m.get("aggressor_side", "none")))
        view.new_tape += 1

    def on_fundamental(self, symbol: str, ts: int, value: float) -> None:
        """F(t) in currency (the fair-value source publishes prices, not ticks)."""
        view = self.view(symbol)
        view.fundamental.append((ts // 1_000_000_000, float(value)))
        view.new_fundamental += 1

    def on_phase(self, symbol: str, phase: str, low: int | None, high: int | None) -> None:
        """The phase a book snapshot gave: used until the feed says (a status message is
        newer than any snapshot the dashboard asked for before it)."""
        view = self.view(symbol)
        if view.status is None:
            view.status = {"phase": phase, "reason": "", "band_low": low, "band_high": high}
            view.dirty.add("status")

    def on_depth(self, symbol: str, bids: list[Any], asks: list[Any], seq: int) -> None:
        """A book snapshot from the snapshot service: levels (price, qty, orders)."""
        view = self.view(symbol)
        depth = {"bids": [tuple(lv[:3]) for lv in bids], "asks": [tuple(lv[:3]) for lv in asks]}
        if view.depth is None or view.depth.get("levels") != depth:
            view.depth = {"levels": depth, "seq": seq}
            view.dirty.add("depth")

    # ------------------------------------------------------------------ output
    def tick(self) -> dict[str, Any]:
        """What changed since the last tick, as one JSON-ready update (bounded in size)."""
        out: dict[str, Any] = {}
        for symbol, view in self.views.items():
            part = self._changes(view, full=False)
            if part:
                out[symbol] = part
        return out

    def full(self) -> dict[str, Any]:
        """Everything kept, for a browser that just connected (or fell behind)."""
        return {symbol: self._changes(view, full=True) for symbol, view in self.views.items()}

    def _changes(self, view: SymbolView, full: bool) -> dict[str, Any]:
        part: dict[str, Any] = {}
        seconds = sorted(view.seconds) if full else sorted(view.dirty_seconds)
        if seconds:
            # [second, close, trades in that second]: the page counts the trades it drew
            part["line"] = [[s, view.price(view.seconds[s][0]), view.seconds[s][1]]
                            for s in seconds if s in view.seconds]  # fmt: skip
        candles = sorted(view.candles) if full else sorted(view.dirty_candles)
        if candles:
            part["candles"] = [
                [s, *(view.price(x) for x in view.candles[s][:4]), view.candles[s][4]]
                for s in candles if s in view.candles
            ]  # fmt: skip
        n = len(view.tape) if full else min(view.new_tape, TAPE)
        if n:
            tape = list(view.tape)[-n:]
            part["tape"] = [[ts // 1_000_000, view.text(p), units.shares(view.spec, q), side]
                            for ts, p, q, side in tape]  # fmt: skip
        if full or view.dirty or view.new_tape:
            part["stats"] = {
                "trades": view.trades, "volume": units.shares(view.spec, view.volume),
                "last": view.text(view.last), "decimals": _decimals(view.spec),
            }  # fmt: skip
        if (full or "tob" in view.dirty) and view.tob is not None:
            part["tob"] = self._tob(view)
        if (full or "status" in view.dirty) and view.status is not None:
            part["status"] = self._status(view)
        if (full or "depth" in view.dirty) and view.depth is not None:
            part["depth"] = self._depth(view)
        k = len(view.fundamental) if full else min(view.new_fundamental, len(view.fundamental))
        if k:
            part["fundamental"] = [[s, round(v, 6)] for s, v in list(view.fundamental)[-k:]]
        view.dirty_seconds.clear()
        view.dirty_candles.clear()
        view.dirty.clear()
        view.new_tape = view.new_fundamental = 0
        return part

    def _tob(self, view: SymbolView) -> dict[str, Any]:
        t = view.tob or {}
        spec = view.spec
        bid, ask = t.get("bid_price"), t.get("ask_price")
        return {
            "bid": view.text(bid), "bid_qty": units.shares(spec, t.get("bid_qty") or 0),
            "ask": view.text(ask), "ask_qty": units.shares(spec, t.get("ask_qty") or 0),
            "spread": view.text(ask - bid) if bid is not None and ask is not None else "-",
            "mid": view.price((bid + ask) / 2) if bid is not None and ask is not None else None,
        }  # fmt: skip

    def _status(self, view: SymbolView) -> dict[str, Any]:
        s = view.status or {}
        if (s.get("band_high") or 0) >= 2**61:  # the exchange's "no band"
            s = {**s, "band_low": None, "band_high": None}
        return {
            "phase": s.get("phase"), "reason": s.get("reason", ""),
            "band_low": view.text(s.get("band_low")), "band_high": view.text(s.get("band_high")),
            "halt_until_ms": (s["halt_until"] // 1_000_000) if s.get("halt_until") else None,
        }  # fmt: skip

    def _depth(self, view: SymbolView) -> dict[str, Any]:
        levels = (view.depth or {}).get("levels", {})
        spec = view.spec

        def side(rows: list[tuple]) -> list[list[Any]]:
            total, out = 0, []
            for price, qty, orders in rows:
                total += qty
                out.append([view.price(price), view.text(price), units.shares(spec, qty),
                            orders, float(spec.lot_size * total)])  # fmt: skip
            return out

        return {"bids": side(levels.get("bids", [])), "asks": side(levels.get("asks", []))}


def _decimals(spec: SymbolSpec) -> int:
    exponent = Decimal(spec.tick_size).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0
