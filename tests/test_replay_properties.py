"""Properties of the replay's cores, for any input: the streaming merge is a stable sort by
(time, trades first, stream) whatever the chunking, and every fill obeys its rule."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.replay.config import ReplayConfig
from agents.replay.driver import Replay
from agents.replay.fast import JoinQuoter
from agents.replay.stream import load_all, merge
from agents.replay.tape import QUOTE, TRADE, Chunk

T0 = 1_714_568_400_000_000_000


def _stream(times: list[int], kind: int, tag: int) -> Chunk:
    ts = np.array(sorted(times), np.int64) + T0
    n = len(ts)
    tags = np.full(n, tag, np.int64)
    return Chunk(ts, np.full(n, kind, np.int8), np.zeros(n, np.int32), np.arange(n,
                 dtype=np.int64), tags, tags, tags)  # fmt: skip


def _chunked(c: Chunk, sizes: list[int]) -> list[Chunk]:
    out, i = [], 0
    for s in sizes:
        if i >= len(c):
            break
        out.append(c.take(slice(i, i + s)))
        i += s
    if i < len(c):
        out.append(c.take(slice(i, None)))
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(0, 30), max_size=40), st.booleans(),
                          st.lists(st.integers(1, 7), min_size=1, max_size=10)),
                min_size=1, max_size=4))  # fmt: skip
def test_merge_is_a_stable_sort_whatever_the_chunking(spec: list) -> None:
    streams = [_stream(times, TRADE if is_trade else QUOTE, k)
               for k, (times, is_trade, _) in enumerate(spec)]  # fmt: skip
    got = load_all(merge([iter(_chunked(s, sizes)) for s, (_, _, sizes) in
                          zip(streams, spec, strict=True)]))  # fmt: skip
    rows = []
    for k, s in enumerate(streams):
        for i in range(len(s)):
            rows.append((int(s.ts[i]), int(s.kind[i] == QUOTE), k, i))
    rows.sort()
    assert [(int(t), int(q == QUOTE), int(b), int(a)) for t, q, b, a in
            zip(got.ts, got.kind, got.b, got.a, strict=True)] == rows  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), rule=st.sampled_from(["quote-through", "trade-through"]),
       queue=st.sampled_from(["none", "displayed"]), size=st.sampled_from(["whole", "capped"]),
       latency=st.sampled_from([0, 300_000]))  # fmt: skip
def test_every_fill_obeys_its_rule_and_the_books_add_up(seed: int, rule: str, queue: str,
                                                        size: str, latency: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    ts = T0 + np.cumsum(rng.integers(0, 200_000, n)).astype(np.int64)
    kind = (rng.random(n) < 0.3).astype(np.int8)
    mid = 1_000 + np.cumsum(rng.integers(-1, 2, n))
    a = np.where(kind == 1, mid + rng.integers(-2, 3, n), mid - 1).astype(np.int64)
    b = rng.integers(1, 6, n).astype(np.int64)
    c = np.where(kind == 1, rng.choice([-1, 0, 1], n), mid + 1).astype(np.int64)
    d = np.where(kind == 1, 0, rng.integers(1, 6, n)).astype(np.int64)
    chunk = Chunk(ts, kind, np.zeros(n, np.int32), a, b, c, d)
    cfg = ReplayConfig(fill_rule=rule, queue=queue, size=size, latency_ns=latency)  # type: ignore[arg-type]
    agent = JoinQuoter({"size": 2, "max_inventory": 6})
    rec = Replay(agent, ["X"], cfg).run([chunk])
    f = rec.fills
    at = {int(t): i for i, t in enumerate(ts)}  # the last update at each stamp
    for t, side, px, qty, why in zip(f["ts"], f["side"], f["price"], f["qty"], f["rule"],
                                     strict=True):  # fmt: skip
        assert qty > 0
        if why == "taker":
            continue
        assert why == rule
        i = at[t]
        if rule == "quote-through":  # the opposite best at or through the order's price
            # (an update at the same stamp may have made it; look at that stamp's quotes)
            same = [j for j in range(n) if ts[j] == t and kind[j] == QUOTE]
            assert any((a[j] >= px) if side == "sell" else (c[j] <= px) for j in same), i
        else:  # a trade through it, or at it with the queue model
            same = [j for j in range(n) if ts[j] == t and kind[j] == TRADE]
            ok = [(a[j] > px or (queue == "displayed" and a[j] == px)) if side == "sell"
                  else (a[j] < px or (queue == "displayed" and a[j] == px)) for j in same]
            assert any(ok), i
    signed = sum(q if s == "buy" else -q for s, q in zip(f["side"], f["qty"], strict=True))
    assert agent.ctx.position("X") == signed
    if latency == 0:  # a cancel lands before the next update: one order a side at a time
        assert abs(signed) <= 6 + 2  # the inventory limit, one order's size of slack
    # (with latency, cancelled orders still in flight can fill too: the limit can overshoot)
