"""The market-data recorder: the exchange's feed into Parquet files, readable while it runs.

`sink` is the pure part (schemas, buffers, periodic flushes, rotation); `server` the thin live
shell (``python -m agents.recorder``); `read.load` concatenates a channel's files into one
table (and says so when there are none).
"""

from agents.recorder.read import NothingRecorded, load
from agents.recorder.settings import RecorderSettings
from agents.recorder.sink import SCHEMAS, GapTracker, ParquetSink

__all__ = ["SCHEMAS", "GapTracker", "NothingRecorded", "ParquetSink", "RecorderSettings", "load"]
