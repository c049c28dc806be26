"""Replay backtesting: run a strategy over a recorded or external tape of quotes and trades.

The same `Agent` that trades live and in simulated time runs over a tape (`driver.Replay`);
every resting order is filled, or not, by one of two rules (`rules`: the market moves through
it, or a trade prints through it), with an optional queue model, capped fill sizes and order
and cancel latencies (`orders`). Tapes are the recorder's Parquet, `agora simulate` runs or
documented CSV/Parquet layouts (`readers`, `layouts`), streamed in chunks (`stream`); L2
recordings also give synthetic quotes (`depth`). Policies compiled with numba run the whole
loop in compiled code (`fast`). Results are the run-directory tables and the standard
metrics (`results`); `walkforward` splits a tape into train and test windows; `gym_env` is a
Gymnasium environment over a replay. `agora backtest` is the command line.
"""

from agents.replay.config import ReplayConfig
from agents.replay.readers import Tape, open_tape

__all__ = ["ReplayConfig", "Tape", "open_tape"]
