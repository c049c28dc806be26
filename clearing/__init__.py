"""Clearing house: ledger, settlement, pre-trade risk, persistence (issue 4)."""

import accel  # noqa: F401  (first: compiled cores, when built; see accel)
