"""The fundamental feed's wire format and a subscriber for it.

One ZeroMQ PUB frame per symbol and publication: ``[topic, payload]`` where ``topic`` is the
symbol encoded UTF-8 and ``payload`` is a msgpack map::

    {"type": "fundamental", "v": 1, "ts": <int ns, publisher's wall clock>,
     "symbol": <str>, "value": <float F(t) > 0>, "seq": <int, contiguous per symbol from 1>}

A gap in ``seq`` means the subscriber lost messages (slow-joiner, high-water mark); a reset to 1
means the publisher restarted. Decoding is strict (exact types, no extra keys, no extension
types, a size bound) because the feed is an input from the network like any other.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any, Literal

import msgpack
import structlog
import zmq
import zmq.asyncio
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "MAX_FRAME_BYTES",
    "Fundamental",
    "FundamentalFeed",
    "MalformedFundamental",
    "decode_fundamental",
    "encode_fundamental",
]

log = structlog.get_logger("fundamental.feed")

MAX_FRAME_BYTES = 1024  # a real message is well under 100 bytes
_INT64_MAX = 2**63 - 1


class MalformedFundamental(ValueError):
    """A frame that is not a valid `Fundamental` message; the text says why."""


class Fundamental(BaseModel):
    """F(t) of one symbol at one publication."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    type: Literal["fundamental"] = "fundamental"
    v: Literal[1] = 1
    ts: Annotated[int, Field(ge=0, le=_INT64_MAX)]
    symbol: Annotated[str, Field(min_length=1, max_length=32)]
    value: float
    seq: Annotated[int, Field(ge=1, le=_INT64_MAX)]

    @field_validator("value")
    @classmethod
    def _positive_finite(cls, value: float) -> float:
        # A price: NaN, inf and non-positive values are publisher bugs, not information.
        if not (math.isfinite(value) and value > 0):
            raise ValueError("value must be a positive finite number")
        return float(value)


def encode_fundamental(msg: Fundamental) -> bytes:
    return msgpack.packb(msg.model_dump(), use_bin_type=True)


def _strict_map(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if type(key) is not str:
            raise ValueError("map keys must be strings")
        if key in result:
            raise ValueError(f"duplicate key {key[:32]!r}")
        result[key] = value
    return result


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ValueError("msgpack extension types are not allowed")


def decode_fundamental(data: bytes) -> Fundamental:
    """Payload bytes -> `Fundamental`; `MalformedFundamental` (a ValueError) on anything else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedFundamental(f"expected bytes, not {type(data).__name__}")
    size = memoryview(data).nbytes
    if size > MAX_FRAME_BYTES:
        raise MalformedFundamental(f"{size} bytes exceeds the limit of {MAX_FRAME_BYTES}")
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            object_pairs_hook=_strict_map,
            ext_hook=_refuse_ext,
            max_str_len=MAX_FRAME_BYTES,
            max_bin_len=MAX_FRAME_BYTES,
            max_array_len=MAX_FRAME_BYTES,
            max_map_len=MAX_FRAME_BYTES,
            max_ext_len=0,
        )
    except (msgpack.UnpackException, ValueError, TypeError, RecursionError, OverflowError) as e:
        raise MalformedFundamental(f"not a valid msgpack frame ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise MalformedFundamental(f"a message must be a map, not {type(obj).__name__}")
    if obj.get("type") != "fundamental":
        raise MalformedFundamental(f"not a fundamental message (type={obj.get('type')!r:.40})")
    try:
        return Fundamental.model_validate(obj)
    except ValidationError as e:
        errors = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or '<root>'}: {err['msg']}" for err in e.errors()
        )
        raise MalformedFundamental(f"invalid fundamental message: {errors}") from None


class FundamentalFeed:
    """Async subscriber to the fundamental publisher: ``async for msg in feed``.

    Subscribes to the given symbols (exact match: ZeroMQ topics are prefixes, so "AG" would
    also receive "AGR"; the topic is checked against the payload's symbol) or to everything.
    Malformed frames are counted in `skipped` and logged, never raised: one bad publisher frame
    must not kill an agent's loop.
    """

    def __init__(
        self,
        endpoint: str,
        symbols: Iterable[str] | None = None,
        ctx: zmq.asyncio.Context | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.symbols: frozenset[str] | None = None if symbols is None else frozenset(symbols)
        self._own_ctx = ctx is None
        self._ctx = ctx or zmq.asyncio.Context()
        self._sock: zmq.asyncio.Socket | None = None
        self.skipped = 0

    def connect(self) -> FundamentalFeed:
        if self._sock is None:
            sock = self._ctx.socket(zmq.SUB)
            sock.setsockopt(zmq.LINGER, 0)
            if self.symbols is None:
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            else:
                for symbol in sorted(self.symbols):
                    sock.setsockopt(zmq.SUBSCRIBE, symbol.encode())
            sock.connect(self.endpoint)
            self._sock = sock
        return self

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        if self._own_ctx:
            self._ctx.term()

    async def __aenter__(self) -> FundamentalFeed:
        return self.connect()

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[Fundamental]:
        return self._messages()

    async def recv(self) -> Fundamental:
        """The next valid message for a subscribed symbol (skipping anything else)."""
        sock = self.connect()._sock
        assert sock is not None
        while True:
            frames = await sock.recv_multipart(copy=True)
            msg = self._parse(frames)
            if msg is not None:
                return msg

    async def _messages(self) -> AsyncIterator[Fundamental]:
        while True:
            yield await self.recv()

    def _parse(self, frames: list[bytes]) -> Fundamental | None:
        if len(frames) != 2:
            return self._skip(f"expected 2 frames, got {len(frames)}")
        topic, payload = frames
        if topic.startswith(b"!"):
            return None  # a control topic (stress scenarios, agents.stress.live), not a value
        try:
            msg = decode_fundamental(payload)
        except MalformedFundamental as e:
            return self._skip(str(e))
        if topic != msg.symbol.encode():
            return self._skip("topic does not match the payload's symbol")
        if self.symbols is not None and msg.symbol not in self.symbols:
            return None  # a prefix match of a subscribed symbol: not ours, not malformed
        return msg

    def _skip(self, reason: str) -> None:
        self.skipped += 1
        log.warning("fundamental_frame_skipped", reason=reason[:200], endpoint=self.endpoint)
        return None
