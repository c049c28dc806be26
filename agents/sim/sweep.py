"""Running simulated histories: one (`run_history`) or many in parallel (`run_sweep`).

`agora simulate` and `agora sweep` are thin shells over this module, so a single run and every
run of a sweep go through the very same code path (`run_history`): build the market from a
config, run it in chunks of simulated time, write its tables to Parquet, summarise it.

A sweep is a list of `RunSpec` (a config as plain data, a seed, a directory): plain data, so a
spec pickles to a worker process (`concurrent.futures.ProcessPoolExecutor`) or a Ray task
unchanged, and each run is reproducible on its own from its manifest entry. Parameters are
dotted paths into the market file's data (``populations.0.params.alpha_a``,
``fundamental.scale``, ``clearing.fees.taker_bps``): whatever the file can say, a sweep can vary.

Every run's summary carries the stylized-facts verdict of its prices (`agents.analysis.verdict`),
so a sweep ranks its parameter sets by how many facts they pass over their seeds
(`rank_points`) and tells which parameter moves each fact most (`fact_drivers`).
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import accel
from agents.config import MarketConfig

__all__ = [
    "FactDriver",
    "PointRank",
    "RunSpec",
    "fact_drivers",
    "grid_points",
    "parse_param",
    "parse_value",
    "random_points",
    "rank_points",
    "run_history",
    "run_one",
    "run_sweep",
    "set_path",
    "sweep_specs",
    "write_manifest",
]

NS = 1_000_000_000
DEFAULT_UNTIL_S = 60.0
DEFAULT_FACTS_BAR_S = 5.0
"""Bar of the last-trade prices the stylized-facts verdict judges (the realism targets' bar)."""
DEFAULT_POSITIONS_S = 10.0
"""Grid of the ``positions`` table: every account's position and cash every 10 s."""


# --------------------------------------------------------------------------- parameters
def parse_value(text: str) -> Any:
    """A command-line value as the TOML file would have it: int, float, bool, else string."""
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def parse_param(text: str) -> tuple[str, list[Any]]:
    """``"name=v1,v2,..."`` -> (name, [v1, v2, ...]) with each value parsed by `parse_value`."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not name or not values.strip():
        raise ValueError(f"a parameter is name=v1,v2,... (got {text!r})")
    return name, [parse_value(v) for v in values.split(",") if v.strip()]


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``data[a][b][0][c] = value`` for path ``"a.b.0.c"`` in place.

    Integer parts index lists (``populations.0``); missing dict keys along the way are created
    (``fundamental.scale`` works on a file without a fundamental table). A path that walks into
    anything else is an error naming the part that failed.
    """
    parts = path.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            try:
                idx = int(part)
                if last:
                    node[idx] = value
                else:
                    node = node[idx]
            except (ValueError, IndexError):
                raise ValueError(
                    f"{path}: {part!r} is not an index of a list of {len(node)}"
                ) from None
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
        else:
            raise ValueError(f"{path}: cannot descend into {part!r} (a {type(node).__name__})")


def grid_points(params: Sequence[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    """Every combination of the parameters' values (the first parameter varies slowest)."""
    if not params:
        return [{}]
    names = [n for n, _ in params]
    return [
        dict(zip(names, combo, strict=True)) for combo in itertools.product(*(v for _, v in params))
    ]


def random_points(
    params: Sequence[tuple[str, list[Any]]], n: int, seed: int
) -> list[dict[str, Any]]:
    """`n` random points, each parameter drawn uniformly between its two given values
    (min,max): integers when both bounds are integers, floats otherwise.

    Random search beats a grid when only a few of many parameters matter (J. Bergstra and
    Y. Bengio, "Random search for hyper-parameter optimization", JMLR 13, 2012). The draws
    come from `seed` alone, so a sweep is reproducible.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EE9]))
    for name, values in params:
        if len(values) != 2 or not all(isinstance(v, int | float) for v in values):
            raise ValueError(f"--random needs {name}=min,max with two numbers, got {values}")
    points = []
    for _ in range(n):
        point: dict[str, Any] = {}
        for name, (lo, hi) in params:
            lo, hi = min(lo, hi), max(lo, hi)
            if isinstance(lo, int) and isinstance(hi, int) and not isinstance(lo, bool):
                point[name] = int(rng.integers(lo, hi + 1))
            else:
                point[name] = float(rng.uniform(lo, hi))
        points.append(point)
    return points


# --------------------------------------------------------------------------- one run
@dataclass(frozen=True)
class RunSpec:
    """One history to run: everything a worker needs, as plain (picklable) data."""

    config: dict[str, Any]  # MarketConfig data (model_dump(mode="json"))
    seed: int
    until_s: float
    out_dir: str
    params: dict[str, Any] = field(default_factory=dict)
    run: str = "run"
    bar_s: float = 1.0
    facts_bar_s: float = DEFAULT_FACTS_BAR_S
    positions_s: float | None = DEFAULT_POSITIONS_S


def _finite(x: float) -> float | None:
    return x if isinstance(x, int | float) and math.isfinite(x) else None


def run_history(
    config: MarketConfig,
    seed: int | None = None,
    until_s: float | None = None,
    out_dir: str | Path | None = None,
    bar_s: float = 1.0,
    progress: Callable[[float], None] | None = None,
    chunks: int = 100,
    facts_bar_s: float = DEFAULT_FACTS_BAR_S,
    positions_s: float | None = DEFAULT_POSITIONS_S,
    prepare: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Run one market history and return its summary (and write it when `out_dir` is given).

    The market is `SimMarket.from_config(config)` with `seed` (default: the config's), run to
    `until_s` seconds of simulated time (default: the config's ``duration_s``, else 60) in
    about `chunks` pieces; `progress` is called with the simulated seconds reached after each
    (for a progress bar: chunking does not change the history, the kernel is deterministic).
    `prepare`, when given, is called with the market before it runs (to schedule stress
    scenarios, say; the market file's own ``[[scenario]]`` tables are installed before it).
    With `out_dir`, writes trades, top_of_book, agents, bars (`bar_s`), fundamental,
    orders, positions (every `positions_s`; None: not sampled) and refusals Parquet files
    (`agents.sim.output`), a ``summary.json`` and the market file as ``market.json``; without
    it, nothing is recorded beyond what the summary needs.

    The summary: counts (events, orders, trades, volume), wall time and events/s, last price,
    PnL by population (``trading_pnl``, ``inventory_pnl`` and their sum ``pnl``, cash units;
    see `agents.analysis.pnl`), the stylized facts of the `facts_bar_s` closes (``facts``:
    kurtosis, Hill index of each tail, autocorrelations) and their verdict (``verdict``:
    PASS/FAIL per fact, `agents.analysis.verdict`; what a sweep ranks runs by), the
    refusals counted by reason and population (``refusals``) and the market's settings
    (``settings``: symbols, clearing terms, populations).
    """
    from agents.analysis.history import closes_from_trades
    from agents.analysis.stylized import acf, aggregate, kurtosis, log_returns
    from agents.analysis.verdict import facts_verdict
    from agents.sim.market import SimMarket
    from agents.sim.output import (
        bars,
        fundamental_table,
        pnl_by_population,
        refusal_counts,
        settings,
        tables,
        write_parquet,
    )

    seed = config.seed if seed is None else seed
    if until_s is None:
        until_s = config.duration_s or DEFAULT_UNTIL_S
    if until_s <= 0:
        raise ValueError(f"until must be positive, got {until_s}")
    bar_ns = max(1, round(bar_s * NS))
    record = out_dir is not None
    market = SimMarket.from_config(
        config, seed, record_orders=record,
        positions_interval_ns=round(positions_s * NS) if record and positions_s else None,
    )  # fmt: skip
    if config.scenario:  # stress scenarios the market file switches on
        from agents.stress import install

        install(market, config.scenario)
    if prepare is not None:
        prepare(market)
    until_ns = round(until_s * NS)
    step = max(1, until_ns // max(1, chunks))
    sinks = _story_sinks(market, out_dir) if record else {}
    t0 = time.perf_counter()
    now = 0
    while now < until_ns:
        now = min(until_ns, now + step)
        market.run(until_ns=now)
        for name, sink in sinks.items():  # streamed: a long run's story stays off the heap
            sink.write(market.drain_orders() if name == "orders" else market.drain_positions())
        if progress is not None:
            progress(now / NS)
    market.finish()
    wall = time.perf_counter() - t0

    trades = market.trades
    pnl = pnl_by_population(market)  # trading, inventory and total PnL per population
    events = market.kernel.events_processed
    summary: dict[str, Any] = {
        "name": config.name,
        "seed": seed,
        "until_s": until_s,
        "agents": len(market.agents),
        "events": events,
        "orders": market.orders_in,
        "trades": len(trades["ts"]),
        "volume": int(sum(trades["qty"])),
        "wall_s": wall,
        "events_per_s": events / wall if wall > 0 else None,
        "compiled_cores": accel.active(),  # what the speed was measured with (see accel)
        "last_price": market.last_price(market.symbols[0]) if market.symbols else None,
        **pnl,
    }
    closes = closes_from_trades(trades, max(1, round(facts_bar_s * NS)))
    r = log_returns(closes) if len(closes) > 1 else np.empty(0)
    ac = acf(r, 10)
    ac_abs = acf(np.abs(r), 10)
    verdict = facts_verdict(r)
    summary["facts"] = {
        "bar_s": facts_bar_s,
        "returns": len(r),
        "std": _finite(float(np.std(r))) if len(r) else None,
        "kurtosis": _finite(kurtosis(r)),
        "kurtosis_10": _finite(kurtosis(aggregate(r, 10))),
        "hill_upper": _finite(verdict.tails.upper),
        "hill_lower": _finite(verdict.tails.lower),
        "acf_r_1": _finite(float(ac[0])),
        "acf_abs_1": _finite(float(ac_abs[0])),
        "acf_abs_10": _finite(float(ac_abs[9])),
    }
    summary["verdict"] = {
        "bar_s": facts_bar_s,
        "passed": verdict.passed,
        "total": verdict.total,
        "facts": {
            f.key: {"passed": f.passed, "value": f.value, "band": f.band, "detail": f.detail}
            for f in verdict.facts
        },
    }
    summary["refusals"] = refusal_counts(market)
    summary["settings"] = settings(market)
    if out_dir is not None:
        out = Path(out_dir)
        data = tables(market)
        data["bars"] = bars(trades, bar_ns)
        data["fundamental"] = fundamental_table(market)
        for name in sinks:
            data.pop(name, None)  # already on disk
        paths = write_parquet(data, out)
        for name, sink in sinks.items():
            sink.write(market.drain_orders() if name == "orders" else market.drain_positions())
            paths[name] = sink.close()
        summary["files"] = {k: str(v) for k, v in paths.items()}
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        # the market file as run (seed aside): what `agora report` reads tick size, multiplier,
        # reference price and position limits from
        (out / "market.json").write_text(config.model_dump_json(indent=2))
    return summary


def _story_sinks(market: Any, out_dir: str | Path) -> dict[str, Any]:
    """Streaming Parquet writers for the tables a market records as it runs."""
    from agents.sim.output import ORDERS_COLUMNS, POSITIONS_COLUMNS, RowSink

    sinks = {}
    if market.order_log is not None:
        sinks["orders"] = RowSink(Path(out_dir, "orders.parquet"), "orders", ORDERS_COLUMNS)
    if market.position_log is not None:
        sinks["positions"] = RowSink(Path(out_dir, "positions.parquet"), "positions",
                                     POSITIONS_COLUMNS)  # fmt: skip
    return sinks


def run_one(spec: RunSpec) -> dict[str, Any]:
    """Run one sweep history (in a worker): validate its config, run it, write its directory
    and its own ``manifest.json``; return the manifest row (params, seed, summary)."""
    config = MarketConfig.model_validate(spec.config)
    summary = run_history(config, spec.seed, spec.until_s, spec.out_dir, spec.bar_s,
                          facts_bar_s=spec.facts_bar_s, positions_s=spec.positions_s)  # fmt: skip
    row = {"run": spec.run, "dir": spec.out_dir, "seed": spec.seed, "params": spec.params,
           "summary": summary}  # fmt: skip
    Path(spec.out_dir, "manifest.json").write_text(json.dumps(row, indent=2, default=str))
    return row


# --------------------------------------------------------------------------- many runs
def sweep_specs(
    config: MarketConfig,
    points: Iterable[dict[str, Any]],
    seeds: Sequence[int],
    out_dir: str | Path,
    until_s: float | None = None,
    bar_s: float = 1.0,
    facts_bar_s: float = DEFAULT_FACTS_BAR_S,
    positions_s: float | None = DEFAULT_POSITIONS_S,
) -> list[RunSpec]:
    """One `RunSpec` per (point x seed), in that order, named ``run-0000``, ``run-0001``, ...

    Every point's config is validated here, in the parent (populations' strategy parameters
    included), so a typo in a parameter name fails before any worker starts.
    """
    from agents.sim.market import resolve_strategy

    base = config.model_dump(mode="json")
    until = until_s if until_s is not None else (config.duration_s or DEFAULT_UNTIL_S)
    specs = []
    i = 0
    for point in points:
        data = json.loads(json.dumps(base))  # a deep copy of plain data
        for path, value in point.items():
            set_path(data, path, value)
        checked = MarketConfig.model_validate(data)
        for pop in checked.populations:
            resolve_strategy(pop.strategy).Params.model_validate(dict(pop.params))
        for seed in seeds:
            run = f"run-{i:04d}"
            specs.append(
                RunSpec(config=data, seed=seed, until_s=until, out_dir=str(Path(out_dir, run)),
                        params=dict(point), run=run, bar_s=bar_s, facts_bar_s=facts_bar_s,
                        positions_s=positions_s)
            )  # fmt: skip
            i += 1
    return specs


def _flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """A manifest row as flat columns: run, dir, seed, one per parameter, counts, facts, PnL."""
    s = row["summary"]
    flat: dict[str, Any] = {"run": row["run"], "dir": row["dir"], "seed": row["seed"]}
    for k, v in row["params"].items():
        flat[k] = v
    for k in ("trades", "volume", "orders", "events", "last_price", "wall_s"):
        flat[k] = s.get(k)
    for k, v in s.get("facts", {}).items():
        flat[f"facts.{k}"] = v
    verdict = s.get("verdict")
    if verdict is not None:
        flat["facts.passed"] = verdict["passed"]
        for k, f in verdict["facts"].items():
            flat[f"passed.{k}"] = bool(f["passed"])
    for key in ("pnl", "trading_pnl", "inventory_pnl"):
        for k, v in s.get(key, {}).items():
            flat[f"{key}.{k}"] = float(v)
    return flat


def write_manifest(rows: list[dict[str, Any]], out_dir: str | Path) -> dict[str, Path]:
    """``manifest.json`` (full rows) and, with pyarrow, ``manifest.parquet`` (flat columns)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "manifest.json"}
    paths["json"].write_text(json.dumps(rows, indent=2, default=str))
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        return paths
    flat = [_flat_row(r) for r in rows]
    columns: dict[str, list] = {}
    for f in flat:
        for k in f:
            columns.setdefault(k, [])
    for f in flat:
        for k, col in columns.items():
            col.append(f.get(k))
    paths["parquet"] = out / "manifest.parquet"
    pq.write_table(pa.table(columns), paths["parquet"])
    return paths


def run_sweep(
    specs: Sequence[RunSpec],
    workers: int = 1,
    ray_address: str | None = None,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every spec and return the manifest rows in spec order.

    `workers` processes (a `ProcessPoolExecutor` with the "spawn" start method: a clean
    interpreter per worker, safe whatever threads the parent runs, e.g. a progress bar); one
    worker runs in this process. With `ray_address`, the same `run_one` runs as Ray remote
    tasks instead (``"auto"`` joins the local cluster; on several machines `out_dir` must be a
    shared filesystem). `on_done` is called with each row as its run completes.
    """
    if ray_address is not None:
        return _run_ray(specs, ray_address, on_done)
    rows: list[dict[str, Any] | None] = [None] * len(specs)
    if workers <= 1:
        for i, spec in enumerate(specs):
            rows[i] = run_one(spec)
            if on_done is not None:
                on_done(rows[i])  # type: ignore[arg-type]
        return rows  # type: ignore[return-value]
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(run_one, spec): i for i, spec in enumerate(specs)}
        for fut in as_completed(futures):
            row = fut.result()
            rows[futures[fut]] = row
            if on_done is not None:
                on_done(row)
    return rows  # type: ignore[return-value]


def _run_ray(
    specs: Sequence[RunSpec], address: str, on_done: Callable[[dict[str, Any]], None] | None
) -> list[dict[str, Any]]:
    try:
        import ray  # type: ignore[import-not-found]
    except ImportError:
        raise RuntimeError(
            "--ray needs Ray, which is not installed: pip install 'agora-market[ray]'"
        ) from None
    ray.init(address=address, ignore_reinit_error=True)
    remote = ray.remote(run_one)
    refs = [remote.remote(spec) for spec in specs]
    index = {ref: i for i, ref in enumerate(refs)}
    rows: list[dict[str, Any] | None] = [None] * len(specs)
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            row = ray.get(ref)
            rows[index[ref]] = row
            if on_done is not None:
                on_done(row)
    return rows  # type: ignore[return-value]


# --------------------------------------------------------------------------- ranking
@dataclass(frozen=True)
class PointRank:
    """One parameter set of a sweep, judged over its seeds by the stylized-facts verdict."""

    params: dict[str, Any]
    runs: tuple[str, ...]
    seeds: tuple[int, ...]
    total: int  # facts judged per run
    passed_mean: float  # facts passed, mean over the seeds
    passed_min: int  # facts passed by the worst seed
    all_passed: int  # seeds that passed every fact
    per_fact: dict[str, int]  # fact key -> seeds that passed it

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params, "runs": list(self.runs), "seeds": list(self.seeds),
                "total": self.total, "passed_mean": self.passed_mean,
                "passed_min": self.passed_min, "all_passed": self.all_passed,
                "per_fact": self.per_fact}  # fmt: skip


def _verdict(row: dict[str, Any]) -> dict[str, Any]:
    v = row["summary"].get("verdict")
    if v is None:
        raise ValueError(f"{row.get('run')}: its summary has no verdict (an older run)")
    return v


def rank_points(rows: Sequence[dict[str, Any]]) -> list[PointRank]:
    """The sweep's parameter sets, best first: by the mean number of facts passed over the
    seeds, then by the worst seed's count, then by the seeds passing every fact; ties keep the
    sweep's order. `rows` are manifest rows (`run_one`)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(json.dumps(row["params"], sort_keys=True, default=str), []).append(row)
    ranks = []
    for members in groups.values():
        verdicts = [_verdict(r) for r in members]
        counts = [v["passed"] for v in verdicts]
        per_fact: dict[str, int] = {}
        for v in verdicts:
            for key, fact in v["facts"].items():
                per_fact[key] = per_fact.get(key, 0) + bool(fact["passed"])
        ranks.append(PointRank(
            params=dict(members[0]["params"]), runs=tuple(r["run"] for r in members),
            seeds=tuple(r["seed"] for r in members), total=verdicts[0]["total"],
            passed_mean=sum(counts) / len(counts), passed_min=min(counts),
            all_passed=sum(v["passed"] == v["total"] for v in verdicts), per_fact=per_fact,
        ))  # fmt: skip
    order = sorted(range(len(ranks)), key=lambda i: (
        -ranks[i].passed_mean, -ranks[i].passed_min, -ranks[i].all_passed, i))  # fmt: skip
    return [ranks[i] for i in order]


@dataclass(frozen=True)
class FactDriver:
    """How much one parameter moves one fact over a sweep: the share of runs passing the fact
    in each group of the parameter's values, and the spread (largest share minus smallest)."""

    fact: str
    param: str
    shares: dict[str, float]  # group label ("0.5", "<= 0.7", "> 0.7") -> share passing
    spread: float


def fact_drivers(rows: Sequence[dict[str, Any]]) -> dict[str, list[FactDriver]]:
    """For each fact, every swept parameter with the pass shares it produces, strongest first.

    A parameter with at most five distinct values is grouped by value (a grid); one with more
    (random points) is split at its median into low and high halves. A spread near 0 means
    the parameter does not matter to that fact over the swept range; near 1, it decides it.
    """
    if not rows:
        return {}
    names = sorted({n for r in rows for n in r["params"]})
    facts = list(_verdict(rows[0])["facts"])
    out: dict[str, list[FactDriver]] = {f: [] for f in facts}
    for name in names:
        values = [r["params"].get(name) for r in rows]
        distinct = sorted({json.dumps(v, default=str) for v in values})
        if len(distinct) < 2:
            continue
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if len(distinct) <= 5 or not numeric:
            labels = [json.dumps(v, default=str) for v in values]
        else:
            median = float(np.median(np.asarray(values, dtype=float)))
            labels = [f"<= {median:.4g}" if v <= median else f"> {median:.4g}" for v in values]
        for fact in facts:
            hits: dict[str, list[bool]] = {}
            for label, row in zip(labels, rows, strict=True):
                hits.setdefault(label, []).append(bool(_verdict(row)["facts"][fact]["passed"]))
            shares = {k: sum(v) / len(v) for k, v in sorted(hits.items())}
            out[fact].append(FactDriver(fact, name, shares,
                                        max(shares.values()) - min(shares.values())))  # fmt: skip
    for drivers in out.values():
        drivers.sort(key=lambda d: -d.spread)
    return out
