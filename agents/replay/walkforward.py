"""Walk-forward evaluation: tune on one span of the tape, judge out of sample on the next.

Windows are ``START:END`` in seconds from the tape's first update (``0:3600``) or ISO times;
rolling windows ``TRAIN:TEST`` (seconds) tile the tape: train on [t, t+TRAIN), test on
[t+TRAIN, t+TRAIN+TEST), then move on by TEST. With a parameter grid, every combination runs
on the train window and the one with the highest total PnL runs on the test window; without
one, the same parameters run on both (in-sample against out-of-sample).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exchange.errors import UserError

__all__ = ["Window", "best_of", "grid", "parse_window", "rolling"]

NS = 1_000_000_000


@dataclass(frozen=True)
class Window:
    """One train/test pair of [start, end) spans, in ns since the epoch."""

    train: tuple[int, int]
    test: tuple[int, int]


def _instant(text: str, first_ns: int) -> int:
    text = text.strip()
    try:
        return first_ns + round(float(text) * NS)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"window bound {text!r}: seconds from the tape's start or an ISO "
                        "time") from None  # fmt: skip
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return round(dt.timestamp() * NS)


def parse_window(text: str, first_ns: int) -> tuple[int, int]:
    """``START:END`` (seconds from `first_ns`, or ISO times) as [start, end) in ns."""
    if text.count(":") != 1 and "T" not in text:
        raise UserError(f"window {text!r}: want START:END, e.g. 0:3600")
    # ISO times contain colons themselves: split on the one between two bounds
    for i, ch in enumerate(text):
        if ch == ":":
            try:
                start = _instant(text[:i], first_ns)
                end = _instant(text[i + 1:], first_ns)
            except UserError:
                continue
            if end <= start:
                raise UserError(f"window {text!r}: the end must come after the start")
            return start, end
    raise UserError(f"window {text!r}: want START:END, e.g. 0:3600")


def rolling(text: str, first_ns: int, last_ns: int) -> list[Window]:
    """The ``TRAIN:TEST`` rolling windows over [first_ns, last_ns] (see the module doc)."""
    try:
        train_s, test_s = (float(x) for x in text.split(":"))
    except ValueError:
        raise UserError(f"--rolling {text!r}: want TRAIN:TEST in seconds, e.g. 600:300") from None
    if train_s <= 0 or test_s <= 0:
        raise UserError(f"--rolling {text!r}: both spans must be positive")
    train, test = round(train_s * NS), round(test_s * NS)
    out = []
    t = first_ns
    while t + train < last_ns:
        out.append(Window((t, t + train), (t + train, min(t + train + test, last_ns + 1))))
        t += test
    if not out:
        raise UserError(f"--rolling {text!r}: the tape ({(last_ns - first_ns) / NS:g} s) is "
                        "shorter than one train window")  # fmt: skip
    return out


def grid(pairs: list[str] | None) -> list[dict[str, Any]]:
    """``name=v1,v2`` options as every combination (values JSON when they parse)."""
    import json

    axes: list[tuple[str, list[Any]]] = []
    for pair in pairs or []:
        key, sep, values = pair.partition("=")
        if not sep or not key or not values:
            raise UserError(f"--grid wants name=v1,v2,..., not {pair!r}")
        vals = []
        for v in values.split(","):
            try:
                vals.append(json.loads(v))
            except json.JSONDecodeError:
                vals.append(v)
        axes.append((key, vals))
    if not axes:
        return [{}]
    return [dict(zip([k for k, _ in axes], combo, strict=True))
            for combo in itertools.product(*(v for _, v in axes))]  # fmt: skip


def best_of(candidates: list[dict[str, Any]],
            score: Callable[[dict[str, Any]], float]) -> tuple[dict[str, Any], float]:  # fmt: skip
    """The candidate with the highest score (the first of equals), and its score."""
    best, best_score = candidates[0], float("-inf")
    for c in candidates:
        s = score(c)
        if s > best_score:
            best, best_score = c, s
    return best, best_score
