"""Market-data streams: topics, per-stream sequence numbers, top of book and OHLCV bars.

Pure (no sockets): the exchange process feeds it the public messages of each request and
publishes what comes out; a replay of the journal feeds it the same and so restores every
stream's sequence number.

A *stream* is one (symbol, channel). Its messages carry a contiguous sequence number starting
at 1, so a subscriber that sees 7 after 5 knows it lost one, and a book snapshot says which
`book` sequence number it is valid at. Topics are ``"{symbol}|{channel}"`` (a symbol never
contains ``|``), so subscribing to ``"AGR|"`` takes every channel of AGR and ``"AGR|book"``
exactly its L2 deltas.
"""

from __future__ import annotations

from typing import Any

from exchange.engine import Engine

__all__ = ["CHANNELS", "FeedState", "topic"]

CHANNELS = ("trades", "book", "tob", "status", "bars")
HEARTBEAT_TOPIC = "*|heartbeat"
GOODBYE_TOPIC = "*|goodbye"

_CHANNEL_OF = {
    "trade": "trades",
    "book_delta": "book",
    "top_of_book": "tob",
    "market_status": "status",
    "bar": "bars",
}


def topic(symbol: str, channel: str) -> str:
    return f"{symbol}|{channel}"


class _Bar:
    __slots__ = ("close", "high", "low", "open", "start", "trades", "volume")

    def __init__(self, start: int, price: int) -> None:
        self.start = start
        self.open = self.high = self.low = self.close = price
        self.volume = 0
        self.trades = 0


class FeedState:
    """Per-stream sequence numbers, the last top of book, and bars being built."""

    def __init__(self, engine: Engine, bar_interval_ns: int = 0) -> None:
        self.engine = engine
        self.seqs: dict[str, int] = {}  # topic -> last sequence number sent
        self._tob: dict[str, tuple] = {}
        self.bar_interval_ns = bar_interval_ns
        self._bars: dict[str, _Bar] = {}

    def last_seq(self, symbol: str, channel: str) -> int:
        return self.seqs.get(topic(symbol, channel), 0)

    def publish(self, public: list[dict[str, Any]], ts: int) -> list[tuple[str, dict[str, Any]]]:
        """Stamp stream sequence numbers on `public`, add top-of-book changes; (topic, msg)."""
        out: list[tuple[str, dict[str, Any]]] = []
        if not public:
            return out
        seqs = self.seqs
        touched: list[str] = []
        bars = self.bar_interval_ns
        for msg in public:
            symbol = msg["symbol"]
            t = f"{symbol}|{_CHANNEL_OF[msg['type']]}"
            msg["seq"] = seqs[t] = seqs.get(t, 0) + 1
            out.append((t, msg))
            if symbol not in touched:
                touched.append(symbol)
            if bars and msg["type"] == "trade":
                self._bar_trade(symbol, msg["price"], msg["qty"], msg["ts"] or ts)
        for symbol in touched:
            tob = self.top_of_book(symbol)
            if tob != self._tob.get(symbol):
                self._tob[symbol] = tob
                t = f"{symbol}|tob"
                seq = seqs[t] = seqs.get(t, 0) + 1
                bid, bid_qty, ask, ask_qty, last = tob
                out.append((t, {
                    "type": "top_of_book", "v": 1, "ts": ts, "symbol": symbol, "seq": seq,
                    "bid_price": bid, "bid_qty": bid_qty, "ask_price": ask, "ask_qty": ask_qty,
                    "last_price": last,
                }))  # fmt: skip
        return out

    def top_of_book(self, symbol: str) -> tuple:
        book = self.engine.book(symbol)
        bid, ask = book.bids.best, book.asks.best
        bid_qty = book.bids.levels[bid].qty if bid is not None else 0
        ask_qty = book.asks.levels[ask].qty if ask is not None else 0
        return (bid, bid_qty, ask, ask_qty, book.last_price)

    # ------------------------------------------------------------------ bars
    def _bar_trade(self, symbol: str, price: int, qty: int, ts: int) -> None:
        start = ts - ts % self.bar_interval_ns
        bar = self._bars.get(symbol)
        if bar is None or bar.start != start:
            bar = self._bars[symbol] = _Bar(start, price)
        bar.high = max(bar.high, price)
        bar.low = min(bar.low, price)
        bar.close = price
        bar.volume += qty
        bar.trades += 1

    def close_bars(self, ts: int) -> list[tuple[str, dict[str, Any]]]:
        """Bars whose interval ended before `ts` (symbols with no trades get no bar)."""
        out = []
        for symbol, bar in list(self._bars.items()):
            if bar.start + self.bar_interval_ns <= ts:
                del self._bars[symbol]
                t = f"{symbol}|bars"
                seq = self.seqs[t] = self.seqs.get(t, 0) + 1
                out.append((t, {
                    "type": "bar", "v": 1, "ts": ts, "symbol": symbol, "seq": seq,
                    "start_ts": bar.start, "interval_ns": self.bar_interval_ns,
                    "open": bar.open, "high": bar.high, "low": bar.low, "close": bar.close,
                    "volume": bar.volume, "trades": bar.trades,
                }))  # fmt: skip
        return out

    def restore_bar_seq(self, symbol: str, seq: int) -> None:
        """On journal replay: a bar was published with this sequence number."""
        self.seqs[topic(symbol, "bars")] = seq
