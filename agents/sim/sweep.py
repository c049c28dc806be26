"""Running simulated histories: one (`run_history`) or many in parallel (`run_sweep`).

`agora simulate` and `agora sweep` are thin shells over this module, so a single run and every
run of a sweep go through the very same code path (`run_history`): build the market from a
config, run it in chunks of simulated time, write its tables to Parquet, summarise it.

A sweep is a list of `RunSpec` (a config as plain data, a seed, a directory): plain data, so a
spec pickles to a worker process (`concurrent.futures.ProcessPoolExecutor`) or a Ray task
unchanged, and each run is reproducible on its own from its manifest entry. Parameters are
dotted paths into the market file's data (``populations.0.params.alpha_a``,
``fundamental.scale``, ``clearing.fees.taker_bps``): whatever the file can say, a sweep can vary.
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
    "RunSpec",
    "grid_points",
    "parse_param",
    "parse_value",
    "random_points",
    "run_history",
    "run_one",
    "run_sweep",
    "set_path",
    "sweep_specs",
    "write_manifest",
]

NS = 1_000_000_000
DEFAULT_UNTIL_S = 60.0


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
    prepare: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Run one market history and return its summary (and write it when `out_dir` is given).

    The market is `SimMarket.from_config(config)` with `seed` (default: the config's), run to
    `until_s` seconds of simulated time (default: the config's ``duration_s``, else 60) in
    about `chunks` pieces; `progress` is called with the simulated seconds reached after each
    (for a progress bar: chunking does not change the history, the kernel is deterministic).
    `prepare`, when given, is called with the market before it runs (to schedule stress
    scenarios, say; the market file's own ``[[scenario]]`` tables are installed before it).
    With `out_dir`, writes trades, top_of_book, agents, bars (`bar_s`) and fundamental
    Parquet files, a ``summary.json`` and the market file as ``market.json``.

    The summary: counts (events, orders, trades, volume), wall time and events/s, last price,
    PnL by population (``trading_pnl``, ``inventory_pnl`` and their sum ``pnl``, cash units;
    see `agents.analysis.pnl`) and the stylized facts of the `bar_s` closes (kurtosis, Hill index,
    autocorrelations): the numbers a sweep compares runs by.
    """
    from agents.analysis.history import closes_from_trades
    from agents.analysis.stylized import acf, aggregate, hill_tail_index, kurtosis, log_returns
    from agents.sim.market import SimMarket
    from agents.sim.output import (
        bars,
        fundamental_table,
        pnl_by_population,
        tables,
        write_parquet,
    )

    seed = config.seed if seed is None else seed
    if until_s is None:
        until_s = config.duration_s or DEFAULT_UNTIL_S
    if until_s <= 0:
        raise ValueError(f"until must be positive, got {until_s}")
    bar_ns = max(1, round(bar_s * NS))
    market = SimMarket.from_config(config, seed)
    if config.scenario:  # stress scenarios the market file switches on
        from agents.stress import install

        install(market, config.scenario)
    if prepare is not None:
        prepare(market)
    until_ns = round(until_s * NS)
    step = max(1, until_ns // max(1, chunks))
    t0 = time.perf_counter()
    now = 0
    while now < until_ns:
        now = min(until_ns, now + step)
        market.run(until_ns=now)
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
    closes = closes_from_trades(trades, bar_ns)
    r = log_returns(closes) if len(closes) > 1 else np.empty(0)
    ac = acf(r, 10)
    ac_abs = acf(np.abs(r), 10)
    summary["facts"] = {
        "bar_s": bar_s,
        "returns": len(r),
        "std": _finite(float(np.std(r))) if len(r) else None,
        "kurtosis": _finite(kurtosis(r)),
        "kurtosis_10": _finite(kurtosis(aggregate(r, 10))),
        "hill": _finite(hill_tail_index(r)),
        "acf_r_1": _finite(float(ac[0])),
        "acf_abs_1": _finite(float(ac_abs[0])),
        "acf_abs_10": _finite(float(ac_abs[9])),
    }
    if out_dir is not None:
        out = Path(out_dir)
        data = tables(market)
        data["bars"] = bars(trades, bar_ns)
        data["fundamental"] = fundamental_table(market)
        paths = write_parquet(data, out)
        summary["files"] = {k: str(v) for k, v in paths.items()}
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        # the market file as run (seed aside): what `agora report` reads tick size, multiplier,
        # reference price and position limits from
        (out / "market.json").write_text(config.model_dump_json(indent=2))
    return summary


def run_one(spec: RunSpec) -> dict[str, Any]:
    """Run one sweep history (in a worker): validate its config, run it, write its directory
    and its own ``manifest.json``; return the manifest row (params, seed, summary)."""
    config = MarketConfig.model_validate(spec.config)
    summary = run_history(config, spec.seed, spec.until_s, spec.out_dir, spec.bar_s)
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
                        params=dict(point), run=run, bar_s=bar_s)
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
